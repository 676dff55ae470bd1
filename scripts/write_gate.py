"""Write eval/thresholds.json (the CI quality gate) from one test-split run of what ships.

Each minimum is the measured value minus 0.02 (about two of the 133 questions), so a real regression fails while the
figures stay deterministic for the same code and models; the comment lists the 95 % bootstrap intervals, so a change
can be told from sampling noise. Run after the reader or the judge changes:

  .venv/bin/tr-qa eval --qa eval/qa.jsonl --split test --json > /tmp/test.json
  .venv/bin/python scripts/write_gate.py /tmp/test.json eval/thresholds.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tr_qa.files import atomic_write_text
from tr_qa.metrics import INTERVAL_METRICS

# Gated: the headline figures with intervals, up to coverage@acc80 (acc90, aurc and ece move too much at 133 questions).
GATED = INTERVAL_METRICS[: INTERVAL_METRICS.index("coverage@acc80") + 1]
MARGIN = 0.02


def main() -> None:
    """Read the run's JSON, write the gate."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("run", type=Path, help="`tr-qa eval --qa eval/qa.jsonl --split test --json` output")
    ap.add_argument("out", type=Path, help="the gate file to write (eval/thresholds.json)")
    args = ap.parse_args()
    run = json.loads(args.run.read_text(encoding="utf-8"))
    gate: dict[str, object] = {}
    widths = []
    for name in GATED:
        value = float(run[name])
        lo, hi = run["intervals"][name]
        gate[name] = round(max(0.0, value - MARGIN), 3)
        widths.append(f"{name} {value:.3f} [{lo:.3f}, {hi:.3f}]")
    comment = (
        "CI gate for `tr-qa eval --qa eval/qa.jsonl --split test` (written by scripts/write_gate.py from one run of "
        "the shipped reader and judge). Each minimum is the measured value minus 0.02 (about two questions), so a "
        "real regression fails while the figures stay deterministic for the same code and models. The 95 % "
        "bootstrap intervals show how much of any change could be sampling noise of the question set: "
        + "; ".join(widths)
        + ". A change inside those intervals is not evidence of a better or worse system on new questions."
    )
    atomic_write_text(args.out, json.dumps({"_comment": comment, **gate}, indent=2) + "\n")
    print(json.dumps(gate, indent=1))


if __name__ == "__main__":
    main()
