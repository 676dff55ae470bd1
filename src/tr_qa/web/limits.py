"""How much work the server takes on: a per-client rate limit and a bounded line in front of the answer path.

``AnswerGate`` is the load shedder. Questions run on a pool of exactly ``slots`` threads; up to ``queue`` more may
wait for one, waiting as plain futures on the event loop (no thread held); past that a question is refused at once
with a ``Retry-After`` estimate. Nothing else (``/healthz``, pages, static files) shares that pool, so none of it
waits behind questions. Only ``slots`` threads ever run the models, which bounds the memory they can hold; after a
burst, freed heap is handed back to the operating system.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from tr_qa.errors import InputError, OverloadedError, RateLimitError
from tr_qa.memory import release_free_memory

T = TypeVar("T")
RATE_LIMIT_ENV = "TR_QA_RATE_LIMIT"
MAX_CLIENTS = 100_000  # rate-limit table size; beyond it the least recently seen client is forgotten
TRIM_AFTER_IDLE_S = 1.0  # how long the gate stays idle before freed memory is returned


def parse_rate_limit(raw: str) -> tuple[int, float]:
    """``"30"`` (per minute) or ``"30/60"`` (per N seconds) → (limit, window); ``"0"`` turns limiting off."""
    try:
        count, _, window = raw.strip().partition("/")
        limit, seconds = int(count), float(window or 60)
    except ValueError:
        raise InputError(f"{RATE_LIMIT_ENV} must look like 30 or 30/60, got {raw!r}") from None
    if limit < 0 or not math.isfinite(seconds) or seconds <= 0:
        raise InputError(f"{RATE_LIMIT_ENV} must look like 30 or 30/60, got {raw!r}")
    return limit, seconds


class RateLimiter:
    """Sliding-window limit per client key, in memory (one process); ``limit=0`` allows everything."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._last_sweep = time.monotonic()

    def check(self, key: str) -> float:
        """Record a hit and return 0, or return the seconds to wait (the hit is not recorded)."""
        if self.limit <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            self._sweep(now)
            hits = self._hits.pop(key, None) or deque()
            self._hits[key] = hits  # re-inserted: the dict stays ordered by last use
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(0.001, hits[0] + self.window - now)
            hits.append(now)
            return 0.0

    def enforce(self, key: str) -> None:
        """Record a hit, or raise RateLimitError saying when to try again."""
        wait = self.check(key)
        if wait:
            seconds = math.ceil(wait)
            raise RateLimitError(
                f"too many questions: the limit is {self.limit} per {self.window:g} s; try again in {seconds} s",
                seconds,
            )

    def _sweep(self, now: float) -> None:
        # Forget idle clients now and then, and the least recently seen ones past MAX_CLIENTS, so the table cannot
        # grow without bound however many addresses a client controls.
        while len(self._hits) > MAX_CLIENTS:
            del self._hits[next(iter(self._hits))]
        if now - self._last_sweep < self.window:
            return
        self._last_sweep = now
        for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window]:
            del self._hits[key]


class AnswerGate:
    """At most ``slots`` questions run at once and ``queue`` more wait; the next gets OverloadedError at once."""

    def __init__(self, slots: int, queue: int) -> None:
        self.slots = slots
        self.queue = queue
        self._pool = ThreadPoolExecutor(slots, thread_name_prefix="tr-qa-answer")
        self._lock = threading.Lock()
        self._admitted = 0  # running + waiting
        self._mean_s = 0.5  # running mean answer time, for Retry-After
        self._idle_since = 0.0

    @property
    def admitted(self) -> int:
        """Questions running or waiting now."""
        return self._admitted

    def retry_after(self) -> int:
        """Seconds after which a refused question has a fair chance: the current line's expected drain time."""
        return max(1, min(60, math.ceil(self._mean_s * (self._admitted + 1) / self.slots)))

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn(*args)`` on an answer thread once one is free, or raise OverloadedError if the line is full."""
        with self._lock:
            if self._admitted >= self.slots + self.queue:
                seconds = self.retry_after()
                raise OverloadedError(
                    f"the server is busy: {self.slots} questions are being answered and {self.queue} are waiting; "
                    f"try again in {seconds} s",
                    seconds,
                )
            self._admitted += 1
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, self._timed, fn, args)
        finally:
            with self._lock:
                self._admitted -= 1
                idle = self._admitted == 0
                if idle:
                    self._idle_since = time.monotonic()
            if idle:
                loop.call_later(TRIM_AFTER_IDLE_S, self._trim_if_still_idle)

    def _timed(self, fn: Callable[..., T], args: tuple[object, ...]) -> T:
        started = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self._mean_s = 0.8 * self._mean_s + 0.2 * (time.perf_counter() - started)

    def _trim_if_still_idle(self) -> None:
        # Only once the line has been empty for a while: trimming between back-to-back questions would cost time
        # and be undone by the next one.
        with self._lock:
            quiet = self._admitted == 0 and time.monotonic() - self._idle_since >= TRIM_AFTER_IDLE_S * 0.9
        if quiet:
            self._pool.submit(release_free_memory)

    def close(self) -> None:
        """Stop the answer threads once their work is done."""
        self._pool.shutdown(wait=False, cancel_futures=True)
