"""Following the index: a server notices a new generation built by another process and answers from it.

Every ``Settings.reload_check_s`` seconds the server reads ``index/CURRENT`` (a few bytes). When it names another
generation than the one being served (``tr-qa index`` or ``tr-qa add`` ran, another ``--workers`` process took an
upload, another machine rebuilt a shared index), the new generation is loaded in a thread, with the models already
in memory, and swapped in (``LiveQA.swap``): questions already running finish on the old one. A generation that
cannot be loaded is logged once and the server keeps answering from what it has.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from tr_qa.errors import TrQaError
from tr_qa.index import current_generation

if TYPE_CHECKING:
    from tr_qa.web.admin import LiveQA

log = logging.getLogger("tr_qa.web")


class GenerationWatcher:
    """Swaps in the generation ``CURRENT`` names whenever it is not the one ``live`` serves."""

    def __init__(self, live: LiveQA, interval_s: float) -> None:
        self.live = live
        self.interval_s = interval_s
        self._refused: str | None = None  # a generation that failed to load: not tried again

    def check(self) -> bool:
        """Load and swap in a new generation if there is one; True when it did. Blocking: run it in a thread."""
        qa = self.live.current
        try:
            name = current_generation(qa.settings.index_dir).name
        except TrQaError:
            return False  # no pointer or a damaged one: a build is under way or broke; keep what is loaded
        if name in (qa.data.path.name, self._refused):
            return False
        # An upload on this server holds the lock while it builds and swaps: it will serve the new generation itself.
        if not self.live.update_lock.acquire(blocking=False):
            return False
        try:
            qa = self.live.current
            if name == qa.data.path.name:
                return False
            from tr_qa.qa import QA

            try:
                new = QA.load(settings=qa.settings, embedder=qa.embedder, reader=qa.reader)
            except (TrQaError, OSError) as exc:
                self._refused = name
                log.warning("tr-qa: keeping index generation %s; %s cannot be loaded: %s", qa.data.path.name, name, exc)
                return False
            self.live.swap(new)
            log.warning("tr-qa: now answering from index generation %s (%d documents)", name, len(new.documents))
            return True
        finally:
            self.live.update_lock.release()

    async def run(self) -> None:
        """Check every ``interval_s`` seconds until cancelled (the server stops)."""
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await asyncio.to_thread(self.check)
            except Exception:  # a bug here must not stop the watching, nor the server
                log.exception("tr-qa: checking the index for a new generation failed")
