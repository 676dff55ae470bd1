"""The ``tr-qa`` command: thin wrappers that parse, call one library function and print."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tr_qa.bench.commands import bench_cmd
from tr_qa.cli_common import EXIT_INPUT, build_index, fail, load_qa, settings_from
from tr_qa.config import MAX_QUESTION_CHARS, RETRIEVERS, validate_k, validate_question
from tr_qa.errors import InputError, TrQaError
from tr_qa.eval_command import eval_cmd
from tr_qa.highlight import segments
from tr_qa.training.commands import export_reader_cmd, train_reader_cmd
from tr_qa.types import KINDS, Filters, Result

if TYPE_CHECKING:
    from tr_qa.index import BuildReport


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tr-qa")
def cli() -> None:
    """Offline, extractive question answering over a document collection."""


@cli.command("index")
@click.option("--corpus", type=click.Path(path_type=Path), help="Folder of documents [default: seeds/].")
@click.option("--index", "index_dir", type=click.Path(path_type=Path), help="Index folder [default: index/].")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[ADDRESS]",
    help="Embed on Ray (needs the scale extra): the cluster whose head node is at ADDRESS (HOST:PORT, or auto), "
    "or with no address a local Ray instance, started or joined. Builds the same index as without --ray.",
)
def index_cmd(corpus: Path | None, index_dir: Path | None, no_progress: bool, ray_address: str | None) -> None:
    """Build or update the index; only changed documents are embedded again."""
    settings = settings_from(corpus, index_dir)
    progress = not no_progress and sys.stderr.isatty()
    if ray_address is None:
        build_index(settings, progress=progress)
        return
    from tr_qa.index.distributed import RayEmbedder, ray_session

    with ray_session(ray_address or None):
        build_index(settings, progress=progress, embedder=RayEmbedder(settings.threads))


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
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help="Server processes, each with its own models (about 1 per idle core). Also read from TR_QA_WORKERS. "
    "[default: 1]",
)
def serve_cmd(
    host: str,
    port: int,
    allow_origins: tuple[str, ...],
    forwarded_allow_ips: tuple[str, ...],
    index_dir: Path | None,
    corpus: Path | None,
    workers: int | None,
) -> None:
    """Start the web chat, the JSON API and the embeddable widget (builds the index first if there is none).

    /healthz answers as soon as the index is loaded; the models load behind it (/readyz says when they are).
    """
    # Not tr_qa.web.app: that imports Gradio, which loads in the background with the models.
    from tr_qa.web.startup import serve

    serve(
        settings_from(corpus, index_dir),
        host=host,
        port=port,
        allow_origins=allow_origins,
        forwarded_allow_ips=forwarded_allow_ips,
        workers=workers,
    )


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
cli.add_command(bench_cmd)
cli.add_command(eval_cmd)
