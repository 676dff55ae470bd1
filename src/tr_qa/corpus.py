"""The corpus folder as a collection: add files to it, remove one, list what is indexed; the index follows each change
(only new text is embedded).

Files are checked before anything is written: each must be a document ``tr_qa.extract`` can read, must not land
outside the corpus folder, and must not replace a different file of the same name unless asked to. They are
written atomically under a hidden temporary name (which ingest never reads) and then linked into place, so a
file that appears meanwhile is never overwritten and a reader never sees half a file. If the index cannot be
updated afterwards, the files written are taken out again (or the replaced ones put back).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from tr_qa.analyse import Analyser
from tr_qa.config import Settings
from tr_qa.embed import Embedder
from tr_qa.errors import IndexCorruptError, IndexMismatchError, IndexMissingError, InputError
from tr_qa.extract import MAX_FILE_BYTES, ExtractError
from tr_qa.files import atomic_write_text, atomic_write_with, fsync_dir
from tr_qa.index import BuildReport, build, load
from tr_qa.index.store import ids_by_hash
from tr_qa.ingest import (
    METADATA_FILE,
    SUFFIXES,
    Skipped,
    content_hash,
    corpus_files,
    is_document_name,
    read_bytes,
)
from tr_qa.types import DocMeta

Log = Callable[[str], None]
Status = Literal["added", "replaced", "unchanged"]


class ConflictError(InputError):
    """A different file of that name is in the corpus already (and replacing it was not asked for)."""


@dataclass(frozen=True)
class Incoming:
    """A file on its way into the corpus, already read and checked: its id there, bytes and text's hash."""

    doc_id: str
    data: bytes
    source: str
    text_hash: str


@dataclass(frozen=True)
class Added:
    """One file put into the corpus (or found there already with the same bytes)."""

    doc_id: str
    source: str
    status: Status


@dataclass(frozen=True)
class AddReport:
    """What ``add_documents`` did: the files added, those refused and why, and the index update."""

    added: tuple[Added, ...]
    refused: tuple[Skipped, ...]
    build: BuildReport


@dataclass(frozen=True)
class DocumentInfo:
    """One indexed document as ``tr-qa list`` shows it."""

    id: str
    title: str
    chunks: int
    meta: DocMeta

    def to_dict(self) -> dict[str, Any]:
        """The ``tr-qa list --json`` shape: id, title, the five provenance fields, chunks."""
        return {
            "id": self.id,
            "title": self.title,
            **{f.name: getattr(self.meta, f.name) for f in fields(DocMeta)},
            "chunks": self.chunks,
        }


# ---------------------------------------------------------------------------------------------------------------
# Checks


def check_doc_id(doc_id: str) -> PurePosixPath:
    """A document id as a relative path inside the corpus; InputError naming it if it could point elsewhere."""
    if not isinstance(doc_id, str) or not doc_id.strip():
        raise InputError("document id is empty: give a path under the corpus folder, as `tr-qa list` shows it")
    if len(doc_id) > 1000 or any(ord(c) < 32 or c == "\\" for c in doc_id):
        raise InputError(f"document id {doc_id[:80]!r} contains characters a corpus path cannot have")
    path = PurePosixPath(doc_id)
    if path.is_absolute() or any(part in ("", ".", "..") or part.startswith(".") for part in doc_id.split("/")):
        raise InputError(f"document id {doc_id!r} must be a path under the corpus folder (no '..', no hidden parts)")
    return path


def _destination(corpus_dir: Path, doc_id: str) -> Path:
    """Where ``doc_id`` lives in the corpus; InputError if a linked folder on the way leads out of it."""
    rel = check_doc_id(doc_id)
    root = corpus_dir.resolve()
    dest = corpus_dir.joinpath(*rel.parts)
    folder = dest.parent
    while not folder.exists() and folder != corpus_dir:
        folder = folder.parent
    if not folder.resolve().is_relative_to(root):
        raise InputError(f"{doc_id} would be written outside the corpus folder (a linked folder leads elsewhere)")
    return dest


def incoming(doc_id: str, data: bytes, source: str) -> Incoming:
    """Check that ``data`` is a readable document named ``doc_id``; ExtractError with the reason if not."""
    check_doc_id(doc_id)
    if not is_document_name(PurePosixPath(doc_id).name):
        raise InputError(f"{doc_id}: the name must end in one of {', '.join(SUFFIXES)} to be read as a document")
    got = read_bytes(data, PurePosixPath(doc_id).name)
    return Incoming(doc_id, data, source, content_hash(got.text))


def _indexed_texts(index_dir: Path) -> dict[str, str]:
    """Text hash → document id of what the index holds now (empty when there is no usable index)."""
    try:
        return ids_by_hash(load(index_dir).documents)
    except (IndexMissingError, IndexCorruptError, IndexMismatchError):
        return {}


# ---------------------------------------------------------------------------------------------------------------
# Writing


def _write_new(dest: Path, data: bytes) -> None:
    """Create ``dest`` with ``data`` durably; ConflictError if a file of that name appeared meanwhile."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        try:
            os.link(tmp, dest)  # unlike a rename, a link never replaces what is there
        except FileExistsError:
            raise ConflictError(f"{dest} appeared while it was being added; nothing was overwritten") from None
        fsync_dir(dest.parent)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _write_over(dest: Path, data: bytes) -> None:
    """Replace ``dest`` with ``data`` atomically and durably."""
    atomic_write_with(dest, lambda fh: fh.write(data))
    os.chmod(dest, 0o644)


def _put_back(written: list[tuple[Path, bytes | None]]) -> None:
    """Undo writes: remove files that were new, restore the bytes of those replaced."""
    for dest, old in reversed(written):
        with contextlib.suppress(OSError):
            if old is None:
                dest.unlink()
            else:
                _write_over(dest, old)


# ---------------------------------------------------------------------------------------------------------------
# Adding


def add_incoming(
    settings: Settings,
    items: Sequence[Incoming],
    *,
    replace: bool = False,
    known: Mapping[str, str] | None = None,
    refused: Sequence[Skipped] = (),
    embedder: Embedder | None = None,
    analyser: Analyser | None = None,
    progress: bool = False,
    log: Log = lambda _msg: None,
) -> AddReport:
    """Write checked files into the corpus and update the index; the core of ``tr-qa add`` and the admin route.

    ``known`` maps the text hashes already indexed to their ids (read from the index when not given): a file
    with the same text as another document is refused, as the index would hold it once under the other name.
    ConflictError, before anything is written, if a different file has one of the names and ``replace`` is off.
    """
    corpus_dir = Path(settings.corpus_dir)
    if not corpus_dir.is_dir():
        raise InputError(f"corpus folder does not exist: {corpus_dir}")
    known = _indexed_texts(settings.index_dir) if known is None else known
    refusals = list(refused)
    earlier = len(refusals)
    plan: list[tuple[Incoming, Path, Status]] = []
    taken: dict[str, str] = {}  # text hash → id, within this batch
    for item in items:
        dest = _destination(corpus_dir, item.doc_id)
        if item.doc_id in {p[0].doc_id for p in plan}:
            raise InputError(f"two of the files would both be {item.doc_id} in the corpus; add them separately")
        same = taken.get(item.text_hash) or known.get(item.text_hash)
        if same is not None and same != item.doc_id:
            refusals.append(Skipped(item.source, f"not added: it has the same text as {same}, already in the corpus"))
            continue
        if dest.is_symlink() or dest.exists():
            if dest.is_file() and not dest.is_symlink() and dest.read_bytes() == item.data:
                status: Status = "unchanged"
            elif not replace:
                raise ConflictError(
                    f"{item.doc_id} is already in {corpus_dir} with different content; "
                    "add it under another name or replace it (--replace)"
                )
            elif dest.is_dir():
                raise ConflictError(f"{item.doc_id} is a folder in {corpus_dir}; it cannot be replaced by a file")
            else:
                status = "replaced"
        else:
            status = "added"
        taken[item.text_hash] = item.doc_id
        plan.append((item, dest, status))
    if not plan:
        reasons = "; ".join(f"{s.path}: {s.reason}" for s in refusals[:3])
        # Every file given is a copy of a document already there: a conflict, like a name that is taken.
        error = ConflictError if items and len(refusals) - earlier == len(items) else InputError
        raise error(f"nothing to add ({reasons})" if reasons else "nothing to add: no document files given")

    written: list[tuple[Path, bytes | None]] = []
    try:
        for item, dest, status in plan:
            if status == "added":
                _write_new(dest, item.data)
                written.append((dest, None))
            elif status == "replaced":
                old = None if dest.is_symlink() else dest.read_bytes()
                _write_over(dest, item.data)
                written.append((dest, old))
        report = build(settings, embedder=embedder, analyser=analyser, progress=progress, log=log)
    except BaseException:
        _put_back(written)
        raise
    # A file the build skipped after all (ingest has the last word) is taken out again, with its reason.
    skipped = {s.path: s.reason for s in report.skipped}
    added: list[Added] = []
    for item, dest, status in plan:
        reason = skipped.get(str(dest))
        if reason is None:
            added.append(Added(item.doc_id, item.source, status))
            continue
        refusals.append(Skipped(item.source, f"not indexed: {reason.removeprefix('skipped: ')}"))
        if status == "added":
            with contextlib.suppress(OSError):
                dest.unlink()
    return AddReport(tuple(added), tuple(refusals), report)


def _files_to_add(paths: Sequence[Path], corpus_dir: Path) -> tuple[list[tuple[Path, str]], list[Skipped]]:
    """(file, document id) for each path given: a file keeps its name, a folder its own name and inner paths."""
    root = corpus_dir.resolve()
    found: list[tuple[Path, str]] = []
    refused: list[Skipped] = []
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise InputError(f"{path} does not exist")
        if path.resolve().is_relative_to(root):
            raise InputError(f"{path} is inside the corpus folder already; run `tr-qa index` to index it")
        if path.is_file():
            if not is_document_name(path.name):
                raise InputError(f"{path}: the name must end in one of {', '.join(SUFFIXES)} to be read as a document")
            found.append((path, path.name))
            continue
        before = len(found)
        for folder, dirs, files in os.walk(path, followlinks=False):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if is_document_name(name):
                    file = Path(folder) / name
                    found.append((file, f"{path.resolve().name}/{file.relative_to(path).as_posix()}"))
        if len(found) == before:
            refused.append(Skipped(str(path), f"holds no document files ({', '.join(SUFFIXES)})"))
    return found, refused


def add_documents(
    settings: Settings,
    paths: Sequence[Path],
    *,
    replace: bool = False,
    progress: bool = False,
    log: Log = lambda _msg: None,
) -> AddReport:
    """Copy files and folders into the corpus (``tr-qa add``) and update the index; unreadable files are refused
    with their reason, the others added. InputError when nothing can be added or a name is taken."""
    corpus_dir = Path(settings.corpus_dir)
    if not corpus_dir.is_dir():
        raise InputError(f"corpus folder does not exist: {corpus_dir}")
    files, refused = _files_to_add(paths, corpus_dir)
    items: list[Incoming] = []
    for file, doc_id in files:
        try:
            size = file.stat().st_size
            if size > MAX_FILE_BYTES:
                raise ExtractError(f"is too large ({size:,} bytes; the limit is {MAX_FILE_BYTES:,})")
            items.append(incoming(doc_id, file.read_bytes(), str(file)))
        except ExtractError as exc:
            refused.append(Skipped(str(file), f"not added: {exc}"))
        except OSError as exc:
            refused.append(Skipped(str(file), f"not added: cannot be read ({exc.strerror or exc})"))
    return add_incoming(settings, items, replace=replace, refused=refused, progress=progress, log=log)


# ---------------------------------------------------------------------------------------------------------------
# Removing and listing


def _drop_metadata_entry(corpus_dir: Path, doc_id: str) -> None:
    """Take ``doc_id``'s entry out of metadata.json, if it has one (the file is rewritten atomically)."""
    path = corpus_dir / METADATA_FILE
    if path.is_symlink() or not path.is_file():
        return
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return  # a broken metadata.json is reported by every build; it is not this command's to repair
    if isinstance(data, dict) and doc_id in data:
        del data[doc_id]
        atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def remove_document(
    settings: Settings, doc_id: str, *, progress: bool = False, log: Log = lambda _msg: None
) -> BuildReport:
    """Delete one document's file (never what a link points to) and its metadata entry, then update the index."""
    corpus_dir = Path(settings.corpus_dir)
    if not corpus_dir.is_dir():
        raise InputError(f"corpus folder does not exist: {corpus_dir}")
    dest = _destination(corpus_dir, doc_id)
    if not (dest.is_symlink() or dest.is_file()) or not is_document_name(dest.name):
        raise InputError(f"no document {doc_id!r} in {corpus_dir}; `tr-qa list` shows the ids")
    if not any(other != doc_id and real is not None for other, real in corpus_files(corpus_dir)):
        raise InputError(f"{doc_id} is the only document in {corpus_dir}; an index needs at least one")
    dest.unlink()
    _drop_metadata_entry(corpus_dir, doc_id)
    return build(settings, progress=progress, log=log)


def list_documents(settings: Settings) -> list[DocumentInfo]:
    """The indexed documents in id order, with their provenance and chunk counts (read from the index)."""
    data = load(settings.index_dir)
    counts = data.chunk_counts()
    return [
        DocumentInfo(d.id, d.title, counts[d.id], d.meta) for d in sorted(data.documents.values(), key=lambda d: d.id)
    ]
