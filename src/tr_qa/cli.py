"""The ``tr-qa`` command: thin wrappers that parse, call one library function and print."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tr_qa.config import MAX_QUESTION_CHARS, RETRIEVERS, Settings, validate_k, validate_question
from tr_qa.errors import IndexCorruptError, IndexMismatchError, IndexMissingError, InputError, TrQaError
from tr_qa.highlight import segments
from tr_qa.training.commands import export_reader_cmd, train_reader_cmd
from tr_qa.types import KINDS, Filters, Result

if TYPE_CHECKING:
    from tr_qa.index import BuildReport

EXIT_INPUT = 2
EXIT_FAILURE = 1


def fail(message: str, code: int = EXIT_FAILURE) -> None:
    """Print one line to stderr and exit."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def settings_from(corpus: Path | None = None, index: Path | None = None) -> Settings:
    """Settings with the CLI's path overrides."""
    return Settings().with_overrides(corpus_dir=corpus, index_dir=index)


def build_index(settings: Settings, progress: bool = True, err: bool = False) -> None:
    """Build or update the index, printing what happened (to stderr when stdout is for JSON)."""
    from tr_qa.index import build

    report = build(settings, progress=progress, log=lambda msg: click.echo(msg, err=True))
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tr-qa")
def cli() -> None:
    """Offline, extractive question answering over a document collection."""


@cli.command("index")
@click.option("--corpus", type=click.Path(path_type=Path), help="Folder of documents [default: seeds/].")
@click.option("--index", "index_dir", type=click.Path(path_type=Path), help="Index folder [default: index/].")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def index_cmd(corpus: Path | None, index_dir: Path | None, no_progress: bool) -> None:
    """Build or update the index; only changed documents are embedded again."""
    build_index(settings_from(corpus, index_dir), progress=not no_progress and sys.stderr.isatty())


def render(result: Result, color: bool) -> str:
    """Human-readable result: the answer (or that there is none), then each passage with its highlights."""
    lines = []
    if result.abstained or result.answer is None:
        lines.append("The documents don't answer this. The nearest passages:")
    else:
        a = result.answer
        label = "Best guess, weak evidence" if result.evidence == "weak" else "Answer"
        lines.append(click.style(f"{label}: {a.shown_text}", bold=True) + f"   (confidence {a.score:.2f}, {a.doc_id})")
    marks = {"sentence": ("«", "»"), "answer": ("[[", "]]")}
    styles = {"sentence": {"underline": True}, "answer": {"bold": True, "reverse": True}}
    for i, p in enumerate(result.passages, 1):
        lines.append("")
        lines.append(f"[{i}] {p.title} — {p.doc_id}  (chars {p.start}-{p.end}, score {p.score:.2f})")
        body = []
        for text, kind in segments(p.text, p.start, p.highlights):
            if kind is None:
                body.append(text)
            elif color:
                body.append(click.style(text, **styles[kind]))
            else:
                body.append(f"{marks[kind][0]}{text}{marks[kind][1]}")
        lines.append("    " + "".join(body).replace("\n", "\n    "))
    if not color:
        lines.append("")
        lines.append("« » marks the answering sentence, [[ ]] the short answer.")
    return "\n".join(lines)


@cli.command("ask")
@click.argument("question")
@click.option("--k", "k", type=int, default=5, show_default=True, help="Passages to return (1-50).")
@click.option("--retriever", type=click.Choice(RETRIEVERS), default=None, help="Override the retriever.")
@click.option("--index", "index_dir", type=click.Path(path_type=Path), help="Index folder [default: index/].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--outlet", help="Only documents from this outlet (as `tr-qa list` shows it; case is ignored).")
@click.option("--kind", help=f"Only documents of this kind: {', '.join(KINDS)}.")
@click.option("--from", "published_from", metavar="YYYY-MM-DD", help="Only documents published on or after this.")
@click.option("--to", "published_to", metavar="YYYY-MM-DD", help="Only documents published on or before this.")
def ask_cmd(
    question: str,
    k: int,
    retriever: str | None,
    index_dir: Path | None,
    as_json: bool,
    outlet: str | None,
    kind: str | None,
    published_from: str | None,
    published_to: str | None,
) -> None:
    """Ask a question; prints the extractive answer and the passages behind it."""
    validate_question(question, MAX_QUESTION_CHARS)  # reject bad input before loading any model
    validate_k(k)
    filters = Filters(outlet=outlet, kind=kind, published_from=published_from, published_to=published_to)
    qa = load_qa(settings_from(index=index_dir))
    result = qa.ask(question, k=k, retriever=retriever, filters=filters)
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        click.echo(render(result, color=sys.stdout.isatty()))


def index_summary(report: BuildReport) -> str:
    """One line saying how the index changed."""
    if report.unchanged:
        return f"index unchanged: {report.documents} documents, {report.chunks} chunks"
    return (
        f"index updated: {report.documents} documents, {report.chunks} chunks ({report.embedded_chunks} embedded, "
        f"{len(report.removed)} documents removed) in {report.seconds:.1f} s"
    )


@cli.command("add")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--replace", is_flag=True, help="Overwrite a different file of the same name in the corpus.")
@click.option("--corpus", type=click.Path(path_type=Path), help="Corpus folder [default: seeds/].")
@click.option("--index", "index_dir", type=click.Path(path_type=Path), help="Index folder [default: index/].")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def add_cmd(
    paths: tuple[Path, ...], replace: bool, corpus: Path | None, index_dir: Path | None, no_progress: bool
) -> None:
    """Copy documents (files, or folders of them) into the corpus and index them.

    PDF, Word .docx, HTML, Markdown and UTF-8 text are read by their content. A folder keeps its name and inner
    paths in the corpus. A file that cannot be read is refused with the reason; the others are added.
    """
    from tr_qa.corpus import add_documents

    def say(message: str) -> None:
        click.echo(message, err=True)

    report = add_documents(
        settings_from(corpus, index_dir),
        paths,
        replace=replace,
        progress=not no_progress and sys.stderr.isatty(),
        log=say,
    )
    for skip in report.refused:
        say(f"warning: {skip.path}: {skip.reason}")
    for item in report.added:
        click.echo(f"{item.status}: {item.doc_id}")
    click.echo(index_summary(report.build))


@cli.command("remove")
@click.argument("doc_id")
@click.option("--corpus", type=click.Path(path_type=Path), help="Corpus folder [default: seeds/].")
@click.option("--index", "index_dir", type=click.Path(path_type=Path), help="Index folder [default: index/].")
def remove_cmd(doc_id: str, corpus: Path | None, index_dir: Path | None) -> None:
    """Delete a document (its id as `tr-qa list` shows it) from the corpus folder and the index."""
    from tr_qa.corpus import remove_document

    report = remove_document(settings_from(corpus, index_dir), doc_id, log=lambda msg: click.echo(msg, err=True))
    click.echo(f"removed: {doc_id}")
    click.echo(index_summary(report))


@cli.command("list")
@click.option("--index", "index_dir", type=click.Path(path_type=Path), help="Index folder [default: index/].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def list_cmd(index_dir: Path | None, as_json: bool) -> None:
    """List the indexed documents: id, title, outlet, publication date, kind and chunks."""
    from tr_qa.corpus import list_documents

    docs = list_documents(settings_from(index=index_dir))
    if as_json:
        click.echo(json.dumps({"documents": [d.to_dict() for d in docs]}, ensure_ascii=False))
        return
    rows = [("ID", "TITLE", "OUTLET", "DATE", "KIND", "CHUNKS")]
    rows += [
        (d.id, d.title, d.meta.outlet or "-", d.meta.published or "-", d.meta.kind or "-", str(d.chunks)) for d in docs
    ]
    clip = [min(60, max(len(r[i]) for r in rows)) for i in range(5)]

    def cell(text: str, width: int) -> str:
        return (text if len(text) <= width else text[: width - 1] + "…").ljust(width)

    for r in rows:
        click.echo("  ".join([*(cell(r[i], clip[i]) for i in range(5)), r[5].rjust(6)]).rstrip())


def main() -> None:
    """Entry point: run the CLI, turning the project's errors into one-line messages."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        fail("aborted")
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_INPUT if isinstance(exc, click.UsageError) else exc.exit_code)
    except InputError as exc:
        fail(str(exc), EXIT_INPUT)
    except TrQaError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except Exception as exc:
        # Last resort: a bug must still end in one line, not a traceback; TR_QA_DEBUG=1 shows the traceback.
        if os.environ.get("TR_QA_DEBUG"):
            raise
        text = " ".join(str(exc).split())[:300]
        fail(f"unexpected {type(exc).__name__}: {text} (set TR_QA_DEBUG=1 to see where)")


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=7860, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option(
    "--allow-origin",
    "allow_origins",
    multiple=True,
    help="Origin (scheme://host[:port]) allowed to embed the chat or call the API; repeatable. "
    "Also read from TR_QA_ALLOW_ORIGINS (comma-separated). Default: none (deny).",
)
@click.option(
    "--forwarded-allow-ips",
    "forwarded_allow_ips",
    multiple=True,
    help="Reverse proxy address or network (e.g. 127.0.0.1 or 10.0.0.0/8) whose X-Forwarded-For and "
    "X-Forwarded-Proto are believed; repeatable or comma-separated. Also read from TR_QA_FORWARDED_ALLOW_IPS. "
    "Default: none (the headers are ignored).",
)
@click.option("--index", "index_dir", type=click.Path(path_type=Path), help="Index folder [default: index/].")
@click.option("--corpus", type=click.Path(path_type=Path), help="Corpus folder used if the index must be built.")
def serve_cmd(
    host: str,
    port: int,
    allow_origins: tuple[str, ...],
    forwarded_allow_ips: tuple[str, ...],
    index_dir: Path | None,
    corpus: Path | None,
) -> None:
    """Start the web chat, the JSON API and the embeddable widget (builds the index first if there is none)."""
    from tr_qa.web.app import serve

    serve(
        settings_from(corpus, index_dir),
        host=host,
        port=port,
        allow_origins=allow_origins,
        forwarded_allow_ips=forwarded_allow_ips,
    )


@cli.command("eval")
@click.option("--qa", "qa_file", type=click.Path(path_type=Path), help="Question file (JSON lines) to run.")
@click.option("--squad", "squad_file", type=click.Path(path_type=Path), help="SQuAD v1.1/v2.0 JSON file to run.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N questions.")
@click.option(
    "--split",
    type=click.Choice(["dev", "test", "all"]),
    default="all",
    show_default=True,
    help="With --qa: only this split of the question file (the CI gate reads test).",
)
@click.option("--validate", is_flag=True, help="With --qa: check the file without running it (exit 1 on problems).")
@click.option(
    "--retriever",
    "retrievers",
    multiple=True,
    type=click.Choice([*RETRIEVERS, "all"]),
    help="Retriever(s) to compare; the first one is reported [default: the configured one].",
)
@click.option("--threshold", type=float, help="Abstention threshold [default: the fitted one in use].")
@click.option("--gate", type=click.Path(path_type=Path), help="Fail (exit 1) if a metric misses this file's limits.")
@click.option("--report", "report_dir", type=click.Path(path_type=Path), help="Write JSON, Markdown and PNG here.")
@click.option(
    "--compare",
    "compare_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="An earlier run's report.json: print each metric's change and the questions newly failed or fixed.",
)
@click.option("--index", "index_dir", type=click.Path(path_type=Path), help="Index folder for --qa [default: index/].")
@click.option(
    "--keep",
    type=click.Path(path_type=Path, file_okay=False),
    help="With --squad: keep its corpus and index in this folder (reused, re-embedding nothing) instead of a temp one.",
)
@click.option("--no-reader", is_flag=True, help="Highlight with sentence scores and entity types only (no reader).")
@click.option(
    "--gold-paragraph",
    is_flag=True,
    help="With --squad: the reader alone on each question's own paragraph (SQuAD 2.0 figures), no retrieval.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def eval_cmd(
    qa_file: Path | None,
    squad_file: Path | None,
    limit: int | None,
    split: str,
    validate: bool,
    retrievers: tuple[str, ...],
    threshold: float | None,
    gate: Path | None,
    report_dir: Path | None,
    compare_file: Path | None,
    index_dir: Path | None,
    keep: Path | None,
    no_reader: bool,
    gold_paragraph: bool,
    as_json: bool,
) -> None:
    """Measure retrieval, answers, abstention and selective answering on a question file or a SQuAD file."""
    from tr_qa import evaluate as ev
    from tr_qa import metrics as mt
    from tr_qa import report as rp

    if (qa_file is None) == (squad_file is None):
        raise InputError("give exactly one of --qa FILE or --squad FILE")
    settings = settings_from(index=index_dir)
    if gold_paragraph:
        if squad_file is None:
            raise InputError("--gold-paragraph reads SQuAD paragraphs: give --squad FILE")
        out = ev.reader_on_gold(squad_file, limit, progress=not as_json and sys.stderr.isatty())
        if as_json:
            click.echo(json.dumps(out))
        else:
            for name in ("never_abstaining", "at_margin_0", "at_heldout_threshold"):
                if name in out:
                    m = out[name]
                    click.echo(
                        f"{name:<22} f1 {m['f1']:.3f}  exact {m['exact']:.3f}  HasAns_f1 {m['HasAns_f1']:.3f}  "
                        f"NoAns_acc {m['NoAns_acc']:.3f}  (threshold {m['threshold']:.2f})"
                    )
            click.echo(f"{out['n']} questions in {out['seconds']} s")
        return
    if validate:
        if qa_file is None:
            raise InputError("--validate checks a question file: give --qa FILE")
        problems = ev.validate_qa_file(qa_file, settings.corpus_dir)
        for p in problems:
            click.echo(p)
        if problems:
            sys.exit(EXIT_FAILURE)
        click.echo(f"{qa_file}: no problems")
        return
    old_report = None
    if compare_file is not None:
        try:
            old_report = json.loads(compare_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot read the report to compare with, {compare_file}: {exc}") from exc
        if not isinstance(old_report, dict) or "overall" not in old_report:
            raise InputError(f"{compare_file} is not a tr-qa report.json")
    default = Settings().retriever
    names = (
        [default, *(r for r in RETRIEVERS if r != default)] if "all" in retrievers else list(dict.fromkeys(retrievers))
    )
    thresholds = ev.load_thresholds(gate) if gate else None
    show = not as_json and sys.stderr.isatty()  # progress bars only for a person watching
    if no_reader:
        settings = settings.with_overrides(reader_passages=0)
    if qa_file is not None:
        items = [i for i in ev.load_qa_file(qa_file) if split in ("all", i.split)][:limit]
        if not items:
            raise InputError(f"{qa_file} has no questions in split {split!r}")
        qa = load_qa(settings)
        source = str(qa_file) + ("" if split == "all" else f" (split {split})")
        summary, records = ev.evaluate(qa, items, names or [qa.settings.retriever], threshold, show, source=source)
    else:
        with ev.squad_eval_dir() as tmp:
            work = Path(keep) if keep else Path(tmp)
            items = ev.squad_corpus(squad_file, work / "corpus")[:limit]
            squad_settings = settings.with_overrides(corpus_dir=work / "corpus", index_dir=work / "index")
            build_index(squad_settings, progress=show, err=as_json)
            from tr_qa.qa import QA

            qa = QA.load(settings=squad_settings)
            summary, records = ev.evaluate(
                qa, items, names or [qa.settings.retriever], threshold, show, source=str(squad_file)
            )
    used = summary["overall"]["abstain_threshold"]
    if report_dir is not None:
        paths = rp.write_report(report_dir, summary, records, used)
        click.echo("wrote " + ", ".join(str(p) for p in paths), err=True)
    diff = None
    if old_report is not None:
        diff = mt.compare(
            old_report,
            summary["overall"],
            {r.id: mt.question_ok(r, used) for r in records},
            {r.id: r.question for r in records},
        )
    problems = ev.check_gate(summary["overall"], thresholds) if thresholds else []
    if as_json:
        out = dict(summary["overall"])
        out.update({k: summary[k] for k in ("retriever", "intervals", "by_type", "by_split", "by_retriever")})
        out.update({"reliability": summary["reliability"], "threshold_fit": summary["threshold_fit"]})
        out.update({"gate_failures": problems, "compare": diff})
        click.echo(json.dumps(out, ensure_ascii=False))
    else:
        click.echo(rp.table({"overall": summary["overall"]}, intervals=summary["intervals"]))
        groups = {**{f"split {k}": v for k, v in summary["by_split"].items()}, **summary["by_type"]}
        click.echo("\n" + rp.table(groups))
        if summary["by_retriever"]:
            click.echo("\nretrievers side by side:\n" + rp.table(summary["by_retriever"]))
        fit = summary["threshold_fit"]
        click.echo(
            f"\nabstention threshold used {used}; best on these questions {fit['threshold']} "
            f"({fit['answered_right_or_abstained']:.3f} answered-right or rightly abstained)"
        )
        if diff is not None:
            click.echo("\ncompared with " + str(compare_file) + ":\n" + rp.compare_text(diff))
        for p in problems:
            click.echo(f"GATE FAILED: {p}", err=True)
    if problems:
        sys.exit(EXIT_FAILURE)


@cli.group("feedback")
def feedback_group() -> None:
    """Thumbs up/down left on chat answers (kept in feedback.sqlite3 next to the index)."""


@feedback_group.command("export")
@click.option("--index", "index_dir", type=click.Path(path_type=Path), help="Index folder [default: index/].")
@click.option(
    "--db", "db", type=click.Path(path_type=Path, dir_okay=False), help="Feedback file [default: beside the index]."
)
@click.option(
    "--out", type=click.Path(path_type=Path, dir_okay=False), help="Write the JSON lines here [default: stdout]."
)
def feedback_export_cmd(index_dir: Path | None, db: Path | None, out: Path | None) -> None:
    """Write thumbs-down and abstained questions as unlabelled eval/qa.jsonl items for a maintainer to label."""
    from tr_qa.feedback import FeedbackStore, export_items, export_jsonl, feedback_path

    path = db or feedback_path(settings_from(None, index_dir))
    if not path.exists():
        raise InputError(f"no feedback file at {path}: nobody has voted yet, or give --db")
    rows = FeedbackStore(path).rows()
    text = export_jsonl(rows)
    if out is None:
        click.echo(text, nl=False)
        return
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)  # atomic: a reader never sees half a file
    click.echo(f"wrote {len(export_items(rows))} questions to label to {out}", err=True)


# Training commands live with the training code; nothing heavy is imported until one of them runs.
cli.add_command(train_reader_cmd)
cli.add_command(export_reader_cmd)
