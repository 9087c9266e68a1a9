"""On-disk Parquet cache of normalised source data, keyed by source and revision.

A cache entry is a folder with ``documents``, ``queries`` and ``judgments`` Parquet files (and
``candidates``, in their given order, for re-ranking datasets) and a ``manifest.json``. It is
written under a temporary name and renamed into place, by the holder of the entry's lock, so an
entry that exists is complete; a crash leaves only a temporary folder, which ``harness.atomic.sweep``
removes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from harness import atomic
from harness.data.sources import RawData
from harness.paths import dataset_cache_dir
from harness.hashing import sha256

FORMAT_VERSION = 1


def entry_dir(kind: str, source_id: str, revision: dict) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "__", source_id)
    key = sha256({"format": FORMAT_VERSION, "kind": kind, "id": source_id, "revision": revision})[:16]
    return dataset_cache_dir() / kind / slug / key


def read(path: Path) -> RawData | None:
    if not (path / "manifest.json").is_file():
        return None
    docs = pq.read_table(path / "documents.parquet").to_pydict()
    queries = pq.read_table(path / "queries.parquet").to_pydict()
    judg = pq.read_table(path / "judgments.parquet").to_pydict()
    return RawData(
        documents=list(zip(docs["id"], docs["title"], docs["text"])),
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
        ids, titles, texts = zip(*raw.documents) if raw.documents else ((), (), ())
        pq.write_table(pa.table({"id": list(ids), "title": list(titles), "text": list(texts)}), tmp / "documents.parquet")
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
        (tmp / "manifest.json").write_text(json.dumps({**manifest, "counts": counts}, indent=2, sort_keys=True))
        if (path / "manifest.json").is_file():  # another process finished first: as good as ours
            shutil.rmtree(tmp)
            return
        if path.exists():  # an incomplete entry (no manifest) is never read; replace it
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
