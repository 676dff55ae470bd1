"""TrainConfig: every knob of a reader training run, shared by ``tr-qa train-reader`` and ``train()``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

# Fields that change what is learned: a checkpoint made with other values cannot be resumed.
_RUN_FIELDS = (
    "init_from",
    "skip_questions",
    "max_questions",
    "epochs",
    "lr",
    "batch_size",
    "max_length",
    "stride",
    "seed",
    "holdout_articles",
    "warmup_ratio",
    "hard_negative_rate",
    "perturbed_negative_rate",
    "cut_negative_rate",
    "noun_negative_rate",
    "bf16",
)


@dataclass(frozen=True)
class TrainConfig:
    """A reader training run: data, starting point, negatives mix, optimisation and checkpointing.

    Questions are shuffled with ``seed``; the first ``skip_questions`` of that order are left out (they were
    learned by the model in ``init_from``), and the next ``max_questions`` (all when None) are trained on. Each
    question adds, with probability ``hard_negative_rate``, the paragraph of its article that BM25 ranks highest
    for it among those that do not hold the answer, and with probability ``perturbed_negative_rate`` a copy of
    the question with one named entity or number swapped for another of the same type from its article, asked
    of its own paragraph; with ``cut_negative_rate`` its own paragraph without the answer's sentences, and with
    ``noun_negative_rate`` the question with a common noun swapped (``tr_qa.training.negatives``). Every negative is
    learned as "no answer" ([CLS] as the start and end target).

    ``device`` is where the steps run ("cpu", "cuda"); ``prepared`` names a file written by ``prepare_only`` that
    holds the examples with their negatives, so a machine without spaCy (or a second run) skips that stage.
    """

    train_file: Path
    out_dir: Path
    init_from: str | None = None
    skip_questions: int = 0
    max_questions: int | None = None
    epochs: float = 1.0
    lr: float = 1e-4
    batch_size: int = 16
    max_length: int = 384
    stride: int = 128
    seed: int = 13
    holdout_articles: int = 20
    warmup_ratio: float = 0.1
    hard_negative_rate: float = 0.0
    perturbed_negative_rate: float = 0.0
    cut_negative_rate: float = 0.0
    noun_negative_rate: float = 0.0
    bf16: bool = True
    threads: int = 1
    checkpoint_every: int = 500
    checkpoint_minutes: float = 10.0
    eval_limit: int | None = None
    progress: bool = True
    deadline: float | None = None
    stop_after_steps: int | None = None
    schedule_end_step: int | None = None
    device: str = "cpu"
    prepared: Path | None = None

    def __post_init__(self) -> None:
        checks = {
            "lr": 0 < self.lr < 1,
            "epochs": self.epochs > 0,
            "batch_size": self.batch_size >= 1,
            "max_length": 32 <= self.max_length <= 512,
            "stride": 0 <= self.stride < self.max_length,
            "skip_questions": self.skip_questions >= 0,
            "hard_negative_rate": 0 <= self.hard_negative_rate <= 1,
            "perturbed_negative_rate": 0 <= self.perturbed_negative_rate <= 1,
            "cut_negative_rate": 0 <= self.cut_negative_rate <= 1,
            "noun_negative_rate": 0 <= self.noun_negative_rate <= 1,
            "device": self.device.split(":")[0] in ("cpu", "cuda"),
            "warmup_ratio": 0 <= self.warmup_ratio < 1,
            "threads": self.threads >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"{name} is out of range: {getattr(self, name)!r}")

    def run_params(self) -> dict[str, Any]:
        """The fields that define what is learned (recorded in checkpoints and the model card)."""
        out = {k: v for k, v in asdict(self).items() if k in _RUN_FIELDS}
        out["optimizer"] = "AdamW(weight_decay=0.01, betas=(0.9, 0.999), eps=1e-8)"
        out["schedule"] = "linear warmup then linear decay to 0"
        out["grad_clip"] = 1.0
        # Runs from before the later negative kinds existed recorded no rate for them: 0 then, so they still resume.
        for name in ("cut_negative_rate", "noun_negative_rate"):
            if out[name] == 0:
                del out[name]
        return out

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names of all fields, in order."""
        return tuple(f.name for f in fields(cls))
