"""The ``tr-qa eval`` command (registered on the main CLI in ``tr_qa.cli``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from tr_qa.cli_common import EXIT_FAILURE, build_index, load_qa, settings_from
from tr_qa.config import RETRIEVERS, Settings
from tr_qa.errors import InputError


@click.command("eval")
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
    "--reader",
    "reader_dir",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    help="Another reader folder than the shipped one (a candidate); give its judge with --confidence.",
)
@click.option(
    "--confidence",
    "confidence_file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="The judge file fitted for --reader (scripts/fit_confidence.py --reader DIR --out FILE).",
)
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
    reader_dir: Path | None,
    confidence_file: Path | None,
    gold_paragraph: bool,
    as_json: bool,
) -> None:
    """Measure retrieval, answers, abstention and selective answering on a question file or a SQuAD file."""
    from tr_qa import evaluate as ev
    from tr_qa import metrics as mt
    from tr_qa import report as rp

    if (qa_file is None) == (squad_file is None):
        raise InputError("give exactly one of --qa FILE or --squad FILE")
    settings = settings_from(index=index_dir).with_overrides(reader_dir=reader_dir, confidence_file=confidence_file)
    if gold_paragraph:
        if squad_file is None:
            raise InputError("--gold-paragraph reads SQuAD paragraphs: give --squad FILE")
        out = ev.reader_on_gold(squad_file, limit, not as_json and sys.stderr.isatty(), settings.reader_dir)
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
        out.update({k: summary[k] for k in ("retriever", "reader", "intervals", "by_type", "by_split", "by_retriever")})
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
