"""Latency sampling: what is timed, how often, and how percentiles are summarised."""

import numpy as np
import pytest

from harness import latency
from harness.retrievers import Retriever
from harness.runs import Run


def test_summarize_gives_milliseconds_percentiles_mean_and_count():
    out = latency.summarize([0.001, 0.002, 0.003, 0.004, 0.005])
    assert out == pytest.approx({"p50": 3.0, "p95": 4.8, "p99": 4.96, "mean": 3.0, "n": 5})


class Recorder(Retriever):
    """Records every call; its search phase 'takes' a fixed time it reports in cost()."""

    def __init__(self):
        self.searches, self.reranks, self.encodes = [], [], []

    def settings(self):
        return {}

    def index(self, ids, texts):
        pass

    def search(self, ids, texts, k):
        self.searches.append((list(ids), k))
        return Run({q: {"d1": 1.0} for q in ids})

    def rerank(self, ids, texts, candidates):
        self.reranks.append(dict(candidates))
        return Run({q: {d: 1.0 for d in candidates[q]} for q in ids})

    def encode_queries(self, texts):
        self.encodes.append(len(texts))
        return np.zeros((len(texts), 4))

    def cost(self):
        return {"search_s": 0.25}


def test_measure_times_single_queries_after_an_unrecorded_warm_up():
    ids = [f"q{i}" for i in range(100)]
    r = Recorder()
    out = latency.measure(r, ids, [f"text {i}" for i in ids], k=10, queries=20, warmup=3, batch_size=8)
    assert len(r.searches) == 23 and all(len(q) == 1 and k == 10 for q, k in r.searches)
    measured = {q[0] for q, _ in r.searches[3:]}
    warm = {q[0] for q, _ in r.searches[:3]}
    assert len(measured) == 20 and not (warm & measured)  # warm-up queries are not the timed ones
    assert out["query_latency_ms"]["n"] == 20
    # The retriever's own search-phase time is used for search latency.
    assert out["search_latency_ms"]["p50"] == pytest.approx(250.0)
    assert out["latency_protocol"] == {"queries": 20, "warmup_queries_excluded": 3, "k": 10, "seed": 0,
                                       "mode": "search", "threads": out["latency_protocol"]["threads"],
                                       "search_latency": "search phase only"}
    # Encoding timed alone: 20 single queries, then 8 batches of 8 (enough for percentiles).
    assert r.encodes == [1] * 20 + [8] * 8
    assert out["query_encode_ms"]["batched_per_query"]["batch_size"] == 8
    # The same seed picks the same queries.
    r2 = Recorder()
    latency.measure(r2, ids, [f"text {i}" for i in ids], k=10, queries=20, warmup=3, batch_size=8)
    assert r2.searches == r.searches


def test_rerank_latency_gives_each_query_its_own_candidates():
    r = Recorder()
    cands = {"a": ["d1", "d2"], "b": ["d3"]}
    out = latency.measure(r, ["a", "b"], ["x", "y"], k=10, queries=2, warmup=1, candidates=cands)
    assert out["latency_protocol"]["mode"] == "rerank"
    assert all(len(c) == 1 and list(c.values())[0] == cands[list(c)[0]] for c in r.reranks)
    assert len(r.reranks) == 3 and r.searches == []


def test_no_queries_no_figures():
    assert latency.measure(Recorder(), ["a"], ["x"], k=5, queries=0) == {}
