"""The few exception types that surfaces turn into one-line messages."""

from __future__ import annotations


class TrQaError(Exception):
    """Base class: the message is meant for the user, one line, no traceback."""


class InputError(TrQaError, ValueError):
    """A question, setting or path given by the user is not acceptable."""


class IndexMissingError(TrQaError):
    """There is no index yet: build one with ``tr-qa index``."""


class IndexMismatchError(TrQaError):
    """The index was built with another model, chunking or format: rebuild it."""


class IndexCorruptError(TrQaError):
    """The index files cannot be read: rebuild it."""


class IndexWriteError(TrQaError):
    """The index folder cannot be written (read-only, full disk): asking still works, building does not."""


class BusyError(TrQaError):
    """The server will not take this request now; ``retry_after`` says in how many seconds to try again."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimitError(BusyError):
    """This client asked more questions than its rate limit allows (HTTP 429)."""


class OverloadedError(BusyError):
    """Every answer slot is busy and the waiting line is full (HTTP 503)."""
