"""Query latency, measured apart from the batched run that produces the scores.

The scored run encodes and searches all queries in batches, which is the fastest way to get the
numbers but says nothing about serving one query. Here a seeded sample of queries goes through the
retriever one at a time, after a few warm-up queries that are not recorded (first calls pay for
lazy initialisation and cold caches). Retrievers that also expose ``encode_queries`` get their
query encoding timed alone, one query at a time and in batches.
"""

from __future__ import annotations

import random
import time
from typing import Any

import numpy as np

from harness import progress

PERCENTILES = (50, 95, 99)


def summarize(seconds: list[float]) -> dict[str, float]:
    """Milliseconds: p50/p95/p99 (numpy's linear interpolation), mean and sample size."""
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    out = {f"p{p}": float(np.percentile(ms, p)) for p in PERCENTILES}
    out.update(mean=float(ms.mean()), n=int(ms.size))
    return out


def _threads() -> int | None:
    try:
        import torch

        return torch.get_num_threads()
    except ImportError:  # a retriever without torch (BM25) still gets its latency measured
        return None


def measure(retriever, ids: list[str], texts: list[str], k: int, queries: int = 50, warmup: int = 5,
            batch_size: int = 32, candidates: dict[str, list[str]] | None = None, seed: int = 0) -> dict[str, Any]:
    """Latency figures for ``record.cost``; ``candidates`` switches to re-ranking latency."""
    if queries <= 0 or not ids:
        return {}
    order = list(range(len(ids)))
    random.Random(seed).shuffle(order)
    chosen = order[:queries]
    # Warm-up queries come from the sample's far end, so they are not the measured ones when the
    # query set is large enough.
    warm = (order[::-1][:warmup] if len(order) > queries else chosen[:warmup])

    def one(i: int) -> float:
        t = time.perf_counter()
        if candidates is None:
            retriever.search([ids[i]], [texts[i]], k)
        else:
            retriever.rerank([ids[i]], [texts[i]], {ids[i]: candidates.get(ids[i], [])})
        return time.perf_counter() - t

    for i in warm:
        one(i)
    total, search = [], []
    for i in progress.counted(chosen, "latency sampling", len(chosen), "queries"):
        total.append(one(i))
        # Retrievers that time their own search phase (after query encoding) report it in cost().
        inner = retriever.cost().get("search_s")
        if inner is not None:
            search.append(inner)
    out: dict[str, Any] = {
        "query_latency_ms": summarize(total),
        "search_latency_ms": summarize(search if len(search) == len(total) else total),
        "latency_protocol": {
            "queries": len(chosen), "warmup_queries_excluded": len(warm), "k": k, "seed": seed,
            "mode": "rerank" if candidates is not None else "search", "threads": _threads(),
            "search_latency": "search phase only" if len(search) == len(total) else "end to end",
        },
    }
    encode = getattr(retriever, "encode_queries", None)
    if callable(encode):
        single = []
        for i in chosen:
            t = time.perf_counter()
            encode([texts[i]])
            single.append(time.perf_counter() - t)
        batched = []
        # Enough batches for percentiles, without re-encoding a large query set in full.
        sample = [texts[i] for i in order[: max(len(chosen), batch_size * 8)]]
        for start in range(0, len(sample) - batch_size + 1, batch_size):
            t = time.perf_counter()
            encode(sample[start:start + batch_size])
            batched.append((time.perf_counter() - t) / batch_size)
        out["query_encode_ms"] = {"single": summarize(single)}
        if batched:
            out["query_encode_ms"]["batched_per_query"] = {**summarize(batched), "batch_size": batch_size}
    return out
