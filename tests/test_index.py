"""The index directory: manifest checks, incremental re-embedding, atomic writes, clear errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from test_extract import PAGE_TWO_SENTENCE, make_pdf

from tr_qa import index
from tr_qa.config import Settings
from tr_qa.embed import Embedder
from tr_qa.errors import IndexCorruptError, IndexMismatchError, IndexMissingError, IndexWriteError, InputError
from tr_qa.index import writer
from tr_qa.ingest import content_hash, ingest
from tr_qa.qa import QA
from tr_qa.types import DocMeta

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.integration  # real embedding model, real FAISS


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
    on_disk = json.loads((data.path / "manifest.json").read_text(encoding="utf-8"))
    assert set(on_disk["documents"]) == {"000_c3ebf7a9a73dcbbe.txt", "004_a9da44ecae937e51.txt"}
    # Loaded, the per-document list is not held (it grows with the collection); the counts come from the chunks.
    assert "documents" not in m
    assert data.chunk_counts() == {d: e["chunks"] for d, e in on_disk["documents"].items()}
    assert {"faiss-cpu", "sentence-transformers", "torch"} <= set(m["packages"])
    assert m["built_at"] and m["counts"]["chunks"] == len(data.chunks) == data.faiss_index.ntotal
    for c in data.chunks:
        assert data.documents[c.doc_id].text[c.start : c.end] == c.text


def test_building_again_with_no_change_embeds_nothing(small: Settings, embedder: Embedder) -> None:
    report = index.build(small, embedder=embedder, progress=False)
    assert report.unchanged and report.embedded_chunks == 0


def test_a_build_embeds_its_chunks_and_sentences_in_one_call(tmp_path: Path, embedder: Embedder) -> None:
    # An embedder on Ray starts a pool of workers, each loading the model, per call: one call per build.
    calls: list[int] = []

    class Counting(Embedder):
        def encode(self, texts: list[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
            calls.append(len(texts))
            return embedder.encode(texts, batch_size=batch_size, progress=progress)

    settings = Settings(corpus_dir=small_corpus(tmp_path / "corpus"), index_dir=tmp_path / "index")
    index.build(settings, embedder=Counting(1), progress=False)
    made = index.load(settings.index_dir).manifest["embedded"]
    assert calls == [made["new_chunks"] + made["new_sentences"]] and made["new_sentences"] > made["new_chunks"] > 0


def test_changing_one_document_reembeds_only_its_new_text(small: Settings, embedder: Embedder) -> None:
    before = index.load(small.index_dir)
    path = small.corpus_dir / "004_a9da44ecae937e51.txt"
    path.write_text(path.read_text(encoding="utf-8") + "\nA new closing line about Napo.\n", encoding="utf-8")
    report = index.build(small, embedder=embedder, progress=False)
    after = index.load(small.index_dir)
    old_texts = {c.text for c in before.chunks}
    new_texts = [c.text for c in after.chunks if c.text not in old_texts]
    assert report.changed == ("004_a9da44ecae937e51.txt",)
    # Only the chunks whose text is new are embedded: the appended line changes the last chunk, not the others.
    assert report.embedded_chunks == len(new_texts) >= 1
    assert report.embedded_chunks < sum(1 for c in after.chunks if c.doc_id == "004_a9da44ecae937e51.txt")
    assert report.reused_chunks == len(after.chunks) - len(new_texts)
    # The manifest counts what this build embedded, not what it holds.
    assert after.manifest["embedded"] == {
        "engine": "local",
        "threads": embedder.threads,
        "new_chunks": len(new_texts),
        "new_sentences": 1,  # the appended line
    }
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
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writer, "atomic_write_text", boom)
    with pytest.raises(IndexWriteError, match=r"cannot write the index in .* \(No space left on device\)") as info:
        index.build(small, embedder=embedder, progress=False)
    assert "\n" not in str(info.value)
    after = index.load(small.index_dir)
    assert after.path == before.path and set(after.documents) == set(before.documents)
    assert [p.name for p in small.index_dir.glob("gen-*")] == [before.path.name]


# Where a kill lands is controlled, not guessed with sleeps: the build runs in a child process whose chosen step
# writes a marker file and then waits, and the test kills it there.
_PAUSED_BUILD = """
import sys, time
from pathlib import Path
from tr_qa.config import Settings
from tr_qa.index import builder, writer
corpus, index_dir, marker, point = sys.argv[1:5]

def pause(*args, **kwargs):
    Path(marker).write_text("here")
    time.sleep(600)

if point == "embedding":
    builder.embed_changes = pause
elif point == "writing":
    original = writer.atomic_write_text
    def write(path, text):
        if Path(path).name == "manifest.json":
            pause()
        return original(path, text)
    writer.atomic_write_text = write
elif point == "after-swap":
    writer.remove_stale_generations = pause
builder.build(Settings(corpus_dir=Path(corpus), index_dir=Path(index_dir)), progress=False)
"""


@pytest.mark.parametrize(("point", "survivor"), [("embedding", "old"), ("writing", "old"), ("after-swap", "new")])
def test_a_build_killed_at_each_step_leaves_the_generation_it_should(
    small: Settings, embedder: Embedder, tmp_path: Path, point: str, survivor: str
) -> None:
    before = index.load(small.index_dir)
    shutil.copy(ROOT / "seeds" / "002_d74444fc747f437f.txt", small.corpus_dir / "002_d74444fc747f437f.txt")
    new_docs = {p.name for p in small.corpus_dir.glob("*.txt")}
    marker = tmp_path / "paused"
    proc = subprocess.Popen(
        [sys.executable, "-c", _PAUSED_BUILD, str(small.corpus_dir), str(small.index_dir), str(marker), point],
        env={**os.environ, "TR_QA_THREADS": "1"},
    )
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            assert proc.poll() is None, f"the build ended before reaching {point}"
            assert time.monotonic() < deadline, f"the build never reached {point}"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    data = index.load(small.index_dir)  # never raises
    if survivor == "old":
        assert data.path == before.path and set(data.documents) == set(before.documents)
    else:
        assert data.path != before.path and set(data.documents) == new_docs
    for c in data.chunks:
        assert data.documents[c.doc_id].text[c.start : c.end] == c.text
    # The next build finishes the job and leaves exactly one generation.
    index.build(small, embedder=embedder, progress=False)
    assert set(index.load(small.index_dir).documents) == new_docs
    assert len(list(small.index_dir.glob("gen-*"))) == 1


def test_a_new_title_from_metadata_is_stored_without_embedding(small: Settings, embedder: Embedder) -> None:
    (small.corpus_dir / "metadata.json").write_text(
        json.dumps({"004_a9da44ecae937e51.txt": {"title": "West Midlands deal"}}), encoding="utf-8"
    )
    report = index.build(small, embedder=embedder, progress=False)
    assert not report.unchanged and report.embedded_chunks == 0
    assert index.load(small.index_dir).documents["004_a9da44ecae937e51.txt"].title == "West Midlands deal"


def test_killed_builds_leave_nothing_behind_after_the_next_build(small: Settings, embedder: Embedder) -> None:
    live = index.load(small.index_dir).path.name
    # What kills leave: a generation never swapped in, the previous one after a swap, a half-written pointer.
    (small.index_dir / "gen-20200101-000000-half").mkdir()
    (small.index_dir / "gen-20200101-000000-half" / "faiss.index").write_bytes(b"partial")
    (small.index_dir / "gen-20190101-000000-old").mkdir()
    (small.index_dir / ".CURRENT.tmp1234").write_text("gen-20200101-000000-half\n")
    report = index.build(small, embedder=embedder, progress=False)
    assert report.unchanged  # nothing to embed, yet the leftovers go
    assert sorted(p.name for p in small.index_dir.iterdir()) == sorted([index.CURRENT, index.LOCK, live])


# --- a damaged index: one line naming the file, and `tr-qa index` rebuilds it ------------------------------------

TINY = {
    "napo.txt": "Napo news\n\nNapo is the probation union. It opposed the reforms in 2014.\n\n"
    "The union said the plan would fail. Members voted against it.\n",
    "crc.txt": "CRC report\n\nThe companies were paid £42m in 2016. Inspectors criticised the work.\n",
}


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    """A built index of two short documents, copied by each test that damages it."""
    base = tmp_path_factory.mktemp("tiny")
    (base / "corpus").mkdir()
    for name, text in TINY.items():
        (base / "corpus" / name).write_text(text, encoding="utf-8")
    index.build(Settings(corpus_dir=base / "corpus", index_dir=base / "index"), embedder=embedder, progress=False)
    return base


@pytest.fixture()
def tiny(tiny_index: Path, tmp_path: Path) -> Settings:
    shutil.copytree(tiny_index, tmp_path, dirs_exist_ok=True)
    return Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")


def _gen(settings: Settings) -> Path:
    return settings.index_dir / (settings.index_dir / index.CURRENT).read_text().strip()


def _edit_json(path: Path, change: Callable[[dict], object]) -> None:
    data = json.loads(path.read_text())
    result = change(data)
    path.write_text(json.dumps(data if result is None else result))


def _edit_jsonl(path: Path, change: Callable[[dict], None], line: int = 0) -> None:
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    change(rows[line])
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _append_first_line(path: Path) -> None:
    text = path.read_text()
    path.write_text(text + text.splitlines(keepends=True)[0])


def _save(path: Path, array: np.ndarray) -> None:
    with path.open("wb") as fh:
        np.save(fh, array)


def _faiss_of_dims(path: Path, dims: int, rows: int) -> None:
    import faiss

    flat = faiss.IndexFlatIP(dims)
    flat.add(np.ones((rows, dims), np.float32))
    faiss.write_index(flat, str(path))


# (what is damaged, how, the file the message must name, words it must contain)
DAMAGE: list = [
    pytest.param(
        lambda s, g: (s.index_dir / "CURRENT").write_bytes(b"\x89PNG\r\n\x00\xff"),
        "CURRENT",
        "not text",
        id="binary-CURRENT",
    ),
    pytest.param(
        lambda s, g: (s.index_dir / "CURRENT").write_text("gen-missing\n"),
        "CURRENT",
        "does not exist",
        id="CURRENT-names-nothing",
    ),
    pytest.param(
        lambda s, g: (s.index_dir / "CURRENT").write_text("../../etc\n"),
        "CURRENT",
        "not a generation",
        id="CURRENT-traversal",
    ),
    pytest.param(
        lambda s, g: (g / "manifest.json").write_text("[]"),
        "manifest.json",
        "holds list, not an object",
        id="manifest-list",
    ),
    pytest.param(
        lambda s, g: _edit_json(g / "manifest.json", lambda m: m.update(model="MiniLM")),
        "manifest.json",
        "model must be an object",
        id="manifest-string-model",
    ),
    pytest.param(
        lambda s, g: (g / "manifest.json").write_text('{"format_version": 1,'),
        "manifest.json",
        "not JSON",
        id="manifest-truncated",
    ),
    pytest.param(lambda s, g: (g / "manifest.json").unlink(), "manifest.json", "No such file", id="manifest-missing"),
    pytest.param(
        lambda s, g: _edit_json(g / "manifest.json", lambda m: m["counts"].update(chunks=999)),
        "manifest.json",
        "counts differ",
        id="manifest-counts",
    ),
    pytest.param(
        lambda s, g: (g / "sentences.npy").write_bytes(b""),
        "sentences.npy",
        "not a NumPy array",
        id="sentences-empty-file",
    ),
    pytest.param(
        lambda s, g: _save(g / "sentences.npy", np.load(g / "sentences.npy").astype(np.float64)),
        "sentences.npy",
        "expected float32",
        id="sentences-float64",
    ),
    pytest.param(
        lambda s, g: _save(g / "sentences.npy", np.load(g / "sentences.npy")[:-1]),
        "sentences.npy",
        "expected float32",
        id="sentences-short",
    ),
    pytest.param(
        lambda s, g: _save(g / "sentences.npy", np.full_like(np.load(g / "sentences.npy"), np.nan)),
        "sentences.npy",
        "not finite",
        id="sentences-nan",
    ),
    pytest.param(
        lambda s, g: (g / "faiss.index").write_bytes(b"garbage"),
        "faiss.index",
        "FAISS cannot read it",
        id="faiss-garbage",
    ),
    pytest.param(
        lambda s, g: _faiss_of_dims(g / "faiss.index", 8, index.load(s.index_dir).faiss_index.ntotal),
        "faiss.index",
        "vectors of 384, found",
        id="faiss-wrong-dims",
    ),
    pytest.param(
        lambda s, g: _save(g / "vectors.npy", np.load(g / "vectors.npy")[:-1]),
        "vectors.npy",
        "expected float32",
        id="vectors-short",
    ),
    pytest.param(
        lambda s, g: _save(g / "vectors.npy", np.full_like(np.load(g / "vectors.npy"), np.inf)),
        "vectors.npy",
        "not finite",
        id="vectors-infinite",
    ),
    pytest.param(
        lambda s, g: (g / "vectors.npy").write_bytes(b"\x93NUMPY"), "vectors.npy", "not a NumPy", id="vectors-cut"
    ),
    pytest.param(
        lambda s, g: (g / "bm25" / "vocab.index.json").write_text('{"probation": 0}'),
        "bm25/vocab.index.json",
        "differ from what the manifest records",
        id="bm25-vocabulary-edited",
    ),
    pytest.param(
        lambda s, g: (g / "bm25" / "data.csc.index.npy").unlink(),
        "bm25/data.csc.index.npy",
        "No such file",
        id="bm25-scores-missing",
    ),
    pytest.param(
        lambda s, g: _edit_json(g / "manifest.json", lambda m: m["vectors"].update(index="hnsw")),
        "manifest.json",
        "vectors.index must be",
        id="manifest-unknown-vector-index",
    ),
    pytest.param(
        lambda s, g: _edit_jsonl(g / "chunks.jsonl", lambda r: r.update(end=10**6)),
        "chunks.jsonl",
        "lie outside",
        id="chunk-offsets-outside",
    ),
    pytest.param(
        lambda s, g: _edit_jsonl(g / "chunks.jsonl", lambda r: r.update(start=r["start"] + 1, end=r["end"] + 1)),
        "chunks.jsonl",
        "does not match its text",
        id="chunk-offsets-shifted",
    ),
    pytest.param(
        lambda s, g: _edit_jsonl(g / "chunks.jsonl", lambda r: r.update(doc="other.txt")),
        "chunks.jsonl",
        "names no indexed document",
        id="chunk-unknown-document",
    ),
    pytest.param(
        lambda s, g: _edit_jsonl(g / "documents.jsonl", lambda r: r.update(text=r["text"].upper())),
        "documents.jsonl",
        "does not match its hash",
        id="document-text-edited",
    ),
    pytest.param(
        lambda s, g: (g / "documents.jsonl").write_bytes(b"\xff\xfe{}\n"),
        "documents.jsonl",
        "not UTF-8",
        id="documents-not-utf8",
    ),
    pytest.param(
        lambda s, g: (g / "documents.jsonl").write_text((g / "documents.jsonl").read_text()[:-40]),
        "documents.jsonl",
        "is not JSON",
        id="documents-truncated",
    ),
    pytest.param(
        lambda s, g: _edit_jsonl(g / "documents.jsonl", lambda r: r["analysis"]["sentences"].append([0, 10**6])),
        "documents.jsonl",
        "outside",
        id="sentence-outside-document",
    ),
    pytest.param(
        lambda s, g: _edit_jsonl(g / "documents.jsonl", lambda r: r["meta"].update(published="3 May 2016")),
        "documents.jsonl",
        "provenance (meta) of",
        id="meta-bad-date",
    ),
    pytest.param(
        lambda s, g: _edit_jsonl(g / "documents.jsonl", lambda r: r.update(comments=[[5, 10**6]])),
        "documents.jsonl",
        "comments of",
        id="comments-outside-document",
    ),
    pytest.param(
        lambda s, g: _append_first_line(g / "documents.jsonl"),
        "documents.jsonl",
        "appears on more than one line",
        id="document-repeated",
    ),
    pytest.param(
        lambda s, g: _edit_jsonl(g / "documents.jsonl", lambda r: r.pop("pages")),
        "documents.jsonl",
        "pages of",
        id="pages-missing",
    ),
]


@pytest.mark.parametrize(("damage", "file", "words"), DAMAGE)
def test_damaged_index_is_one_line_naming_the_file_and_a_build_repairs_it(
    tiny: Settings, embedder: Embedder, damage, file: str, words: str
) -> None:
    damage(tiny, _gen(tiny))
    with pytest.raises(IndexCorruptError) as info:
        index.load(tiny.index_dir, tiny, embedder)
    message = str(info.value)
    assert "\n" not in message and words in message and "tr-qa index" in message
    assert f"index file {tiny.index_dir}" in message and f"/{file} is damaged" in message
    with pytest.raises(IndexCorruptError):
        QA.load(settings=tiny, embedder=embedder)
    logged: list[str] = []
    report = index.build(tiny, embedder=embedder, progress=False, log=logged.append)
    assert report.rebuilt_all and not report.unchanged
    assert any(f"/{file} is damaged" in line and "rebuilding the index from the corpus" in line for line in logged)
    repaired = index.load(tiny.index_dir, tiny, embedder)
    assert set(repaired.documents) == set(TINY)
    assert [p.name for p in tiny.index_dir.glob("gen-*")] == [repaired.path.name]


def test_a_missing_pointer_or_another_format_is_rebuilt(tiny: Settings, embedder: Embedder) -> None:
    _edit_json(_gen(tiny) / "manifest.json", lambda m: m.update(format_version=99))
    with pytest.raises(IndexMismatchError, match=f"index format 99 is not {index.FORMAT_VERSION}"):
        index.load(tiny.index_dir)
    assert index.build(tiny, embedder=embedder, progress=False).rebuilt_all
    (tiny.index_dir / index.CURRENT).unlink()
    with pytest.raises(IndexMissingError):
        index.load(tiny.index_dir)
    assert index.build(tiny, embedder=embedder, progress=False).rebuilt_all
    assert set(index.load(tiny.index_dir).documents) == set(TINY)


def tr_qa(*args: str, env: dict[str, str] | None = None, unprivileged: bool = False) -> subprocess.CompletedProcess:
    """Run the CLI; ``unprivileged`` drops root's power to write where permissions forbid it (setpriv)."""
    command = [sys.executable, "-m", "tr_qa", *args]
    if unprivileged and os.geteuid() == 0:
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--", *command]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**os.environ, "TR_QA_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", **(env or {})},
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    ("damage", "file", "words"),
    [
        p
        for p in DAMAGE
        if p.id
        in ("binary-CURRENT", "manifest-list", "manifest-string-model", "sentences-empty-file", "chunk-offsets-outside")
    ],
)
def test_cli_ask_says_one_line_and_cli_index_repairs(tiny: Settings, damage, file: str, words: str) -> None:
    damage(tiny, _gen(tiny))
    where = ["--index", str(tiny.index_dir)]
    asked = tr_qa("ask", "How much were the companies paid?", *where)
    assert asked.returncode == 1 and "Traceback" not in asked.stderr
    assert (
        len(asked.stderr.strip().splitlines()) == 1 and f"/{file} is damaged" in asked.stderr and words in asked.stderr
    )
    built = tr_qa("index", "--corpus", str(tiny.corpus_dir), *where, "--no-progress")
    assert built.returncode == 0, built.stderr
    assert "Traceback" not in built.stderr and "rebuilding the index from the corpus" in built.stderr
    assert "indexed 2 documents" in built.stdout
    assert set(index.load(tiny.index_dir).documents) == set(TINY)


def _set_writable(root: Path, writable: bool) -> None:
    for path in [root, *root.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755 if writable else 0o555)
        else:
            path.chmod(0o644 if writable else 0o444)


def test_a_read_only_index_answers_and_refuses_to_build_in_one_line(tiny: Settings) -> None:
    where = ["--index", str(tiny.index_dir)]
    corpus = ["--corpus", str(tiny.corpus_dir)]
    _set_writable(tiny.index_dir, False)
    try:
        checked = tr_qa("index", *corpus, *where, "--no-progress", unprivileged=True)
        assert checked.returncode == 0, checked.stderr
        assert "index up to date" in checked.stdout + checked.stderr and "Traceback" not in checked.stderr
        asked = tr_qa("ask", "How much were the companies paid in 2016?", *where, "--json", unprivileged=True)
        assert asked.returncode == 0, asked.stderr
        assert json.loads(asked.stdout)["passages"]
        (tiny.corpus_dir / "new.txt").write_text("A new report on probation.\n", encoding="utf-8")
        refused = tr_qa("index", *corpus, *where, "--no-progress", unprivileged=True)
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
        assert refused.stderr.strip().splitlines() == [
            f"error: cannot write the index in {tiny.index_dir} (Permission denied); make it writable or choose "
            "another folder with --index"
        ]
    finally:
        _set_writable(tiny.index_dir, True)
    assert set(index.load(tiny.index_dir).documents) == set(TINY)  # untouched


# --- the corpus: duplicates, links out of it, nothing at all -----------------------------------------------------


def test_identical_documents_and_chunks_are_embedded_once_and_indexed_once(tmp_path: Path, embedder: Embedder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    original = (ROOT / "seeds" / "000_c3ebf7a9a73dcbbe.txt").read_text(encoding="utf-8")
    for i in range(200):
        (corpus / f"copy_{i:03d}.txt").write_text(original, encoding="utf-8")
    # A repost: the same article under a new headline, so most of its chunks repeat the original's.
    (corpus / "repost.txt").write_text("Reposted from elsewhere\n\n" + original, encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    logged: list[str] = []
    report = index.build(settings, embedder=embedder, progress=False, log=logged.append)
    assert report.documents == 2 and len(report.skipped) == 199
    assert all("same text as copy_000.txt" in s.reason for s in report.skipped)
    data = index.load(settings.index_dir)
    texts = [c.text for c in data.chunks]
    assert len(texts) == len(set(texts))  # each text once: a query cannot get the same passage twice
    assert report.duplicate_chunks >= 2 and report.embedded_chunks == len(texts)
    assert data.manifest["counts"]["duplicate_chunks"] == report.duplicate_chunks
    qa = QA(data, settings, embedder)
    shown = [
        p.text
        for p in qa.retriever.passages(qa.retriever.search("bail out", embedder.encode(["bail out"])[0], "hybrid"), 5)
    ]
    assert len(shown) == len(set(shown))


def test_links_out_of_the_corpus_are_never_read(tmp_path: Path, embedder: Embedder) -> None:
    corpus = tmp_path / "corpus"
    outside = tmp_path / "outside"
    corpus.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("The secret password is hunter2.\n", encoding="utf-8")
    (corpus / "a.txt").write_text("Probation news\nThe contract was worth £9m.\n", encoding="utf-8")
    (corpus / "passwd.txt").symlink_to("/etc/passwd")
    (corpus / "secret.txt").symlink_to(outside / "secret.txt")
    (corpus / "up.txt").symlink_to(Path("..") / "outside" / "secret.txt")
    (corpus / "folder").symlink_to(outside, target_is_directory=True)
    (corpus / "again.txt").symlink_to(corpus / "a.txt")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    report = index.build(settings, embedder=embedder, progress=False)
    data = index.load(settings.index_dir)
    assert set(data.documents) == {"a.txt"}
    assert not any("hunter2" in d.text or "root:" in d.text for d in data.documents.values())
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert set(reasons) == {"passwd.txt", "secret.txt", "up.txt", "again.txt"}
    assert all("links outside the corpus folder" in reasons[n] for n in ("passwd.txt", "secret.txt", "up.txt"))
    assert "a link to a.txt" in reasons["again.txt"]


@pytest.mark.parametrize("contents", [{}, {"empty.txt": "  \n", "notes.doc": "not a document name", "x.pdf": "%PDF-"}])
def test_an_empty_corpus_is_an_error_naming_the_folder(tmp_path: Path, contents: dict[str, str]) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in contents.items():
        (corpus / name).write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=f"no documents to index in {corpus}"):
        index.build(Settings(corpus_dir=corpus, index_dir=tmp_path / "index"), progress=False)
    assert not (tmp_path / "index").exists()
    proc = tr_qa("index", "--corpus", str(corpus), "--index", str(tmp_path / "index"), "--no-progress")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: no documents to index in {corpus}")


# --- provenance, PDF pages and reader comments --------------------------------------------------------------------


def test_provenance_pages_and_comments_are_stored_and_a_metadata_change_embeds_nothing(
    tmp_path: Path, embedder: Embedder
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(ROOT / "seeds" / "001_6c092b2caff0b2fa.txt", corpus)
    (corpus / "report.pdf").write_bytes(make_pdf([["Page one is about caseloads."], [PAGE_TWO_SENTENCE]]))
    meta = {"report.pdf": {"outlet": "HM Inspectorate of Probation", "kind": "report", "published": "2018-06-07"}}
    (corpus / "metadata.json").write_text(json.dumps(meta), encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    index.build(settings, embedder=embedder, progress=False)
    data = index.load(settings.index_dir, settings, embedder)
    read = {d.id: d for d in ingest(corpus).documents}
    assert set(data.documents) == set(read)
    for doc_id, doc in data.documents.items():
        assert doc == replace(read[doc_id], path=doc.path)  # text, title, meta, pages and comments all come back
    blog, pdf = data.documents["001_6c092b2caff0b2fa.txt"], data.documents["report.pdf"]
    assert len(blog.comments) == 6 and not blog.pages and len(pdf.pages) == 2
    assert pdf.meta == DocMeta(outlet="HM Inspectorate of Probation", published="2018-06-07", kind="report")
    # Generation files can be read by a server running as another user.
    assert data.path.stat().st_mode & 0o777 == 0o755
    assert {f.stat().st_mode & 0o777 for f in data.path.rglob("*") if f.is_file()} == {0o644}
    assert {f.stat().st_mode & 0o777 for f in data.path.rglob("*") if f.is_dir()} == {0o755}

    # null clears what the file states (reportlab stamps a fixed creation date, which is no publication date).
    newer = {"report.pdf": {"kind": "briefing", "published": None}}
    (corpus / "metadata.json").write_text(json.dumps(newer), encoding="utf-8")
    report = index.build(settings, embedder=embedder, progress=False)
    assert not report.unchanged and report.changed == () and report.embedded_chunks == 0
    assert index.load(settings.index_dir).documents["report.pdf"].meta == DocMeta(kind="briefing")
    assert index.build(settings, embedder=embedder, progress=False).unchanged


# --- the index at scale: approximate search, memory-mapped arrays, 8-bit sentence vectors ---------------------------


@pytest.fixture(scope="module")
def large_tiny(tiny_index: Path, tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Settings:
    """The TINY corpus indexed as a large index (the threshold set below its chunk count)."""
    base = tmp_path_factory.mktemp("large")
    settings = Settings(corpus_dir=tiny_index / "corpus", index_dir=base / "index", large_index_chunks=2)
    index.build(settings, embedder=embedder, progress=False)
    return settings


def test_the_vector_index_is_exact_below_the_threshold_and_ivf_tuned_from_it(
    tiny: Settings, large_tiny: Settings
) -> None:
    import faiss

    small = index.load(tiny.index_dir)
    assert small.manifest["vectors"] == {"index": "flat"} and isinstance(small.faiss_index, faiss.IndexFlatIP)
    assert small.manifest["sentence_vectors"] == "float32" and small.sentence_vectors.dtype == np.float32
    large = index.load(large_tiny.index_dir)
    entry = large.manifest["vectors"]
    assert entry["index"] == "ivf-sq4" and isinstance(large.faiss_index, faiss.IndexIVFScalarQuantizer)
    assert large.faiss_index.sq.qtype == faiss.ScalarQuantizer.QT_4bit
    assert entry["recall_at_10"] >= entry["target_recall"] == 0.95 and entry["recall_queries"] > 0
    assert large.faiss_index.nlist == entry["lists"] and large.faiss_index.nprobe == entry["nprobe"]
    # A large index stores its sentence vectors as 8-bit integers: a quarter of the space, nearly the same cosines.
    assert large.manifest["sentence_vectors"] == "int8" and large.large and not small.large
    assert np.load(large.path / "sentences.npy", mmap_mode="r").dtype == np.int8
    assert large.sentence_vectors.shape == small.sentence_vectors.shape
    rows = np.arange(len(small.sentence_vectors))
    assert np.abs(large.sentence_vectors[rows] - small.sentence_vectors[rows]).max() <= 0.5 / 127 + 1e-6


def test_the_threshold_is_a_setting_with_an_environment_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TR_QA_LARGE_INDEX_CHUNKS", "1234")
    assert Settings().large_index_chunks == 1234
    monkeypatch.setenv("TR_QA_LARGE_INDEX_CHUNKS", "lots")
    with pytest.raises(InputError, match="TR_QA_LARGE_INDEX_CHUNKS must be a whole number, got 'lots'"):
        Settings()


def test_loaded_vectors_and_bm25_are_read_from_their_files_and_texts_on_demand(
    large_tiny: Settings, embedder: Embedder
) -> None:
    from tr_qa.index.columns import StringColumn, Vocabulary
    from tr_qa.index.lexical import build_lexical
    from tr_qa.index.rows import RowFile
    from tr_qa.index.store import ChunkTable, DocumentStore
    from tr_qa.text import terms

    data = index.load(large_tiny.index_dir)
    assert isinstance(data.chunk_vectors, RowFile) and data.chunk_vectors.path.name == "vectors.npy"
    assert isinstance(data.sentence_vectors.array, RowFile) and data.sentence_vectors.array.dtype == np.int8
    on_disk = np.load(data.path / "vectors.npy")
    np.testing.assert_array_equal(data.chunk_vectors[[1, 0, 1]], on_disk[[1, 0, 1]])
    # Nothing of the generation is memory-mapped, before or after a question: a mapped row can pull a whole
    # page-cache folio into the resident set, which then grows with every question towards the files' size.
    QA(data, large_tiny, embedder).candidates("How much were the companies paid?")
    with open("/proc/self/maps") as fh:
        assert [line for line in fh if str(data.path) in line] == []
    assert isinstance(data.documents, DocumentStore) and isinstance(data.chunks, ChunkTable)
    assert data.chunks.start.dtype == np.int32 and len(data.chunks.start) == len(data.chunks)
    # Each chunk's sentence rows are columns too: the rows of the sentences that start inside it.
    for i, c in enumerate(data.chunks):
        first, (lo, hi) = data.documents.first_sentence(c.doc_id), data.chunks.sentences[i]
        starts = [s for s, _ in data.analyses[c.doc_id].sentences]
        assert list(range(lo, hi)) == [first + j for j, s in enumerate(starts) if c.start <= s < c.end]
    # Per document only columns are held: ids in one buffer, hashes as bytes; the rest comes back from the line.
    store = data.documents
    assert isinstance(store.ids, StringColumn) and data.chunks.doc_ids is store.ids
    assert store.row_of("napo.txt") == list(store).index("napo.txt")
    assert store.row_of("missing.txt") is None and "missing.txt" not in store
    assert store.sha256("napo.txt") == content_hash(store["napo.txt"].text)
    assert store.nbytes < 200 * len(store)
    # BM25's vocabulary is compact too, and scores every chunk as the index built from the same texts does.
    vocabulary = data.bm25.vocab_dict
    assert isinstance(vocabulary, Vocabulary) and set(vocabulary.values()) == set(range(len(vocabulary)))
    fresh = build_lexical(c.text for c in data.chunks).bm25
    for question in ("probation officers", "napo union", "zyzzyva unknown"):
        q = terms(question)
        np.testing.assert_allclose(data.bm25.get_scores(q), fresh.get_scores(q), rtol=1e-6)
    for c in data.chunks:
        assert data.documents[c.doc_id].text[c.start : c.end] == c.text


def test_bm25_loaded_from_disk_scores_exactly_as_one_built_in_memory(tiny: Settings) -> None:
    from tr_qa.retrieve import Retriever

    data = index.load(tiny.index_dir)
    on_disk = Retriever(data, 0.6, 0.5)
    in_memory = Retriever(replace(data, bm25=None), 0.6, 0.5)
    assert on_disk.typical_score == in_memory.typical_score
    for question in ("How much were the companies paid?", "Napo union reforms 2014", "nothing matches zebra"):
        assert (on_disk.bm25_scores(question) == in_memory.bm25_scores(question)).all()


def test_a_large_index_answers_with_offsets_into_the_documents(
    large_tiny: Settings, tiny: Settings, embedder: Embedder
) -> None:
    settings = large_tiny.with_overrides(reader_passages=0)
    large = QA.load(settings=settings, embedder=embedder)
    exact = QA.load(settings=tiny.with_overrides(reader_passages=0), embedder=embedder)
    result = large.ask("How much were the companies paid in 2016?")
    assert result.answer is not None and result.answer.text == "£42m"
    doc = large.documents[result.answer.doc_id].text
    assert doc[result.answer.start : result.answer.end] == "£42m"
    for p in result.passages:
        text = large.documents[p.doc_id].text
        assert text[p.start : p.end] == p.text
        assert all(text[h.start : h.end] and p.start <= h.start < h.end <= p.end for h in p.highlights)
    # The same sentences, found by the first-row column instead of a count over the corpus, as in the small index.
    assert large.highlighter.sentences_in("crc.txt", 0, 200) == exact.highlighter.sentences_in("crc.txt", 0, 200)
    assert large.highlighter.idf("paid") > 0


def test_chunks_are_checked_while_their_document_is_read_and_any_order_still_loads(
    tiny: Settings, tmp_path: Path
) -> None:
    from tr_qa.index import loader

    gen = _gen(tiny)
    store, _, in_order = loader._documents(gen / "documents.jsonl", gen / "chunks.jsonl")
    assert in_order is not None  # the builder's order: every chunk was checked in the one pass over the documents
    one_pass = in_order.table(store)
    two_pass = loader._chunks(gen / "chunks.jsonl", store)
    for column in ("doc", "start", "end", "sentences"):
        np.testing.assert_array_equal(getattr(one_pass, column), getattr(two_pass, column))
    # Chunks in another order: the single pass gives up and they are read on their own, the same checks applied.
    lines = (gen / "chunks.jsonl").read_text().splitlines(keepends=True)
    shuffled = tmp_path / "chunks.jsonl"
    shuffled.write_text("".join(reversed(lines)))
    assert loader._documents(gen / "documents.jsonl", shuffled)[2] is None
    again = loader._chunks(shuffled, store)
    assert sorted(zip(again.doc.tolist(), again.start.tolist(), strict=True)) == sorted(
        zip(one_pass.doc.tolist(), one_pass.start.tolist(), strict=True)
    )


def test_a_large_index_built_with_8_bit_codes_still_loads(large_tiny: Settings, tmp_path: Path) -> None:
    import faiss

    from tr_qa.index.vectors import IVF_SQ8, build_vector_index

    copy = tmp_path / "index"
    shutil.copytree(large_tiny.index_dir, copy)
    gen = copy / (copy / index.CURRENT).read_text().strip()
    old = build_vector_index(np.load(gen / "vectors.npy"), IVF_SQ8)  # what large indexes were built as before
    faiss.write_index(old.index, str(gen / "faiss.index"))
    _edit_json(gen / "manifest.json", lambda m: m.update(vectors=old.manifest()))
    data = index.load(copy)
    assert data.manifest["vectors"]["index"] == IVF_SQ8 and data.faiss_index.sq.qtype == faiss.ScalarQuantizer.QT_8bit
    assert data.faiss_index.nprobe == old.nprobe
    # The codes must be what the manifest names: 4-bit ones under an 8-bit name are damage.
    four = build_vector_index(np.load(gen / "vectors.npy"), "ivf-sq4")
    faiss.write_index(four.index, str(gen / "faiss.index"))
    with pytest.raises(IndexCorruptError, match="names a ivf-sq8 index, found other codes"):
        index.load(copy)


def test_a_large_index_whose_faiss_file_is_not_the_kind_its_manifest_names_is_damaged(
    large_tiny: Settings, tmp_path: Path
) -> None:
    copy = tmp_path / "index"
    shutil.copytree(large_tiny.index_dir, copy)
    gen = copy / (copy / index.CURRENT).read_text().strip()
    _faiss_of_dims(gen / "faiss.index", 384, index.load(copy).faiss_index.ntotal)
    with pytest.raises(IndexCorruptError) as info:
        index.load(copy)
    message = str(info.value)
    assert "\n" not in message and "/faiss.index is damaged" in message
    assert "the manifest names a ivf-sq4 index, found IndexFlatIP" in message


def test_a_large_index_with_float_sentence_vectors_is_damaged(large_tiny: Settings, tmp_path: Path) -> None:
    copy = tmp_path / "index"
    shutil.copytree(large_tiny.index_dir, copy)
    gen = copy / (copy / index.CURRENT).read_text().strip()
    _save(gen / "sentences.npy", np.load(gen / "sentences.npy").astype(np.float32))
    with pytest.raises(IndexCorruptError, match=r"/sentences.npy is damaged \(expected int8 .*, found float32"):
        index.load(copy)
