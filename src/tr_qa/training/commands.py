"""The ``tr-qa train-reader`` and ``tr-qa export-reader`` commands (registered on the main CLI in ``tr_qa.cli``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from tr_qa.errors import InputError


@click.command("train-reader")
@click.option(
    "--train",
    "train_file",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="SQuAD v1.1 training file (.json or .json.xz), e.g. ../shared/bench/squad-v1.1-train/….xz",
)
@click.option(
    "--checkpoints",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path.home() / ".cache" / "tr-qa" / "reader-checkpoints",
    show_default=True,
    help="Checkpoint folder (keep it outside the repository); an interrupted run resumes from it.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where to export the int8 model and its card [default: the package's shipped model folder].",
)
@click.option("--no-export", is_flag=True, help="Train (or resume) only; export later with `tr-qa export-reader`.")
@click.option(
    "--init-from",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Start from a shipped reader folder instead of all-MiniLM-L6-v2 with a new head.",
)
@click.option(
    "--skip-questions",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Leave out the first N questions of the seeded order (those --init-from already learned).",
)
@click.option("--max-questions", type=click.IntRange(min=1), help="Train on this many questions of the seeded order.")
@click.option(
    "--hard-negatives",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    help='Share of questions that also get their article\'s best BM25 paragraph without the answer, as "no answer".',
)
@click.option(
    "--perturbed-negatives",
    type=click.FloatRange(0, 1),
    default=0.6,
    show_default=True,
    help='Share of questions tried with an entity swapped for another from the article, as "no answer".',
)
@click.option(
    "--cut-negatives",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    help='Share of questions that also get their own paragraph without the answer\'s sentences, as "no answer".',
)
@click.option(
    "--noun-negatives",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help='Share of questions tried with a common noun swapped for one the paragraph lacks, as "no answer".',
)
@click.option("--device", default="cpu", show_default=True, help='Where the training steps run: "cpu" or "cuda".')
@click.option(
    "--prepare-only",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Only build the examples with their negatives and write them to this file (for --prepared), then stop.",
)
@click.option(
    "--prepared",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Examples written by --prepare-only with the same settings (skips spaCy; e.g. on a GPU machine).",
)
@click.option(
    "--max-minutes",
    type=click.FloatRange(min=0, min_open=True),
    help="Stop after this many minutes of the run (checkpointed, held-out figures still measured); for leased time.",
)
@click.option("--epochs", type=float, default=1.0, show_default=True)
@click.option("--lr", type=float, default=5e-5, show_default=True)
@click.option("--warmup-ratio", type=click.FloatRange(0, 0.99), default=0.03, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--max-length", type=click.IntRange(min=64, max=512), default=384, show_default=True)
@click.option("--stride", type=click.IntRange(min=0), default=128, show_default=True)
@click.option("--seed", type=int, default=13, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--holdout-articles", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--eval-limit", type=click.IntRange(min=1), help="Score only this many held-out examples at the end.")
def train_reader_cmd(
    train_file: Path,
    checkpoints: Path,
    out: Path | None,
    no_export: bool,
    init_from: Path | None,
    skip_questions: int,
    max_questions: int | None,
    hard_negatives: float,
    perturbed_negatives: float,
    cut_negatives: float,
    noun_negatives: float,
    device: str,
    prepare_only: Path | None,
    prepared: Path | None,
    max_minutes: float | None,
    epochs: float,
    lr: float,
    warmup_ratio: float,
    batch_size: int,
    max_length: int,
    stride: int,
    seed: int,
    threads: int,
    holdout_articles: int,
    eval_limit: int | None,
) -> None:
    """Fine-tune the span reader on SQuAD with "no answer" negatives (seeded, resumable), then export it int8."""
    import time

    from tr_qa.training.config import TrainConfig
    from tr_qa.training.examples import write_prepared
    from tr_qa.training.train import train

    if not train_file.is_file():
        raise InputError(f"training file does not exist: {train_file}")
    try:
        cfg = TrainConfig(
            train_file=train_file.resolve(),
            out_dir=checkpoints,
            init_from=str(init_from.resolve()) if init_from else None,
            skip_questions=skip_questions,
            max_questions=max_questions,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            max_length=max_length,
            stride=stride,
            seed=seed,
            holdout_articles=holdout_articles,
            warmup_ratio=warmup_ratio,
            hard_negative_rate=hard_negatives,
            perturbed_negative_rate=perturbed_negatives,
            cut_negative_rate=cut_negatives,
            noun_negative_rate=noun_negatives,
            device=device,
            prepared=prepared.resolve() if prepared else None,
            threads=threads,
            deadline=time.time() + 60 * max_minutes if max_minutes else None,
            eval_limit=eval_limit,
            progress=sys.stderr.isatty(),
        )
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise InputError(f"--device {device}: this torch ({torch.__version__}) sees no CUDA device")
    try:
        if prepare_only is not None:
            data = write_prepared(cfg, prepare_only)
            click.echo(f"wrote {len(data.train)} training and {len(data.heldout)} held-out examples to {prepare_only}")
            return
        meta = train(cfg)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    click.echo(f"held-out: {json.dumps(meta.get('heldout_fp32'))}")
    if not no_export and not meta.get("stopped_early"):
        from tr_qa.training.export import export

        path = export(checkpoints, out, command=" ".join(sys.argv))
        click.echo(f"exported the reader to {path}")


@click.command("export-reader")
@click.option(
    "--checkpoints",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=Path.home() / ".cache" / "tr-qa" / "reader-checkpoints",
    show_default=True,
    help="The training run's checkpoint folder.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where to write the int8 model and its card [default: the package's shipped model folder].",
)
@click.option("--heldout-limit", type=click.IntRange(min=1), help="Measure on only this many held-out examples.")
@click.option(
    "--extra",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="A JSON object of figures measured after export (e.g. by scripts/compare_reader.sh), kept in metrics.json "
    "and shown in the card.",
)
def export_reader_cmd(checkpoints: Path, out: Path | None, heldout_limit: int | None, extra: Path | None) -> None:
    """Export a training checkpoint (finished or not) as the int8 reader with its metrics and model card."""
    from tr_qa.training.export import export

    extra_metrics = None
    if extra is not None:
        try:
            extra_metrics = json.loads(extra.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise click.UsageError(f"--extra {extra}: not a readable JSON file ({exc})") from None
        if not isinstance(extra_metrics, dict):
            raise click.UsageError(f"--extra {extra}: expected a JSON object, got {type(extra_metrics).__name__}")
    path = export(
        checkpoints, out, command=" ".join(sys.argv), heldout_limit=heldout_limit, extra_metrics=extra_metrics
    )
    click.echo(f"exported the reader to {path}; refit the judge: scripts/fit_confidence.py")
