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
