"""Integration fixtures: a real mosquitto broker started by the tests on a free port."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.integration.mqtt_fixtures import MOSQUITTO, Broker


def _require_mosquitto() -> None:
    if MOSQUITTO is None:
        pytest.skip("mosquitto binary not installed (Debian package 'mosquitto')")


@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """One broker per test module; tests isolate themselves with their own base topic."""
    _require_mosquitto()
    broker = Broker(tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def mosquitto_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], Broker]]:
    """Private brokers for tests that stop and restart theirs (the module broker stays untouched)."""
    _require_mosquitto()
    started: list[Broker] = []

    def make() -> Broker:
        broker = Broker(tmp_path_factory.mktemp("mosquitto"))
        broker.start()
        started.append(broker)
        return broker

    yield make
    for broker in started:
        broker.stop()
