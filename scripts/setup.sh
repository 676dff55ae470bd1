#!/usr/bin/env bash
# Create .venv and install tr-qa into it. torch 2.13.0 goes first: it is the CPU wheel this machine has on disk,
# and an unpinned torch would pull a multi-GB CUDA build. Usage: scripts/setup.sh [extras, e.g. test]
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
# The tests run `tr-qa bench`, which measures its peers (txtai, Haystack): `test` brings the bench extra along.
if [[ ",$extras," == *",test,"* && ",$extras," != *",bench,"* ]]; then
  extras="$extras,bench"
fi
# tests/test_distributed.py runs `tr-qa index --ray` on a local Ray instance: `test` brings the scale extra along.
if [[ ",$extras," == *",test,"* && ",$extras," != *",scale,"* ]]; then
  extras="$extras,scale"
fi
if [ ! -x .venv/bin/python ]; then
  "${PYTHON:-python3}" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check torch==2.13.0
# The constraint keeps every extra's dependencies (txtai, Haystack need torch) on that same torch.
if [ -n "$extras" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -c <(echo torch==2.13.0) -e ".[$extras]"
else
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -c <(echo torch==2.13.0) -e .
fi
