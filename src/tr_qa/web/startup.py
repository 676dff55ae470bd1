"""Starting the server: ``tr-qa serve`` answers health checks at once and loads the models behind them.

``Startup`` is the ASGI app uvicorn runs. When the server starts it loads the models and builds the web app
(``tr_qa.web.app.build_app``: Gradio and all) in a background thread; until that is done it answers

- ``GET /healthz``: 200 ``{"status": "loading", "seconds": …}``. The process is alive (liveness): a supervisor must
  not restart a server for taking a few seconds to load.
- ``GET /readyz``: 503 ``{"status": "loading", …}`` with Retry-After. Not ready for traffic: what a load balancer
  or ``wait_ready`` polls.
- anything else: the request waits for the app, at most ``Settings.load_wait_s``, and is then answered by it; past
  that wait, or beyond ``MAX_WAITING`` waiting requests, 503 ``{"error": …}`` with Retry-After.

Once loaded, every request, health checks included, goes to the web app. If loading fails, ``/healthz`` and
``/readyz`` answer 503 ``{"status": "failed"}`` (the reason is in the log) and everything else 503.

``serve`` runs it in one process, or with ``--workers N`` as N uvicorn worker processes sharing the listening
socket, each with its own ``Startup`` and models (the index files are read-only and shared through the page cache).
Nothing here imports Gradio, torch or the index code at module level: they load in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tr_qa.config import Settings
from tr_qa.web.addresses import IPNetwork, parse_origins, parse_proxies
from tr_qa.web.limits import parse_rate_limit

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import Receive, Scope, Send

    from tr_qa.qa import QA

log = logging.getLogger("tr_qa.web")

# Requests allowed to wait for the models while the server starts; past it they are refused at once.
MAX_WAITING = 256
# What a refused request is told: loading takes a few seconds.
RETRY_AFTER_S = 5
HEALTH = "/healthz"
READY = "/readyz"
# How ``serve`` hands its settings to ``--workers`` processes, which uvicorn starts by importing ``worker_app``.
OVERRIDES_ENV = "TR_QA_SERVE_OVERRIDES"
SLOTS_ENV = "TR_QA_ANSWER_SLOTS"


@dataclass(frozen=True)
class WebConfig:
    """The web settings, checked: normalised origins, trusted proxy networks and the parsed rate limit."""

    origins: tuple[str, ...]
    proxies: tuple[IPNetwork, ...]
    rate_limit: int
    rate_window: float

    @classmethod
    def from_settings(cls, settings: Settings) -> WebConfig:
        """Check the web fields of ``settings``; InputError naming the first bad value."""
        return cls(
            parse_origins(settings.allow_origins),
            parse_proxies(settings.forwarded_allow_ips),
            *parse_rate_limit(settings.rate_limit),
        )


async def send_json(send: Send, status: int, body: dict[str, Any], *, head: bool = False, retry: bool = False) -> None:
    """A complete JSON response, never cached; with Retry-After when ``retry``."""
    data = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(data)).encode()),
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
    ]
    if retry:
        headers.append((b"retry-after", str(RETRY_AFTER_S).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else data})


class Startup:
    """The ASGI app uvicorn runs: health checks at once, everything else once ``load()`` has built the web app.

    ``load`` runs in a daemon thread when the server starts (ASGI lifespan; uvicorn's default) and returns the
    FastAPI app, whose own lifespan is then entered on the event loop and left when the server stops.
    """

    def __init__(self, load: Callable[[], FastAPI], wait_s: float) -> None:
        self._load = load
        self.wait_s = wait_s
        self.app: FastAPI | None = None
        self.failed = False
        self.started = time.monotonic()
        self._ready: asyncio.Event | None = None
        self._waiting = 0
        self._stack = contextlib.AsyncExitStack()
        self._task: asyncio.Task[None] | None = None

    @property
    def status(self) -> str:
        """``loading``, ``ok`` or ``failed``."""
        return "ok" if self.app is not None else "failed" if self.failed else "loading"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        loading = self.app is None
        health = scope["type"] == "http" and scope["path"] in (HEALTH, READY) and scope["method"] in ("GET", "HEAD")
        if loading and health:
            await self._health(scope, send)
            return
        if loading and not await self._wait():
            await self._refuse(scope, send)
            return
        assert self.app is not None
        await self.app(scope, receive, send)

    async def _health(self, scope: Scope, send: Send) -> None:
        head = scope["method"] == "HEAD"
        if self.failed:
            await send_json(send, 503, {"status": "failed"}, head=head)
            return
        body = {"status": "loading", "seconds": round(time.monotonic() - self.started, 1)}
        ready_check = scope["path"] == READY
        await send_json(send, 503 if ready_check else 200, body, head=head, retry=ready_check)

    async def _wait(self) -> bool:
        """Wait for the web app (bounded in time and in waiters); True once it is there."""
        if self._ready is None or self.failed or self._waiting >= MAX_WAITING:
            return False
        self._waiting += 1
        try:
            await asyncio.wait_for(self._ready.wait(), self.wait_s)
        except TimeoutError:
            pass
        finally:
            self._waiting -= 1
        return self.app is not None

    async def _refuse(self, scope: Scope, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1013})  # 1013: try again later
            return
        if scope["type"] != "http":
            return
        if self.failed:
            await send_json(send, 503, {"error": "the server could not load its models; its log says why"})
            return
        message = f"the server is starting (loading its models); try again in {RETRY_AFTER_S} s"
        await send_json(send, 503, {"error": message}, retry=True)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._ready = asyncio.Event()
                self._task = asyncio.get_running_loop().create_task(self._start())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._task is not None and not self._task.done():
                    self._task.cancel()
                await self._stack.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        built: asyncio.Future[FastAPI] = loop.create_future()

        def deliver(app: FastAPI | None, exc: BaseException | None) -> None:
            if built.done():
                return
            if exc is not None:
                built.set_exception(exc)
            else:
                built.set_result(app)  # type: ignore[arg-type]

        def work() -> None:
            app: FastAPI | None = None
            error: BaseException | None = None
            try:
                app = self._load()
            except BaseException as exc:  # any failure must reach the event loop, or requests would wait forever
                error = exc
            # A server stopped while loading has closed its loop: then there is no one left to tell.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(deliver, app, error)

        # A daemon thread, not the loop's executor: a server stopped while loading exits without waiting for it.
        threading.Thread(target=work, name="tr-qa-load", daemon=True).start()
        assert self._ready is not None
        try:
            app = await built
            # The web app's own lifespan: Gradio's queue and the answer gate start here and stop with the server.
            await self._stack.enter_async_context(app.router.lifespan_context(app))
        except asyncio.CancelledError:
            raise
        except Exception:
            self.failed = True
            log.exception("tr-qa: the server could not load its models")
        else:
            self.app = app
        finally:
            self._ready.set()


def app_loader(settings: Settings, qa: QA | None = None, say: Callable[[str], None] | None = None) -> Callable[[], Any]:
    """What ``Startup`` runs in the background: load the index (unless given), the models, then build the web app."""

    def load() -> FastAPI:
        started = time.monotonic()
        from tr_qa.qa import QA
        from tr_qa.web.app import build_app

        loaded = qa if qa is not None else QA.load(settings=settings)
        loaded.warm_up()  # the models load now, so the first visitor does not wait for them
        app = build_app(loaded, settings)
        if say is not None:
            say(
                f"tr-qa: process {os.getpid()} ready after {time.monotonic() - started:.1f} s of loading; light "
                f"embed: /embed.js (or, cached for a year, /embed.js?v={app.state.embed_version})"
            )
        return app

    return load


def ensure_index(settings: Settings) -> QA:
    """The QA over ``settings.index_dir``, building the index from the corpus first when it is missing or unusable."""
    import click

    from tr_qa.errors import IndexCorruptError, IndexMismatchError, IndexMissingError
    from tr_qa.qa import QA

    try:
        return QA.load(settings=settings)
    except (IndexMissingError, IndexCorruptError, IndexMismatchError) as exc:
        from tr_qa.index import build

        click.echo(f"{exc}\nbuilding the index from {settings.corpus_dir} first…", err=True)
        build(settings, progress=True, log=lambda msg: click.echo(msg, err=True))
        return QA.load(settings=settings)


def _say(message: str) -> None:
    import click

    click.echo(message, err=True)


def worker_app() -> Startup:
    """The app of one ``--workers`` process (uvicorn calls this factory in each): settings from ``serve``."""
    raw = json.loads(os.environ.get(OVERRIDES_ENV) or "{}")
    settings = Settings().with_overrides(
        corpus_dir=Path(raw["corpus_dir"]) if raw.get("corpus_dir") else None,
        index_dir=Path(raw["index_dir"]) if raw.get("index_dir") else None,
        allow_origins=tuple(raw.get("allow_origins", ())) or None,
        forwarded_allow_ips=tuple(raw.get("forwarded_allow_ips", ())) or None,
        answer_slots=raw.get("answer_slots"),
    )
    return Startup(app_loader(settings, say=_say), settings.load_wait_s)


def serve(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 7860,
    allow_origins: Sequence[str] = (),
    forwarded_allow_ips: Sequence[str] = (),
    workers: int | None = None,
) -> None:
    """Check the settings, load (or first build or repair) the index, then serve with uvicorn until interrupted.

    The socket is up as soon as the index is loaded; the models load behind it (see ``Startup``). ``allow_origins``
    and ``forwarded_allow_ips`` (from the command line) are added to the settings' own; ``workers`` overrides
    ``settings.workers``.
    """
    import uvicorn

    from tr_qa.errors import InputError

    settings = replace(
        settings,
        allow_origins=(*allow_origins, *settings.allow_origins),
        forwarded_allow_ips=(*forwarded_allow_ips, *settings.forwarded_allow_ips),
        workers=settings.workers if workers is None else workers,
    )
    if settings.workers < 1:
        raise InputError(f"workers must be at least 1, got {settings.workers}")
    if settings.workers > 1 and not os.environ.get(SLOTS_ENV, "").strip():
        # The processes are the parallelism: one question at a time in each keeps N workers on about N cores, where
        # two each would put twice as many model threads on them.
        settings = replace(settings, answer_slots=1)
    if settings.workers > 1 and settings.admin_token and settings.reload_check_s == 0:
        # An upload swaps the index in the one process that took it; without reload checks the others never would.
        raise InputError("TR_QA_ADMIN_TOKEN (document uploads) with --workers above 1 needs TR_QA_RELOAD_CHECK_S > 0")
    config = WebConfig.from_settings(settings)  # a bad origin, proxy or limit fails before anything loads
    qa: QA | None = ensure_index(settings)
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
    _say(f"tr-qa: chat on http://{shown}:{port}/  (API: POST /api/ask; widget: /widget.js)")
    _say(f"embedding allowed from: {', '.join(config.origins) or 'no other origin'}")
    proxies = ", ".join(map(str, config.proxies)) or "none (X-Forwarded-For is ignored)"
    _say(f"trusted proxies: {proxies}")
    _say(
        f"{settings.workers} process(es) loading the models; /healthz answers now, /readyz once they are loaded"
        if settings.workers > 1
        else "loading the models; /healthz answers now, /readyz once they are loaded"
    )
    # proxy_headers=False: ClientAddress decides whom to believe; uvicorn would trust 127.0.0.1 by default.
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": "warning",
        "proxy_headers": False,
        "server_header": False,
    }
    if settings.workers == 1:
        uvicorn.run(Startup(app_loader(settings, qa, say=_say), settings.load_wait_s), **options)
        return
    qa = None  # each worker loads its own; the supervisor keeps none of it
    os.environ[OVERRIDES_ENV] = json.dumps(
        {
            "corpus_dir": str(settings.corpus_dir),
            "index_dir": str(settings.index_dir),
            "allow_origins": list(settings.allow_origins),
            "forwarded_allow_ips": list(settings.forwarded_allow_ips),
            "answer_slots": settings.answer_slots,
        }
    )
    # uvicorn kills a worker that does not answer its supervisor's ping in time; loading torch can hold a worker's
    # interpreter lock for a while on a busy machine, which is not a hang.
    options["timeout_worker_healthcheck"] = 30
    uvicorn.run(f"{__name__}:worker_app", factory=True, workers=settings.workers, **options)
