#!/usr/bin/env bash
# Set up, index the seed corpus (only what changed) and start the web chat on http://127.0.0.1:7860/.
# Extra arguments go to `tr-qa serve`, e.g. scripts/chat.sh --allow-origin https://campaign.example
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
.venv/bin/tr-qa index
exec .venv/bin/tr-qa serve "$@"
