"""Handing freed heap memory back to the system after work that made and dropped many temporaries."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable


@functools.cache
def malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS, Windows)."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc: nothing to trim
        return None


def release_free_memory() -> None:
    """Return the heap's free pages to the system; a no-op where there is no ``malloc_trim``.

    Loading an index parses every document line, the reader dequantises its weights, and a burst of questions leaves
    freed buffers behind: memory glibc keeps mapped after it is freed, counted in the server's resident memory until
    it exits.
    """
    trim = malloc_trim()
    if trim is not None:
        trim(0)
