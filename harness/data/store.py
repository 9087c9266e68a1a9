"""On-disk Parquet cache of normalised source data, keyed by source, revision and the versions of
the libraries that parsed it.

A cache entry is a folder with ``documents``, ``queries`` and ``judgments`` Parquet files (and
``candidates``, in their given order, for re-ranking datasets) and a ``manifest.json`` holding the
checksums of every file (harness/integrity.py). It is written under a temporary name and renamed
into place, by the holder of the entry's lock; a crash leaves only a temporary folder, which
``harness.atomic.sweep`` removes. ``read`` verifies the files before Parquet sees them, so an entry
cut short or overwritten later is reported (``CorruptFileError``) and read from the source again,
never half-used.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from harness import atomic, integrity
from harness.data.corpus import COLUMNS, DocumentTable
from harness.data.sources import PARSERS, RawData
from harness.environment import versions
from harness.errors import CorruptFileError
from harness.hashing import sha256
from harness.paths import dataset_cache_dir

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
TABLES = ("documents.parquet", "queries.parquet", "judgments.parquet")
# A Parquet row group is what a reader decompresses at once: at most this many bytes of text (a
# worker reading a shard's span reads only the groups it overlaps), and this many documents.
ROW_GROUP_BYTES = 8 << 20
ROW_GROUP = 65536


def parsed_by(kind: str) -> dict[str, str | None]:
    """The versions of the libraries that parse a source kind's files (``PARSERS``)."""
    return versions(*PARSERS[kind])


def entry_dir(kind: str, source_id: str, revision: dict) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "__", source_id)
    key = sha256({"format": FORMAT_VERSION, "kind": kind, "id": source_id, "revision": revision,
                  "parsed_by": parsed_by(kind)})[:16]
    return dataset_cache_dir() / kind / slug / key


def read(path: Path) -> RawData | None:
    """The entry at ``path``; None when there is none, ``CorruptFileError`` when it is damaged."""
    if not path.exists():
        return None
    integrity.read_manifest(path / MANIFEST, TABLES)
    queries = pq.read_table(path / "queries.parquet").to_pydict()
    judg = pq.read_table(path / "judgments.parquet").to_pydict()
    return RawData(
        documents=DocumentTable(path / "documents.parquet"),  # read in batches, never whole
        queries=list(zip(queries["id"], queries["text"])),
        judgments=list(zip(judg["query_id"], judg["doc_id"], judg["relevance"])),
        candidates=_read_candidates(path / "candidates.parquet"),
    )


def _read_candidates(path: Path) -> dict[str, list[str]] | None:
    """Re-ranking candidates per query, in the source's order (``rank`` keeps it)."""
    if not path.is_file():
        return None
    table = pq.read_table(path).to_pydict()
    out: dict[str, list[tuple[int, str]]] = {}
    for qid, did, rank in zip(table["query_id"], table["doc_id"], table["rank"]):
        out.setdefault(qid, []).append((rank, did))
    return {qid: [did for _, did in sorted(ranked)] for qid, ranked in out.items()}


def write(path: Path, raw: RawData, manifest: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic.temporary(path)
    tmp.mkdir()
    try:
        write_documents(raw.documents, tmp / "documents.parquet")
        qids, qtexts = zip(*raw.queries) if raw.queries else ((), ())
        pq.write_table(pa.table({"id": list(qids), "text": list(qtexts)}), tmp / "queries.parquet")
        jq, jd, jr = zip(*raw.judgments) if raw.judgments else ((), (), ())
        pq.write_table(
            pa.table({"query_id": list(jq), "doc_id": list(jd), "relevance": pa.array(jr, type=pa.int32())}),
            tmp / "judgments.parquet",
        )
        if raw.candidates is not None:
            rows = [(q, d, rank) for q, docs in raw.candidates.items() for rank, d in enumerate(docs)]
            cq, cd, cr = zip(*rows) if rows else ((), (), ())
            table = pa.table({"query_id": pa.array(cq, type=pa.string()), "doc_id": pa.array(cd, type=pa.string()),
                              "rank": pa.array(cr, type=pa.int32())})
            pq.write_table(table, tmp / "candidates.parquet")
        counts = {"documents": len(raw.documents), "queries": len(raw.queries), "judgments": len(raw.judgments)}
        files = [*TABLES, *(["candidates.parquet"] if raw.candidates is not None else [])]
        integrity.write_manifest(tmp / MANIFEST, {**manifest, "counts": counts}, files)
        if _whole(path):  # another process finished first: as good as ours
            shutil.rmtree(tmp)
            return
        if path.exists():  # a damaged entry is never read; replace it
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_documents(documents, path: Path) -> None:
    """Documents (rows, or a ``DocumentTable``) as a Parquet file in row groups of at most
    ``ROW_GROUP_BYTES`` of text and ``ROW_GROUP`` documents, so that a span of them (a shard) is
    read without the rest and memory does not follow the corpus. Copied a batch at a time."""
    schema = pa.schema([("id", pa.string()), ("title", pa.string()), ("text", pa.string())])
    table = documents if isinstance(documents, DocumentTable) else DocumentTable.of(documents)
    pending: dict[str, list] = {c: [] for c in COLUMNS}
    size = 0
    with pq.ParquetWriter(path, schema) as out:
        for _, values in table.read(0, len(table), COLUMNS, 1024):
            for c in COLUMNS:
                pending[c].extend(values[c])
            size += sum(len(t or "") + len(h or "") for t, h in zip(values["text"], values["title"]))
            if size >= ROW_GROUP_BYTES or len(pending["id"]) >= ROW_GROUP:
                out.write_table(pa.table(pending, schema=schema), row_group_size=ROW_GROUP)
                pending, size = {c: [] for c in COLUMNS}, 0
        if pending["id"] or not len(table):
            out.write_table(pa.table(pending, schema=schema), row_group_size=ROW_GROUP)


def _whole(path: Path) -> bool:
    try:
        integrity.read_manifest(path / MANIFEST, TABLES)
        return True
    except CorruptFileError:
        return False
