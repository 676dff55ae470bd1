"""One question check for every surface: the rules themselves, then the CLI and the Python API refusing the same
questions with one line naming the rule (the HTTP and chat side is in tests/test_hardening.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BAD_QUESTIONS

from tr_qa.config import validate_k, validate_question
from tr_qa.errors import InputError


@pytest.mark.parametrize(("question", "rule"), BAD_QUESTIONS)
def test_bad_questions_are_refused_naming_the_rule(question: str, rule: str) -> None:
    with pytest.raises(InputError) as info:
        validate_question(question)
    message = str(info.value)
    assert rule in message and "\n" not in message
    # The message must be printable anywhere: it shows bad characters as U+XXXX, never the characters.
    assert message.isascii()


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("  How much\nwas the  bail out?  ", "How much was the bail out?"),
        ("cafe\u0301 owners", "café owners"),  # NFC: the combining accent joins its letter
        ("\ufb01nance", "\ufb01nance"),  # NFC, not NFKC: compatibility characters are left alone
        ("Who is \u05de\u05e9\u05d4 \u200fin the report?", "Who is \u05de\u05e9\u05d4 \u200fin the report?"),
        ("bail\u200bout?", "bail\u200bout?"),  # a zero-width space among visible text is harmless
    ],
)
def test_good_questions_are_normalised(question: str, expected: str) -> None:
    assert validate_question(question) == expected


def test_length_is_counted_after_normalisation_and_the_limit_is_named() -> None:
    assert validate_question("e\u0301" * 10, max_chars=10) == "\u00e9" * 10
    with pytest.raises(InputError, match="question is too long: 11 characters, the limit is 10"):
        validate_question("x" * 11, max_chars=10)


@pytest.mark.parametrize(("value", "shown"), [(0, "0"), (51, "51"), ("3", "'3'"), (True, "True"), (2.0, "2.0")])
def test_validate_k_names_the_value(value: object, shown: str) -> None:
    with pytest.raises(InputError, match=f"k must be between 1 and 50, got {shown}"):
        validate_k(value)


def run_cli(*args: str | bytes) -> subprocess.CompletedProcess[bytes]:
    """``tr-qa`` with raw arguments (bytes pass straight to argv, as a shell would)."""
    env = {**os.environ, "TR_QA_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "LC_ALL": "C.UTF-8"}
    return subprocess.run(
        [sys.executable, "-m", "tr_qa", *args],
        capture_output=True,
        env=env,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def cli_question(question: str) -> bytes:
    """What a shell would pass: UTF-8, with lone surrogates from invalid bytes turned back into those bytes."""
    return question.encode("utf-8", "surrogateescape") if "\udcff" in question else question.encode("utf-8", "replace")


# argv cannot carry a NUL, nor a surrogate that did not come from bytes.
@pytest.mark.integration
@pytest.mark.parametrize(("question", "rule"), [p for p in BAD_QUESTIONS if p.id not in ("lone-surrogate", "nul")])
def test_cli_refuses_bad_questions_in_one_line(question: str, rule: str, tmp_path: Path) -> None:
    # The index does not exist: input is checked before anything is loaded.
    proc = run_cli("ask", cli_question(question), "--index", str(tmp_path / "none"))
    err = proc.stderr.decode("utf-8")
    assert proc.returncode == 2, err
    assert rule in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err and proc.stdout == b""


@pytest.mark.integration
@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"who \xff x", id="invalid-byte"),
        pytest.param(b"who \xed\xa0\x80 x", id="encoded-surrogate"),
        pytest.param(b"caf\xc3", id="truncated-sequence"),
    ],
)
def test_cli_refuses_invalid_utf8_bytes(raw: bytes, tmp_path: Path) -> None:
    proc = run_cli("ask", raw, "--json", "--index", str(tmp_path / "none"))
    err = proc.stderr.decode("utf-8")
    assert proc.returncode == 2 and "question is not valid Unicode text: lone surrogate" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.integration
@pytest.mark.parametrize(("question", "rule"), BAD_QUESTIONS)
def test_python_api_refuses_the_same_questions(seed_qa, question: str, rule: str) -> None:
    with pytest.raises(InputError) as info:
        seed_qa.ask(question)
    assert rule in str(info.value)
