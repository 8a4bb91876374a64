"""Persistence: Pony entities, the Store (DB thread) and the key-based lookup services."""

from aniworldd.db.store import EXIT_DAMAGED, DatabaseDamaged, DatabaseError, Store

__all__ = ["EXIT_DAMAGED", "DatabaseDamaged", "DatabaseError", "Store"]
