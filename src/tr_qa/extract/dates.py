"""Dates as ISO ``YYYY-MM-DD``, parsed by python-dateutil; this module only chooses which string to hand it.

A date counts only when day, month and year are all stated: "May 2016" or "3 May" give None rather than a day
that dateutil would fill in from a default. Numeric dates are read day first ("03/05/2016" is 3 May), as the
collection is British; ISO strings go to ``isoparse`` because ``parse(dayfirst=True)`` reads "2016-05-03" as
5 March.
"""

from __future__ import annotations

import datetime as dt
import re

from dateutil import parser

# Two defaults that differ in every field: a field dateutil filled in from the default differs between them.
_DEFAULT_A = dt.datetime(1, 1, 1)
_DEFAULT_B = dt.datetime(2, 2, 2)
# A full ISO 8601 date, extended or basic, optionally followed by a time.
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ].*)?|\d{8}(?:T.*)?")
# Words a date line may carry around the date itself ("Published on 3 May 2016 at 10:15 GMT").
_FILLER = frozenset(
    "published posted updated last first modified on at by date dated created the of am pm gmt bst utc z".split()  # noqa: SIM905
)
_MAX_CHARS = 80
# Calendar dates outside these years are typos or placeholders, not a document's date.
_FIRST_YEAR, _LAST_YEAR = 1800, 2200


def _both_defaults(text: str, fuzzy: bool) -> tuple[dt.datetime, dt.datetime, tuple[str, ...]] | None:
    try:
        if fuzzy:
            a, skipped = parser.parse(text, default=_DEFAULT_A, dayfirst=True, fuzzy_with_tokens=True)
            b, _ = parser.parse(text, default=_DEFAULT_B, dayfirst=True, fuzzy_with_tokens=True)
            return a, b, tuple(skipped)
        a = parser.parse(text, default=_DEFAULT_A, dayfirst=True)
        b = parser.parse(text, default=_DEFAULT_B, dayfirst=True)
    except (ValueError, OverflowError):  # dateutil's ParserError is a ValueError
        return None
    return a, b, ()


def _only_filler(skipped: tuple[str, ...]) -> bool:
    for token in skipped:
        for word in re.findall(r"[^\W\d_]+", token.lower()):
            if word not in _FILLER:
                return False
    return True


def to_iso(value: object, *, fuzzy: bool = False) -> str | None:
    """``YYYY-MM-DD`` for a date, datetime or string stating day, month and year; None for anything else.

    With ``fuzzy`` a string may also carry filler words around the date ("Published on 3 May 2016 at 10:15");
    any other word makes it not a date, so a headline that mentions a date is not taken for a dateline.
    """
    if isinstance(value, dt.datetime):
        day = value.date()
    elif isinstance(value, dt.date):
        day = value
    elif isinstance(value, str):
        text = " ".join(value.split())
        if not text or len(text) > _MAX_CHARS or not any(c.isdigit() for c in text):
            return None
        if _ISO.fullmatch(text):
            try:
                day = parser.isoparse(text).date()
            except (ValueError, OverflowError):
                return None
        else:
            parsed = _both_defaults(text, fuzzy=False) or (_both_defaults(text, fuzzy=True) if fuzzy else None)
            if parsed is None:
                return None
            a, b, skipped = parsed
            if a.date() != b.date() or not _only_filler(skipped):
                return None
            day = a.date()
    else:
        return None
    return day.isoformat() if _FIRST_YEAR <= day.year <= _LAST_YEAR else None


def pdf_date(value: object) -> str | None:
    """``YYYY-MM-DD`` from a PDF date string ("D:20160503120000+01'00'"), or None."""
    if not isinstance(value, str):
        return None
    match = re.match(r"\s*(?:D:)?(\d{8})", value)
    return to_iso(match.group(1)) if match else None
