"""The late-interaction retriever's approximate indexes (``index: plaid`` or ``faiss``): what they
add to its settings, their build after ``index()``, and their search. The index itself is
harness/index/approximate.py; this module only connects it to the retriever's stores and costs."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from harness.index.approximate import ApproximateIndex
from harness.runs import Run


def approximate_settings(retriever) -> dict[str, Any]:
    """The ``index`` section of the retriever's settings, resolved for the depth when it is known."""
    if retriever.index_settings.kind == "exact":
        return {}
    depth = retriever._depth
    return {"index": retriever.index_settings.resolved(depth),
            "search": f"{retriever.index_settings.kind}, then exact MaxSim over its candidates"}


def prepare_approximate(retriever, parts: list[tuple[dict, int, Any]]) -> None:
    """Build (or find) the approximate index of each shard; ``parts``: (key, first, token store)."""
    if retriever.index_settings.kind == "exact":
        retriever._approximate = None
        return
    index = ApproximateIndex(retriever.index_settings)
    compressed = {first: c for first, _, c in retriever._parts}
    dim = retriever.dim or retriever._store.dim
    index.prepare([(key, first, shard, compressed[first]) for key, first, shard in parts], dim)
    retriever._approximate = index
    # What searching needs is the index and the store it re-scores from: its bytes are the result's
    # storage figure (the storage plot's), the store's alone stay as ``store_bytes``.
    cost = retriever._cost
    cost.update({"index": retriever.index_settings.kind, "index_build_s": index.build_s,
                 "approximate_index_bytes": index.index_bytes, "approximate_cache": index.cache,
                 "store_bytes": cost["index_bytes"], "index_bytes": index.index_bytes,
                 "bytes_per_document": index.index_bytes / max(1, retriever._store.n_docs),
                 "compression_ratio": retriever._fp16_bytes / index.index_bytes})


def search_approximate(retriever, ids: list[str], texts: list[str], k: int) -> Run:
    vectors, mask = retriever._queries(texts)
    t = time.perf_counter()
    kernel = {"compute_dtype": retriever._compute_dtype(), "device": retriever.device}
    dim = retriever.dim if retriever.index_settings.kind == "faiss" else None
    scores, docs, scored = retriever._approximate.search(vectors, np.asarray(mask, dtype=bool), k,
                                                         retriever._tie_ranks, dim, **kernel)
    retriever._cost["search_s"] = time.perf_counter() - t
    retriever._cost["documents_scored_per_query"] = float(scored.mean()) if len(scored) else 0.0
    retriever._scored_per_query = dict(zip(ids, scored.tolist()))
    doc_ids = retriever._ids
    return Run({qid: {doc_ids[j]: float(s) for j, s in zip(docs[i], scores[i])} for i, qid in enumerate(ids)})
