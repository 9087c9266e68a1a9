"""Exact, PLAID and FAISS end-to-end search on BEIR SciFact (MiniLM as a plain multi-vector
model, dim 128, k=10): quality against exact search from the suite's results, and one query's
latency as the corpus grows (SciFact's documents repeated under new ids: 1x, 4x, 16x).

    HARNESS_HOME=H harness run bench/approximate.yaml --results R          # the results (once)
    python bench/approximate.py --results R --home H --build-only          # the 4x, 16x parts (once)
    python bench/approximate.py --results R --home H [--scales 1 4 16]     # the figures

Part 1 reads each result's record: nDCG@10, ``vs_exact`` (delta against exact search of the same
store, recall of the exact top 10, RBO), documents fully scored and one query's search latency
(p50 over the harness's 50 latency queries), and the index's bytes and build seconds.

Part 2 times single queries (``--queries``, after one warm-up) at each scale over stores derived from
the cached SciFact ones without encoding: the exact store cut to dim 128 (float32, what exact search
reads) repeated; the residual-2 store's codes repeated under the same centroids (PLAID at k=10
defaults); FAISS IVF-PQ (the suite's trained index with every copy's lists merged in) and HNSW
(the suite's, 1x only: building one over 4x SciFact's tokens takes hours on 2 cores), both at depth
128 and re-scored from the float32 d128 store. Repeated documents tie, which changes no amount of
work. The repeated stores and IVF-PQ indexes are kept in ``--build-dir`` (``--build-only`` makes
them without timing anything, so that a timed run does no building). It writes
bench/results/approximate.json and the latency-vs-corpus-size plot approximate-latency.png beside it.
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
from common import RESULTS, machine, print_table, write_json  # noqa: E402
from harness.index import faiss_e2e, plaid, truncated  # noqa: E402
from harness.index.compressed_store import CompressedStore  # noqa: E402
from harness.index.token_store import TokenStore, TokenStoreWriter  # noqa: E402
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
    """The float32 store cut to dim 128, its documents ``scale`` times (copy c is documents
    c * n_docs ..); kept under ``path`` (checksummed at write) and reopened by later runs."""
    if (path / "manifest.json").exists():
        return TokenStore.load(path, verify=False)
    counts = np.diff(cut.offsets)
    writer = TokenStoreWriter(path, np.tile(counts, scale), cut.dim, dtype="float32")
    for s in range(scale):
        for first in range(0, cut.n_docs, 512):  # about 120k rows (60 MB) a write
            stop = min(cut.n_docs, first + 512)
            rows = np.asarray(cut.vectors[cut.offsets[first]:cut.offsets[stop]])
            writer.write_span(s * cut.n_docs + first, s * cut.n_docs + stop, rows)
    return writer.finish()


def repeated_residual(store: CompressedStore, scale: int) -> CompressedStore:
    arrays = dict(store.arrays)
    for name in store.manifest["per_token"]:
        arrays[name] = np.tile(np.asarray(store.arrays[name]), (scale,) + (1,) * (store.arrays[name].ndim - 1))
    base = np.asarray(store.offsets)
    arrays["offsets"] = np.concatenate([base[:1]] + [base[1:] + s * base[-1] for s in range(scale)])
    manifest = {**store.manifest, "n_tokens": store.n_tokens * scale, "n_docs": store.n_docs * scale}
    return CompressedStore(store.path, manifest, arrays)


def repeated_ivfpq(path: Path, index, n_tokens: int, scale: int):
    """The suite's trained IVF-PQ index with every copy's tokens: copies of its inverted lists
    merged in with ids shifted by c * n_tokens, which is what adding the copies' vectors computes
    (the same cell and PQ code per vector, appended in the same order) without the assignment."""
    import faiss

    if path.exists():
        return faiss.read_index(str(path))
    grown = faiss.clone_index(index)
    for c in range(1, scale):
        grown.merge_from(faiss.clone_index(index), c * n_tokens)
    faiss.write_index(grown, str(path) + ".tmp")
    Path(str(path) + ".tmp").rename(path)
    return grown


def cached_parts(home: Path) -> dict:
    """The suite's cached SciFact stores (its run under ``home``): the d384 float16 documents, their
    d128 float32 cut, the residual-2 store and the faiss indexes (by kind)."""
    tokens = [p.parent for p in (home / "tokens").glob("*/*/manifest.json")]
    manifests = {p: json.loads((p / "manifest.json").read_text()) for p in tokens}
    role = lambda m: m.get("key", {}).get("role")  # noqa: E731
    documents = next(p for p, m in manifests.items() if role(m) == "document" and "shard" not in m["key"])
    cut, _ = truncated.open_or_build(manifests[documents]["key"], truncated.TokenStore.load(documents), 128)
    residual = next(CompressedStore.load(p) for p, m in manifests.items() if role(m) == "compressed")
    indexes = {m["key"]["kind"]: faiss_e2e.FaissIndex.load(p) for p, m in manifests.items() if role(m) == "faiss"}
    return {"cut": cut, "residual": residual, "faiss": indexes}


def build_scaled(parts: dict, build_dir: Path, scale: int) -> dict:
    """The stores and indexes of the ``scale``-times corpus, built once under ``build_dir``."""
    cut = parts["cut"]
    build_dir.mkdir(parents=True, exist_ok=True)
    out = {"exact": cut if scale == 1 else repeated_truncated(build_dir / f"exact-x{scale}", cut, scale)}
    if "ivfpq" in parts["faiss"]:
        index = parts["faiss"]["ivfpq"].index
        out["ivfpq"] = index if scale == 1 else repeated_ivfpq(build_dir / f"ivfpq-x{scale}.faiss", index,
                                                               cut.n_tokens, scale)
    if scale == 1 and "hnsw" in parts["faiss"]:  # an HNSW of 4x SciFact takes hours to build on 2 cores
        out["hnsw"] = parts["faiss"]["hnsw"].index
    return out


def timed(fn, n: int) -> dict:
    fn(0)
    seconds = []
    for i in range(1, n + 1):
        t = time.perf_counter()
        fn(i)
        seconds.append(time.perf_counter() - t)
    return {"p50 ms": 1000 * float(np.median(seconds)), "max ms": 1000 * float(np.max(seconds))}


def queries(n: int):
    """The first ``n`` test queries, encoded as the suite's retriever does (query_maxlen 32)."""
    from harness.data.load import load_dataset
    from harness.retrievers.late_interaction import LateInteractionRetriever
    from harness.suite import load_suite

    r = LateInteractionRetriever("sentence-transformers/all-MiniLM-L6-v2", format="plain")
    r.set_max_length(32, 300)
    suite = load_suite(Path(__file__).with_name("approximate.yaml"))
    dataset = load_dataset(suite.dataset("scifact"), suite.name)
    return r.encode_queries(dataset.queries.texts[:n])


def scaling(parts: dict, build_dir: Path, scales: list[int], n: int) -> list[dict]:
    """p50 of ``n`` single queries (after one warm-up) per search and scale: exact MaxSim over the
    float32 d128 store, PLAID at k=10 defaults, FAISS IVF-PQ (nprobe 10) and HNSW (ef_search 128)
    at depth 128, both re-scored from that store."""
    from harness.index.faiss_e2e import FaissIndex

    q, mask = queries(n + 1)
    q128 = truncated.cut_queries(q, 128)
    settings = plaid.PlaidSettings(**plaid.PlaidSettings.defaults(10))
    rows = []
    for scale in scales:
        built = build_scaled(parts, build_dir, scale)
        exact = built["exact"]
        ranks = np.arange(exact.n_docs)
        row = lambda search, fn: {"scale": scale, "documents": exact.n_docs, "search": search,  # noqa: E731
                                  **timed(fn, n)}
        rows.append(row("exact", lambda i: maxsim_search(q128[i:i + 1], mask[i:i + 1], exact.vectors,
                                                         exact.offsets, 10)))
        store = parts["residual"] if scale == 1 else repeated_residual(parts["residual"], scale)
        lists = plaid.inverted_lists(store.arrays["centroid_ids"], store.offsets, len(store.arrays["centroids"]))
        rows.append(row("plaid", lambda i: plaid.plaid_search_one(q[i], mask[i], store, lists, settings, 10, ranks)))
        token_docs = plaid.token_documents(exact.offsets)
        for kind, search in (("ivfpq", "faiss ivfpq (depth 128)"), ("hnsw", "faiss hnsw (depth 128)")):
            if kind not in built:  # not built by the suite's faiss units (yet), or HNSW past 1x
                continue
            index = FaissIndex(built[kind], {})
            faiss_e2e.set_search_params(index, kind, 10, 128)
            rows.append(row(search, lambda i: faiss_e2e.faiss_search_one(q128[i], mask[i], exact, index, 128, 10,
                                                                         ranks, token_docs, 128)))
        print_table([r for r in rows if r["scale"] == scale], ["scale", "documents", "search", "p50 ms", "max ms"])
    return rows


def ratios(rows: list[dict]) -> list[dict]:
    """exact's p50 over each approximate search's, per scale (one run's figures)."""
    exact = {r["scale"]: r["p50 ms"] for r in rows if r["search"] == "exact"}
    return [{"scale": r["scale"], "documents": r["documents"], "search": r["search"],
             "exact / this": exact[r["scale"]] / r["p50 ms"]} for r in rows if r["search"] != "exact"]


def plot(rows: list[dict], path: Path) -> Path:
    """One query's p50 latency against the corpus size, one line per search, log-log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for search in dict.fromkeys(r["search"] for r in rows):
        points = [(r["documents"], r["p50 ms"]) for r in rows if r["search"] == search]
        ax.plot(*zip(*points), marker="o", label=search)
    ax.set_xscale("log")
    ax.set_yscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:,.0f}")  # 20,732 documents, 250 ms: not 2x10^4
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(plain)
        axis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("documents (SciFact repeated under new ids)")
    ax.set_ylabel("one query's search, p50 ms")
    ax.set_title("Latency vs corpus size, MiniLM d128, k=10")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--home", type=Path, default=None, help="HARNESS_HOME of the suite's run")
    parser.add_argument("--scales", type=int, nargs="*", default=[1, 4, 16])
    parser.add_argument("--queries", type=int, default=3)
    parser.add_argument("--build-dir", type=Path, default=Path(tempfile.gettempdir()) / "approximate-scale",
                        help="where the repeated corpora's stores and indexes are kept between runs")
    parser.add_argument("--build-only", action="store_true", help="build the repeated corpora's parts, time nothing")
    args = parser.parse_args()
    if args.build_only:
        parts = cached_parts(args.home)
        for scale in args.scales:
            built = build_scaled(parts, args.build_dir, scale)
            print(f"{scale}x: {built['exact'].n_docs:,} documents, built: {', '.join(built)}")
        return
    rows = quality(args.results) if args.results.exists() else []
    if rows:
        print_table(rows, list(rows[0]))
    scale_rows = scaling(cached_parts(args.home), args.build_dir, args.scales, args.queries) \
        if args.home and args.scales else []
    payload = {"machine": machine(), "quality": rows, "scaling": scale_rows, "ratios": ratios(scale_rows)}
    if scale_rows:
        print_table(payload["ratios"], ["scale", "documents", "search", "exact / this"])
        print(plot(scale_rows, RESULTS / "approximate-latency.png"))
    print(write_json("approximate", payload))


if __name__ == "__main__":
    main()
