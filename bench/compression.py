"""Index storage kinds on BEIR SciFact: bytes, build time and nDCG@10 of each, from one encoding.

    .venv/bin/python bench/compression.py [--dims 128 384] [--storage fp16 int8 residual-2 ...]
                                          # writes bench/results/compression.json

all-MiniLM-L6-v2 as a plain multi-vector model (suites/beir.yaml's ``minilm-maxsim``: 32 query
tokens, 300 document tokens), all 5,183 documents and 300 queries, exact MaxSim, depth 1000. The
float16 token store comes from the harness cache ($HARNESS_HOME/tokens: encoded once, about 5
minutes on 2 cores, reused by every storage kind and dimension); ``fp32`` needs a float32 encoding
of its own. ``build s`` is the codec's own time (sample, fit, compress, write), read from the
compressed store's manifest, so a cached store still reports what it cost. ``ratio`` is the float16
store's bytes at that dimension over the kind's bytes (both with the int64 document offsets).

It also measures the two ways of searching a compressed store (``--search-modes``): decompressing
the rows each kernel chunk reads (what the retriever does: memory stays at the compressed size) or
decompressing once into a float16 matrix: seconds for all queries, one-query latency, and the
peak of numpy allocations during the search (tracemalloc; torch's own buffers, the same for both,
are not seen).
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, print_table, write_json  # noqa: E402
from harness.data.load import load_dataset  # noqa: E402
from harness.index.compression import STORAGE_KINDS  # noqa: E402
from harness.metrics import evaluate  # noqa: E402
from harness.pipeline import apply_protocol  # noqa: E402
from harness.retrievers.late_interaction import LateInteractionRetriever  # noqa: E402
from harness.suite import load_suite  # noqa: E402

SUITE = Path(__file__).resolve().parents[1] / "suites" / "beir.yaml"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
COLUMNS = ["dim", "storage", "index MB", "bytes/doc", "ratio", "build s", "nDCG@10", "search s"]


def retriever(spec, dim: int, storage: str) -> LateInteractionRetriever:
    r = LateInteractionRetriever(MODEL, format="plain", dim=dim, storage=storage)
    r.set_max_length(spec.max_length.query, spec.max_length.document)
    return r


def measure_kind(spec, dataset, texts, dim: int, storage: str) -> dict:
    r = retriever(spec, dim, storage)
    r.index(dataset.corpus.ids, texts)
    t = time.perf_counter()
    run = r.search(dataset.queries.ids, dataset.queries.texts, spec.depth)
    search_s = time.perf_counter() - t
    ndcg = evaluate(dataset.qrels, apply_protocol(run, spec), ["ndcg@10"]).mean["ndcg@10"]
    cost = r.cost()
    return {"dim": dim, "storage": storage, "index MB": cost["index_bytes"] / 1e6, "index_bytes": cost["index_bytes"],
            "bytes/doc": cost["bytes_per_document"], "ratio": cost["compression_ratio"],
            "build s": cost.get("codec_build_s"), "nDCG@10": ndcg, "search s": search_s,
            "n_tokens": cost["n_tokens"], "n_centroids": cost.get("n_centroids"),
            "document_cache": cost["document_cache"], "compressed_cache": cost.get("compressed_cache")}


def float16_copy(rows, chunk: int = 65536) -> np.ndarray:
    out = np.empty(rows.shape, dtype=np.float16)
    for r0 in range(0, len(rows), chunk):
        out[r0:r0 + chunk] = rows[r0:min(len(rows), r0 + chunk)]
    return out


def search_modes(spec, dataset, texts, dim: int, storage: str, latency_queries: int) -> list[dict]:
    """Chunk-wise decompression (the retriever's way) against one float16 decompression up front."""
    from harness.kernels.maxsim import maxsim_search

    r = retriever(spec, dim, storage)
    r.index(dataset.corpus.ids, texts)
    queries, mask = r._encoder_().encode_queries(dataset.queries.texts)
    queries, lazy, offsets, _ = r._searched(queries)
    rows = []
    for mode in ("chunked", "float16 once"):
        tracemalloc.start()
        t = time.perf_counter()
        docs = lazy if mode == "chunked" else float16_copy(lazy)
        prepare_s = time.perf_counter() - t
        t = time.perf_counter()
        maxsim_search(queries, mask, docs, offsets, spec.depth)
        search_s = time.perf_counter() - t
        one = []
        for i in range(latency_queries):
            t = time.perf_counter()
            maxsim_search(queries[i:i + 1], mask[i:i + 1], docs, offsets, spec.depth)
            one.append(time.perf_counter() - t)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rows.append({"dim": dim, "storage": storage, "mode": mode, "prepare s": prepare_s,
                     "search s (300 q)": search_s, "1-query ms (median)": 1000 * float(np.median(one)),
                     "numpy peak MB": peak / 1e6})
        del docs
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dims", type=int, nargs="+", default=[128])
    parser.add_argument("--storage", nargs="+", choices=STORAGE_KINDS,
                        default=["fp16", "int8", "residual-4", "residual-2", "residual-1", "fp32"])
    parser.add_argument("--search-modes", default="residual-2",
                        help="storage kind to compare search modes on ('' skips)")
    parser.add_argument("--latency-queries", type=int, default=5)
    parser.add_argument("--name", default="compression", help="JSON file name under bench/results/")
    args = parser.parse_args()

    suite = load_suite(SUITE)
    spec = suite.dataset("scifact")
    dataset = load_dataset(spec, suite.name)
    texts = dataset.corpus.joined(spec.text.document_fields, spec.text.separator)
    payload = {"machine": machine(), "dataset": "beir/scifact/test", "model": MODEL, "rows": [], "search_modes": []}
    for dim in args.dims:
        for storage in args.storage:
            payload["rows"].append(measure_kind(spec, dataset, texts, dim, storage))
            print(f"done: dim {dim} {storage}", flush=True)
            write_json(args.name, payload)
        if args.search_modes:
            payload["search_modes"] += search_modes(spec, dataset, texts, dim, args.search_modes, args.latency_queries)
            write_json(args.name, payload)
    print_table(payload["rows"], COLUMNS)
    if payload["search_modes"]:
        print()
        print_table(payload["search_modes"], list(payload["search_modes"][0]))
    print(write_json(args.name, payload))


if __name__ == "__main__":
    main()
