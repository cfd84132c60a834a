"""One helper for the library's mode switches (context variables set for the duration of a block)."""
from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import TypeVar

V = TypeVar("V")


@contextlib.contextmanager
def setting(var: contextvars.ContextVar[V], value: V) -> Iterator[None]:
    """Set ``var`` to ``value`` inside the block, restore it afterwards (also on exceptions, nested safely)."""
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)
