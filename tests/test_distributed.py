"""`tr-qa index --ray`: the same index as a local build, embedded by Ray Data workers; one-line errors without Ray."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tr_qa.cli import cli
from tr_qa.config import Settings
from tr_qa.embed import Embedder
from tr_qa.errors import IndexMismatchError
from tr_qa.index import build, distributed, expected_settings, load, mismatch
from tr_qa.index.distributed import RayEmbedder, import_ray

pytestmark = pytest.mark.integration

SEEDS = Path(__file__).resolve().parents[1] / "seeds"


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A two-CPU Ray instance on this machine for the module's tests (the CLI joins it), shut down after."""
    ray = import_ray()  # fails with the install line when the scale extra is missing
    # "local": a new instance even when this machine runs a Ray cluster of its own (that one would refuse num_cpus).
    ray.init("local", num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    yield
    ray.shutdown()


def small_corpus(tmp_path: Path) -> Path:
    """Three seed documents copied into tmp_path/corpus."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for src in sorted(SEEDS.glob("*.txt"))[:3]:
        shutil.copy(src, corpus / src.name)
    return corpus


def test_ray_build_gives_the_same_chunks_and_vectors_as_a_local_build(
    tmp_path: Path, local_ray: None, embedder: Embedder
) -> None:
    corpus = small_corpus(tmp_path)
    local = Settings(corpus_dir=corpus, index_dir=tmp_path / "local")
    build(local, embedder=embedder, progress=False)
    args = ["index", "--ray", "--corpus", str(corpus), "--index", str(tmp_path / "ray"), "--no-progress"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "indexed 3 documents" in result.output

    a, b = load(local.index_dir), load(tmp_path / "ray")
    assert [(c.doc_id, c.start, c.end, c.text) for c in a.chunks] == [
        (c.doc_id, c.start, c.end, c.text) for c in b.chunks
    ]
    assert len(a.chunks) > 10
    np.testing.assert_allclose(b.chunk_vectors, a.chunk_vectors, atol=1e-5)
    assert a.sentence_vectors is not None and b.sentence_vectors is not None
    np.testing.assert_allclose(b.sentence_vectors, a.sentence_vectors, atol=1e-5)
    # The model's identity is the local one: the Ray-built index is reused by a local build and loads as usual.
    assert b.manifest["model"] == a.manifest["model"]
    # The manifest says how the vectors were made: on Ray, on this host, chunks and sentences in one call.
    made = b.manifest["embedded"]
    assert made["engine"] == "ray" and made["workers"] >= 1 and made["hosts"] == [socket.gethostname()]
    here = a.manifest["embedded"]
    assert here["engine"] == "local" and "hosts" not in here
    assert 0 < made["new_chunks"] == here["new_chunks"] <= len(b.chunks)
    assert 0 < made["new_sentences"] == here["new_sentences"] <= len(b.sentence_vectors)
    assert mismatch(b.manifest, expected_settings(local, Embedder(1))) is None
    again = build(Settings(corpus_dir=corpus, index_dir=tmp_path / "ray"), embedder=embedder, progress=False)
    assert again.unchanged and again.embedded_chunks == 0


def test_ray_encode_keeps_the_order_of_the_texts_across_batches_and_workers(
    local_ray: None, embedder: Embedder
) -> None:
    texts = [f"Probation contract {i}: " + "the company ran the service. " * (i % 7 + 1) for i in range(40)]
    # Batches of 3 texts over two workers: 14 batches that finish in whatever order the workers take them.
    vectors = RayEmbedder(1, ray_batch=3, workers=2).encode(texts)
    assert vectors.shape == (40, embedder.dims) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, embedder.encode(texts), atol=1e-5)
    ray_embedder = RayEmbedder(1)
    assert ray_embedder.encode([]).shape == (0, embedder.dims)
    assert ray_embedder.provenance() == {"engine": "ray", "workers": 0, "hosts": []}  # nothing ran


def test_vectors_from_a_worker_with_another_model_are_refused(local_ray: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # The driver now expects other weights; the workers hash the model file they really load, in their own process.
    monkeypatch.setattr(distributed, "model_sha256", lambda path=None: "0" * 64)
    with pytest.raises(IndexMismatchError, match=r"a Ray worker embeds with another model .* expected sha256 0{64}"):
        RayEmbedder(1).encode(["The companies got a £42m bail out in 2016."])


def run_cli(*args: str, block_ray: bool = False) -> subprocess.CompletedProcess[str]:
    """``tr-qa ARGS`` in a fresh interpreter; with block_ray, as if the scale extra were not installed."""
    prelude = "import sys; sys.modules['ray'] = None; " if block_ray else "import sys; "
    code = prelude + "from tr_qa.cli import main; sys.argv = ['tr-qa', *sys.argv[1:]]; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "TR_QA_THREADS": "1"},
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_index_ray_without_the_extra_says_how_to_install_it_in_one_line(tmp_path: Path) -> None:
    corpus = small_corpus(tmp_path)
    proc = run_cli("index", "--ray", "--corpus", str(corpus), "--index", str(tmp_path / "index"), block_ray=True)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: --ray needs Ray Data, which is not installed: pip install")
    assert "[scale]" in proc.stderr and proc.stderr.count("\n") == 1
    assert not (tmp_path / "index").exists()


@pytest.mark.parametrize(
    ("address", "words"),
    [
        (f"127.0.0.1:{closed_port()}", "cannot reach a Ray cluster at 127.0.0.1:"),
        ("ray://127.0.0.1:notaport", "bad Ray address 'ray://127.0.0.1:notaport'"),
    ],
    ids=["nothing-listening", "malformed"],
)
def test_index_ray_with_a_bad_address_is_one_line(tmp_path: Path, address: str, words: str) -> None:
    corpus = small_corpus(tmp_path)
    proc = run_cli("index", "--ray", address, "--corpus", str(corpus), "--index", str(tmp_path / "index"))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: " + words) and proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / "index").exists()
