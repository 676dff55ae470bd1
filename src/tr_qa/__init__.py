"""tr-qa: offline, extractive question answering over a document collection."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

# Set before torch, transformers or gradio are imported anywhere: no hub access, no telemetry, and OpenMP
# threads that sleep instead of spinning (a spinning thread steals a core that another process needs).
for _key, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "OMP_WAIT_POLICY": "PASSIVE",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(_key, _value)

__version__ = "0.1.0"

__all__ = ["QA", "__version__"]

if TYPE_CHECKING:
    from tr_qa.qa import QA


def __getattr__(name: str) -> Any:
    # ``from tr_qa import QA`` loads the answering stack only when asked for: the CLI's other commands, the web
    # server's start-up and ``tr_qa.config`` users need none of it.
    if name == "QA":
        from tr_qa.qa import QA

        return QA
    raise AttributeError(f"module 'tr_qa' has no attribute {name!r}")
