#!/usr/bin/env bash
# Create .venv and install tr-qa into it. torch 2.13.0 goes first: it is the CPU wheel this machine has on disk,
# and an unpinned torch would pull a multi-GB CUDA build. Usage: scripts/setup.sh [extras, e.g. test]
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
if [ ! -x .venv/bin/python ]; then
  "${PYTHON:-python3}" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check torch==2.13.0
if [ -n "$extras" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[$extras]"
else
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
fi
