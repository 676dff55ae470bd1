"""The index directory: manifest checks, incremental re-embedding, atomic writes, clear errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tr_qa import index
from tr_qa.config import Settings
from tr_qa.embed import Embedder
from tr_qa.errors import IndexCorruptError, IndexMismatchError, IndexMissingError
from tr_qa.qa import QA

ROOT = Path(__file__).resolve().parents[1]


def small_corpus(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name in ["000_c3ebf7a9a73dcbbe.txt", "004_a9da44ecae937e51.txt"]:
        shutil.copy(ROOT / "seeds" / name, path / name)
    return path


@pytest.fixture()
def small(tmp_path: Path, embedder: Embedder) -> Settings:
    settings = Settings(corpus_dir=small_corpus(tmp_path / "corpus"), index_dir=tmp_path / "index")
    index.build(settings, embedder=embedder, progress=False)
    return settings


def test_manifest_records_model_chunking_documents_and_packages(small: Settings, embedder: Embedder) -> None:
    data = index.load(small.index_dir, small, embedder)
    m = data.manifest
    assert m["format_version"] == index.FORMAT_VERSION
    assert m["model"]["id"] == "sentence-transformers/all-MiniLM-L6-v2" and m["model"]["dims"] == 384
    assert len(m["model"]["sha256"]) == 64
    assert m["chunking"] == {"splitter": m["chunking"]["splitter"], "size": 800, "overlap": 200}
    assert set(m["documents"]) == {"000_c3ebf7a9a73dcbbe.txt", "004_a9da44ecae937e51.txt"}
    assert {"faiss-cpu", "sentence-transformers", "torch"} <= set(m["packages"])
    assert m["built_at"] and m["counts"]["chunks"] == len(data.chunks) == data.faiss_index.ntotal
    for c in data.chunks:
        assert data.documents[c.doc_id].text[c.start : c.end] == c.text


def test_building_again_with_no_change_embeds_nothing(small: Settings, embedder: Embedder) -> None:
    report = index.build(small, embedder=embedder, progress=False)
    assert report.unchanged and report.embedded_chunks == 0


def test_changing_one_document_reembeds_only_its_chunks(small: Settings, embedder: Embedder) -> None:
    before = index.load(small.index_dir)
    path = small.corpus_dir / "004_a9da44ecae937e51.txt"
    path.write_text(path.read_text(encoding="utf-8") + "\nA new closing line about Napo.\n", encoding="utf-8")
    report = index.build(small, embedder=embedder, progress=False)
    after = index.load(small.index_dir)
    n_changed = sum(1 for c in after.chunks if c.doc_id == "004_a9da44ecae937e51.txt")
    assert report.changed == ("004_a9da44ecae937e51.txt",)
    assert report.embedded_chunks == n_changed
    assert report.reused_chunks == sum(1 for c in before.chunks if c.doc_id == "000_c3ebf7a9a73dcbbe.txt")
    # Reused vectors are the same vectors.
    old = [i for i, c in enumerate(before.chunks) if c.doc_id.startswith("000")]
    new = [i for i, c in enumerate(after.chunks) if c.doc_id.startswith("000")]
    assert (before.chunk_vectors[old] == after.chunk_vectors[new]).all()


def test_removed_document_leaves_the_index(small: Settings, embedder: Embedder) -> None:
    (small.corpus_dir / "004_a9da44ecae937e51.txt").unlink()
    report = index.build(small, embedder=embedder, progress=False)
    assert report.removed == ("004_a9da44ecae937e51.txt",) and report.embedded_chunks == 0
    assert set(index.load(small.index_dir).documents) == {"000_c3ebf7a9a73dcbbe.txt"}


def test_changed_chunk_settings_rebuild_and_old_settings_are_refused(small: Settings, embedder: Embedder) -> None:
    other = small.with_overrides(chunk_size=400, chunk_overlap=50)
    with pytest.raises(IndexMismatchError, match="chunk settings differ"):
        QA.load(settings=other, embedder=embedder)
    report = index.build(other, embedder=embedder, progress=False)
    assert report.rebuilt_all and report.reused_chunks == 0
    assert QA.load(settings=other, embedder=embedder).data.manifest["chunking"]["size"] == 400


def test_a_different_model_hash_is_a_mismatch(small: Settings, embedder: Embedder) -> None:
    data = index.load(small.index_dir)
    manifest = json.loads((data.path / "manifest.json").read_text())
    manifest["model"]["sha256"] = "0" * 64
    (data.path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match="different embedding model"):
        index.load(small.index_dir, small, embedder)
    assert index.build(small, embedder=embedder, progress=False).rebuilt_all


def test_missing_and_corrupt_indexes_give_one_line_errors(small: Settings, tmp_path: Path) -> None:
    with pytest.raises(IndexMissingError, match="tr-qa index"):
        index.load(tmp_path / "nowhere")
    gen = index.load(small.index_dir).path
    (gen / "faiss.index").write_bytes(b"garbage")
    with pytest.raises(IndexCorruptError, match="rebuild") as info:
        index.load(small.index_dir)
    assert "\n" not in str(info.value)
    (small.index_dir / index.CURRENT).write_text("gen-missing\n")
    with pytest.raises(IndexCorruptError, match="damaged"):
        index.load(small.index_dir)


def test_a_build_failing_midway_leaves_the_previous_index(
    small: Settings, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = index.load(small.index_dir)
    (small.corpus_dir / "new.txt").write_text("A new document about probation.\n", encoding="utf-8")

    def boom(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(index, "_write_text_atomic", boom)
    with pytest.raises(OSError, match="disk full"):
        index.build(small, embedder=embedder, progress=False)
    after = index.load(small.index_dir)
    assert after.path == before.path and set(after.documents) == set(before.documents)
    assert [p.name for p in small.index_dir.glob("gen-*")] == [before.path.name]


def test_killing_a_build_at_any_moment_leaves_a_usable_index(small: Settings) -> None:
    before = index.load(small.index_dir)
    for name in ["001_6c092b2caff0b2fa.txt", "002_d74444fc747f437f.txt", "003_ebd9b20a7e4f4e45.txt"]:
        shutil.copy(ROOT / "seeds" / name, small.corpus_dir / name)
    code = (
        "from pathlib import Path; from tr_qa.config import Settings; from tr_qa.index import build; "
        f"build(Settings(corpus_dir=Path({str(small.corpus_dir)!r}), index_dir=Path({str(small.index_dir)!r})),"
        " progress=False)"
    )
    for delay in (1.5, 4.0, 6.5):
        proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "TR_QA_THREADS": "1"})
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        data = index.load(small.index_dir)  # never raises: either the old or the new generation
        assert set(data.documents) in (set(before.documents), {p.name for p in small.corpus_dir.glob("*.txt")})
        for c in data.chunks:
            assert data.documents[c.doc_id].text[c.start : c.end] == c.text


def test_a_new_title_from_metadata_is_stored_without_embedding(small: Settings, embedder: Embedder) -> None:
    (small.corpus_dir / "metadata.json").write_text(
        json.dumps({"004_a9da44ecae937e51.txt": {"title": "West Midlands deal"}}), encoding="utf-8"
    )
    report = index.build(small, embedder=embedder, progress=False)
    assert not report.unchanged and report.embedded_chunks == 0
    assert index.load(small.index_dir).documents["004_a9da44ecae937e51.txt"].title == "West Midlands deal"
