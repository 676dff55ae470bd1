"""Running the app for tests and benchmarks: in a thread (``LiveServer``) or as ``tr-qa serve`` (``ServeProcess``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, timeout: float, alive: Any = None, path: str = "/healthz") -> float:
    """Poll ``url/healthz`` until it answers 200; seconds taken. RuntimeError on timeout or if ``alive()`` fails.

    ``tr-qa serve`` answers /healthz while its models still load (requests wait for them); ``wait_ready`` waits
    until they are loaded.
    """
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if alive is not None and not alive():
            raise RuntimeError(f"the server for {url} exited before it answered {path}")
        try:
            if httpx.get(f"{url}{path}", timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url}{path} did not answer within {timeout:g} s")


def wait_ready(url: str, timeout: float, alive: Any = None) -> float:
    """Poll ``url/readyz`` until it answers 200 (the models are loaded); seconds taken. RuntimeError as above."""
    return wait_healthy(url, timeout, alive, path="/readyz")


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class LiveServer:
    """A real uvicorn server for one ASGI app, in a thread, on a free port (as ``tr-qa serve`` runs it)."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        import uvicorn

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on", proxy_headers=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, timeout: float = 60) -> LiveServer:
        """Start and wait until /healthz answers."""
        self.thread.start()
        wait_healthy(self.url, timeout, self.thread.is_alive)
        return self

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for it."""
        self.server.should_exit = True
        self.thread.join(timeout=15)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class ServeProcess:
    """``tr-qa serve`` in a child process on a free port, its output captured to a file."""

    def __init__(self, args: Sequence[str], env: dict[str, str] | None = None, log: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [sys.executable, "-m", "tr_qa", "serve", "--port", str(self.port), *args]
        self.env = {**os.environ, **(env or {})}
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180, ready: bool = False) -> float:
        """Start the server and wait for /healthz (or with ``ready`` for /readyz); seconds to healthy (ready)."""
        out = self.log.open("wb") if self.log else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(self.args, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        finally:
            if self.log:
                out.close()  # type: ignore[union-attr]
        proc = self.proc
        return (wait_ready if ready else wait_healthy)(self.url, timeout, lambda: proc.poll() is None)

    def rss_mb(self) -> float:
        """The server's resident memory now."""
        assert self.proc is not None
        return rss_mb(self.proc.pid)

    def output(self) -> str:
        """Everything the server printed so far."""
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log and self.log.exists() else ""

    def stop(self) -> int:
        """Terminate the server and wait for it; its exit code."""
        if self.proc is None:
            return 0
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
