"""Handing freed heap memory back to the system after a load that made and dropped many temporaries."""

from __future__ import annotations

import contextlib
import ctypes
import sys


def release_free_memory() -> None:
    """Return the heap's free pages to the system (glibc ``malloc_trim``); a no-op where there is no such call.

    Loading an index parses every document line and the reader dequantises its weights: tens of MB of temporaries
    that glibc keeps mapped after they are freed, counted in the server's resident memory until it exits.
    """
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
