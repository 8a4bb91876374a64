"""MQTT bridge with Home Assistant discovery (on only when `mqtt.host` is set)."""

from aniworldd.mqtt.bridge import MqttBridge
from aniworldd.mqtt.protocols import QueueControl, ScanControl

__all__ = ["MqttBridge", "QueueControl", "ScanControl"]
