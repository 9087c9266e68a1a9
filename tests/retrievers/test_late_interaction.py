"""Late interaction end to end on the real MiniLM weights: exact scores, one encoding per
corpus whatever the dimension or query settings, and a sweep through the CLI."""

import numpy as np
import pytest

from harness.index import cache
from harness.results import ResultStore
from harness.retrievers.late_interaction import LateInteractionRetriever

from tests.conftest import SCIFACT_SUITE, run_cli

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
IDS = ["bone", "cold", "protein", "brain"]
DOCS = ["Vitamin D deficiency lowers bone density in elderly patients.",
        "Vitamin C does not prevent the common cold.",
        "Deep learning predicts protein folding.",
        "White matter of the developing human brain."]
QUERIES = ["vitamin D and bone density", "protein structure prediction"]


def retriever(**params):
    r = LateInteractionRetriever(MODEL, format="plain", **params)
    r.set_max_length(32, 64)
    return r


def naive(q: np.ndarray, mask: np.ndarray, docs: list[np.ndarray]) -> np.ndarray:
    return np.array([(q[mask] @ d.T).max(axis=1).sum() for d in docs])


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    cache.STATS.clear()


def test_search_scores_are_exact_maxsim_and_rank_the_matching_document_first():
    r = retriever()
    r.index(IDS, DOCS)
    run = r.search(["q1", "q2"], QUERIES, k=10)
    assert [d for d, _ in run["q1"]][0] == "bone" and [d for d, _ in run["q2"]][0] == "protein"
    q, mask = r._encoder_().encode_queries(QUERIES)
    docs = [np.asarray(r._store.doc(i), dtype=np.float32) for i in range(4)]
    for i, qid in enumerate(["q1", "q2"]):
        expected = naive(q[i], mask[i], docs)
        got = dict(run[qid])
        for j, doc_id in enumerate(IDS):
            assert got[doc_id] == pytest.approx(expected[j], abs=1e-4)


def test_dimensions_and_query_settings_reuse_one_document_encoding():
    full = retriever()
    full.index(IDS, DOCS)
    small = retriever(dim=64)
    small.index(IDS, DOCS)
    longer_queries = retriever(query_maxlen=48, query_expansion=True)
    longer_queries.index(IDS, DOCS)
    assert dict(cache.STATS) == {"misses": 1, "hits": 2}
    assert full.cost()["document_cache"] == "miss" and small.cost()["document_cache"] == "hit"
    n_tokens = full.cost()["n_tokens"]
    assert full.cost()["index_bytes"] == n_tokens * 384 * 2 + 5 * 8
    assert small.cost()["index_bytes"] == n_tokens * 64 * 2 + 5 * 8
    # truncation: the 64-dim scores are MaxSim over re-normalised 64-dim prefixes
    run = small.search(["q1"], QUERIES[:1], k=4)
    q, mask = small._encoder_().encode_queries(QUERIES[:1])
    cut = lambda x: x[..., :64] / np.maximum(np.linalg.norm(x[..., :64], axis=-1, keepdims=True), 1e-12)
    docs = [cut(np.asarray(small._store.doc(i), dtype=np.float32)) for i in range(4)]
    expected = naive(cut(q[0]), mask[0], docs)
    assert [s for _, s in run["q1"]] == pytest.approx(sorted(expected, reverse=True), abs=1e-4)


def test_a_document_side_change_encodes_again():
    retriever().index(IDS, DOCS)
    r = retriever(doc_maxlen=8)
    r.index(IDS, DOCS)
    assert dict(cache.STATS) == {"misses": 2}
    assert r.cost()["n_tokens"] < 4 * 8 + 1


def test_rerank_scores_only_the_candidates():
    r = retriever()
    r.index(IDS, DOCS)
    run = r.rerank(["q1"], QUERIES[:1], {"q1": ["cold", "brain", "missing"]})
    full = dict(r.search(["q1"], QUERIES[:1], k=4)["q1"])
    assert dict(run["q1"]) == pytest.approx({"cold": full["cold"], "brain": full["brain"]}, abs=1e-5)


def test_sweep_through_the_cli_encodes_once(tmp_path):
    results = tmp_path / "results"
    done = run_cli("run", str(SCIFACT_SUITE), "-d", "scifact", "-r", "minilm-maxsim", "--max-queries", "15",
                   "--max-documents", "150", "--results", str(results))
    assert done.returncode == 0, done.stderr
    assert "vector cache: 1 encoded, 3 reused" in done.stdout
    records = {r.retriever["name"]: r for _, r in ResultStore(results).records()}
    assert sorted(records) == [f"minilm-maxsim@dim={d}" for d in (128, 256, 384, 64)]
    assert len({r.protocol_hash for r in records.values()}) == 1  # one protocol: comparable
    assert len({r.card_hash for r in records.values()}) == 4  # four systems
    sample = records["minilm-maxsim@dim=384"].protocol["filters"]["sample"]
    assert sample == {"queries": 15, "documents": 150, "seed": 0}
    n_tokens = records["minilm-maxsim@dim=64"].cost["n_tokens"]
    for d in (384, 256, 128, 64):
        assert records[f"minilm-maxsim@dim={d}"].cost["index_bytes"] == n_tokens * d * 2 + 151 * 8
    assert records["minilm-maxsim@dim=384"].metrics["ndcg@10"] > 0.4
