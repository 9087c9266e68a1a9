"""Exact, PLAID and FAISS end-to-end search on BEIR SciFact (MiniLM as a plain multi-vector
model, dim 128, k=10): quality against exact search from the suite's results, and one query's
latency as the corpus grows (SciFact's documents repeated under new ids: 1x, 4x, 16x).

    HARNESS_HOME=... harness run bench/approximate.yaml --results R     # the results (once)
    .venv/bin/python bench/approximate.py --results R [--scales 1 4 16] # writes bench/results/approximate.json

Part 1 reads each result's record: nDCG@10, ``vs_exact`` (delta against exact search of the same
store, recall of the exact top 10, RBO), documents fully scored and one query's search latency
(p50 over the harness's 50 latency queries), and the index's bytes and build seconds.

Part 2 times single queries (``--queries``, after one warm-up) at each scale over stores derived from
the cached SciFact ones without encoding: the exact store cut to dim 128 (float32, what exact search
reads) repeated; the residual-2 store's codes repeated under the same centroids (PLAID at k=10
defaults); FAISS IVF-PQ (the suite's trained index, every copy's vectors added). Repeated documents
tie, which changes no amount of work.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import machine, print_table, write_json  # noqa: E402
from harness.index import faiss_e2e, plaid, truncated  # noqa: E402
from harness.index.compressed_store import CompressedStore  # noqa: E402
from harness.index.token_store import TokenStoreWriter  # noqa: E402
from harness.kernels.maxsim import maxsim_search  # noqa: E402
from harness.results import ResultStore  # noqa: E402


def quality(results: Path) -> list[dict]:
    rows = []
    for _, r in sorted(ResultStore(results).records(), key=lambda fr: fr[1].retriever["name"]):
        v = r.vs_exact or {}
        rows.append({"retriever": r.retriever["name"], "nDCG@10": r.metrics["ndcg@10"],
                     "Δ vs exact": v.get("delta"), "CI low": (v.get("ci95") or [None])[0],
                     "CI high": (v.get("ci95") or [None, None])[1], "recall of exact@10": v.get("recall_of_exact@10"),
                     "RBO": v.get("rbo"), "docs scored": (v.get("documents_scored_per_query") or {}).get("mean"),
                     "search p50 ms": r.cost["search_latency_ms"]["p50"], "search p95 ms": r.cost["search_latency_ms"]["p95"],
                     "index MB": r.cost.get("approximate_index_bytes", r.cost["index_bytes"]) / 1e6,
                     "build s": r.cost.get("index_build_s", r.cost.get("codec_build_s"))})
    return rows


def repeated_truncated(path: Path, cut, scale: int):
    counts = np.diff(cut.offsets)
    writer = TokenStoreWriter(path, np.tile(counts, scale), cut.dim, dtype="float32")
    for s in range(scale):
        writer.write_span(s * cut.n_docs, (s + 1) * cut.n_docs, np.asarray(cut.vectors))
    return writer.finish()


def repeated_residual(store: CompressedStore, scale: int) -> CompressedStore:
    arrays = dict(store.arrays)
    for name in store.manifest["per_token"]:
        arrays[name] = np.tile(np.asarray(store.arrays[name]), (scale,) + (1,) * (store.arrays[name].ndim - 1))
    base = np.asarray(store.offsets)
    arrays["offsets"] = np.concatenate([base[:1]] + [base[1:] + s * base[-1] for s in range(scale)])
    manifest = {**store.manifest, "n_tokens": store.n_tokens * scale, "n_docs": store.n_docs * scale}
    return CompressedStore(store.path, manifest, arrays)


def timed(fn, n: int) -> dict:
    fn(0)
    seconds = []
    for i in range(1, n + 1):
        t = time.perf_counter()
        fn(i)
        seconds.append(time.perf_counter() - t)
    return {"p50 ms": 1000 * float(np.median(seconds)), "max ms": 1000 * float(np.max(seconds))}


def scaling(home: Path, scales: list[int], n: int) -> list[dict]:
    import faiss

    from harness.retrievers.late_interaction import LateInteractionRetriever

    tokens = [p.parent for p in (home / "tokens").glob("*/*/manifest.json")]
    manifests = {p: json.loads((p / "manifest.json").read_text()) for p in tokens}
    role = lambda m: m.get("key", {}).get("role")  # noqa: E731
    documents = next(p for p, m in manifests.items() if role(m) == "document" and "shard" not in m["key"])
    cut, _ = truncated.open_or_build(manifests[documents]["key"], truncated.TokenStore.load(documents), 128)
    residual = next(CompressedStore.load(p) for p, m in manifests.items() if role(m) == "compressed")
    index = next((faiss_e2e.FaissIndex.load(p) for p, m in manifests.items() if role(m) == "faiss"), None)
    r = LateInteractionRetriever("sentence-transformers/all-MiniLM-L6-v2", format="plain")
    r.set_max_length(32, 300)
    from harness.data.load import load_dataset
    from harness.suite import load_suite

    suite = load_suite(Path(__file__).with_name("approximate.yaml"))
    dataset = load_dataset(suite.dataset("scifact"), suite.name)
    q, mask = r.encode_queries(dataset.queries.texts[:n + 1])
    q128 = truncated.cut_queries(q, 128)
    rows = []
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        for scale in scales:
            exact = cut if scale == 1 else repeated_truncated(Path(tmp) / f"x{scale}", cut, scale)
            ranks = np.arange(exact.n_docs)
            rows.append({"scale": scale, "documents": exact.n_docs, "search": "exact", **timed(
                lambda i: maxsim_search(q128[i:i + 1], mask[i:i + 1], exact.vectors, exact.offsets, 10), n)})
            store = residual if scale == 1 else repeated_residual(residual, scale)
            lists = plaid.inverted_lists(store.arrays["centroid_ids"], store.offsets, len(store.arrays["centroids"]))
            settings = plaid.PlaidSettings(**plaid.PlaidSettings.defaults(10))
            rows.append({"scale": scale, "documents": store.n_docs, "search": "plaid", **timed(
                lambda i: plaid.plaid_search_one(q[i], mask[i], store, lists, settings, 10, ranks), n)})
            if index is None:  # the suite's faiss units have not built theirs (yet)
                print_table(rows[-2:], ["scale", "documents", "search", "p50 ms", "max ms"])
                continue
            grown = faiss_e2e.FaissIndex(faiss.clone_index(index.index), index.manifest)
            for _ in range(scale - 1):
                for r0 in range(0, cut.n_tokens, 65536):
                    grown.index.add(np.ascontiguousarray(cut.vectors[r0:r0 + 65536]))
            grown.index.nprobe = 10
            token_docs = plaid.token_documents(exact.offsets)
            rows.append({"scale": scale, "documents": exact.n_docs, "search": "faiss ivfpq (depth 128)", **timed(
                lambda i: faiss_e2e.faiss_search_one(q128[i], mask[i], exact, grown, 128, 10, ranks, token_docs, 128),
                n)})
            print_table(rows[-3:], ["scale", "documents", "search", "p50 ms", "max ms"], )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--home", type=Path, default=None, help="HARNESS_HOME of the suite's run")
    parser.add_argument("--scales", type=int, nargs="*", default=[1, 4, 16])
    parser.add_argument("--queries", type=int, default=10)
    args = parser.parse_args()
    rows = quality(args.results) if args.results.exists() else []
    if rows:
        print_table(rows, list(rows[0]))
    scale_rows = scaling(args.home, args.scales, args.queries) if args.home and args.scales else []
    print(write_json("approximate", {"machine": machine(), "quality": rows, "scaling": scale_rows}))


if __name__ == "__main__":
    main()
