"""Persistence: Pony entities, the Store (DB thread) and the key-based lookup services."""

from aniworldd.db.store import DatabaseError, Store

__all__ = ["DatabaseError", "Store"]
