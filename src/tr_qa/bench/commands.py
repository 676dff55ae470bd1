"""The ``tr-qa bench`` command (registered on the main CLI in ``tr_qa.cli``); the work is in ``tr_qa.bench.runner``."""

from __future__ import annotations

from pathlib import Path

import click

from tr_qa.errors import InputError

# (full, --quick) counts; an option given on the command line wins over both.
COUNTS = {
    "questions": (300, 10),
    "cached_questions": (20, 5),
    "ask_runs": (3, 1),
    "requests": (60, 8),
}
CLIENTS = ("1,10,50", "1,4")


def parse_list(text: str, name: str) -> tuple[str, ...]:
    """Comma-separated items, blanks dropped."""
    items = tuple(part.strip() for part in text.split(",") if part.strip())
    if not items:
        raise InputError(f"{name} needs at least one value, got {text!r}")
    return items


def parse_clients(text: str) -> tuple[int, ...]:
    """``1,10,50`` → (1, 10, 50); InputError naming a value that is not a whole number."""
    out = []
    for item in parse_list(text, "--clients"):
        try:
            out.append(int(item))
        except ValueError:
            raise InputError(f"--clients takes whole numbers like 1,10,50; got {item!r}") from None
    return tuple(out)


@click.command("bench")
@click.option("--corpus", type=click.Path(path_type=Path, file_okay=False), help="Corpus folder [default: seeds/].")
@click.option(
    "--qa",
    "qa_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Questions for --corpus (JSON lines with a question field) [default: eval/qa.jsonl].",
)
@click.option(
    "--synthetic",
    type=int,
    metavar="N",
    help="Index about N chunks of SQuAD v1.1 training paragraphs (written to the work folder) and ask their questions.",
)
@click.option(
    "--squad",
    "squad_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="SQuAD v1.1 file for --synthetic [default: ../shared/bench/squad-v1.1-train/…json.xz].",
)
@click.option(
    "--workdir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Empty folder to keep the corpus, index and server log in [default: a temporary folder, removed].",
)
@click.option("--questions", type=int, help=f"Questions asked in process [default: {COUNTS['questions'][0]}].")
@click.option("--ask-runs", type=int, help="tr-qa ask processes to time [default: 3].")
@click.option("--requests", type=int, help="HTTP requests per load level [default: 60, at least one per client].")
@click.option("--clients", help=f"Concurrent HTTP clients per level [default: {CLIENTS[0]}].")
@click.option(
    "--skip",
    default="",
    help="Parts to leave out, comma-separated: build, serve, http, peers (the index is built all the same; "
    "build leaves out its figures and the raw encode).",
)
@click.option(
    "--vectors",
    type=int,
    metavar="N",
    help="Also measure the vector index the builder picks for N generated vectors (tr_qa.bench.scale).",
)
@click.option("--quick", is_flag=True, help="Small counts (10 questions, 1 ask process, 1,4 clients, 8 requests).")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON object instead of the table.")
@click.option("--json-out", type=click.Path(path_type=Path, dir_okay=False), help="Also write the JSON here.")
def bench_cmd(
    corpus: Path | None,
    qa_file: Path | None,
    synthetic: int | None,
    squad_file: Path | None,
    workdir: Path | None,
    questions: int | None,
    ask_runs: int | None,
    requests: int | None,
    clients: str | None,
    skip: str,
    vectors: int | None,
    quick: bool,
    as_json: bool,
    json_out: Path | None,
) -> None:
    """Measure warm ask latency per stage, start-up, index build rate, memory, HTTP load and peer libraries.

    Runs on loopback and in a temporary folder; nothing is written but --json-out. Timings depend on what else
    the machine is doing: the header line shows its load.
    """
    from tr_qa.bench.figures import BenchConfig
    from tr_qa.bench.report import dumps, text
    from tr_qa.bench.runner import run_bench
    from tr_qa.config import Settings, project_root

    if synthetic is not None and corpus is not None:
        raise InputError("give --corpus or --synthetic, not both")
    pick = 1 if quick else 0
    given = {"questions": questions, "ask_runs": ask_runs, "requests": requests}
    counts = {name: both[pick] if given.get(name) is None else given[name] for name, both in COUNTS.items()}
    config = BenchConfig(
        corpus=corpus or Settings().corpus_dir,
        qa_file=qa_file or project_root() / "eval" / "qa.jsonl",
        synthetic=synthetic,
        squad_file=squad_file,
        workdir=workdir,
        clients=parse_clients(clients or CLIENTS[pick]),
        skip=frozenset(parse_list(skip, "--skip")) if skip.strip() else frozenset(),
        vectors=vectors,
        **counts,
    )
    result = run_bench(config, lambda message: click.echo(message, err=True))
    if json_out is not None:
        json_out.write_text(dumps(result) + "\n", encoding="utf-8")
        click.echo(f"wrote {json_out}", err=True)
    click.echo(dumps(result) if as_json else text(result))
