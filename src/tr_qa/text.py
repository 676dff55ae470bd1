"""Word tokens shared by BM25, lexical overlap and answer-type rules."""

from __future__ import annotations

import re

_WORD = re.compile(r"[^\W_]+(?:[.,'’][^\W_]+)*", re.UNICODE)

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her
    here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not
    now of off on once only or other our ours ourselves out over own same she should so some such than that the
    their theirs them themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves does did say
    said says tell told many much also""".split()  # noqa: SIM905
)


def stem(word: str) -> str:
    """A light suffix strip so that 'companies'/'company' and 'offenders'/'offender' meet."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def words(text: str) -> list[str]:
    """Lower-cased word tokens with their inner punctuation kept ('£3.7', 'grayling’s' → 'grayling')."""
    out = []
    for match in _WORD.finditer(text.lower()):
        token = match.group(0)
        for suffix in ("'s", "’s"):
            if token.endswith(suffix):
                token = token[: -len(suffix)]
        out.append(token)
    return out


def terms(text: str) -> list[str]:
    """Content terms: words without stopwords, lightly stemmed."""
    return [stem(w) for w in words(text) if w not in STOPWORDS]


_NUMBER = re.compile(r"\d[\d,.]*\d|\d")
_NAME = re.compile(r"\b[A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*)*")


def specific_terms(question: str) -> list[str]:
    """The question's pinning words: numbers and years, and capitalised names that are not its first word.

    A passage that lacks them is a near miss (the right subject, another year or company), the commonest way an
    unanswerable question gets a confident wrong answer.
    """
    out = [m.group(0).replace(",", "") for m in _NUMBER.finditer(question)]
    for m in _NAME.finditer(question):
        if m.start() == len(question) - len(question.lstrip()):
            continue  # the first word is capitalised anyway
        words = [w for w in m.group(0).split() if w.lower() not in STOPWORDS]
        if words:
            out.append(" ".join(words).lower())
    return out


def specific_overlap(question: str, passage: str) -> float:
    """Share of the question's specific terms found in the passage (1.0 when the question has none)."""
    wanted = specific_terms(question)
    if not wanted:
        return 1.0
    hay = " ".join(passage.lower().replace(",", "").split())
    return sum(w in hay for w in wanted) / len(wanted)
