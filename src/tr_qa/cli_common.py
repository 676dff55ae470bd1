"""What the CLI's commands share: exit codes, one-line failures, settings from options, building and loading."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tr_qa.config import Settings
from tr_qa.errors import IndexCorruptError, IndexMismatchError, IndexMissingError

if TYPE_CHECKING:
    from tr_qa.embed import Embedder

EXIT_INPUT = 2
EXIT_FAILURE = 1


def fail(message: str, code: int = EXIT_FAILURE) -> None:
    """Print one line to stderr and exit."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def settings_from(corpus: Path | None = None, index: Path | None = None) -> Settings:
    """Settings with the CLI's path overrides."""
    return Settings().with_overrides(corpus_dir=corpus, index_dir=index)


def build_index(settings: Settings, progress: bool = True, err: bool = False, embedder: Embedder | None = None) -> None:
    """Build or update the index, printing what happened (to stderr when stdout is for JSON)."""
    from tr_qa.index import build

    report = build(settings, embedder=embedder, progress=progress, log=lambda msg: click.echo(msg, err=True))
    if report.unchanged:
        message = (
            f"index up to date: {report.documents} documents, {report.chunks} chunks, nothing to embed "
            f"({report.seconds:.2f} s)"
        )
    else:
        message = (
            f"indexed {report.documents} documents into {report.path}: {report.chunks} chunks "
            f"({report.embedded_chunks} embedded, {report.reused_chunks} reused, "
            f"{len(report.removed)} documents removed) in {report.seconds:.1f} s"
        )
    click.echo(message, err=err)
    if report.skipped:
        click.echo(f"{len(report.skipped)} file(s) skipped; see the warnings above", err=True)


def load_qa(settings: Settings):
    """Load the QA facade; offer to (re)build the index when it is missing, damaged or stale."""
    from tr_qa.qa import QA

    try:
        return QA.load(settings=settings)
    except (IndexMissingError, IndexMismatchError, IndexCorruptError) as exc:
        if sys.stdin.isatty() and click.confirm(f"{exc}\nBuild the index now?", default=True, err=True):
            build_index(settings)
            return QA.load(settings=settings)
        raise
