"""FAISS end-to-end retrieval on random data: the union of token neighbours, exhaustive settings
against exact MaxSim, and the on-disk cache that search-time settings do not enter."""

import re

import numpy as np
import pytest

from harness.index import cache, faiss_e2e, plaid
from harness.kernels.maxsim import maxsim_search
from harness.runs import tie_ranks

from tests.index.test_compression import clustered, token_store


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    cache.STATS.clear()


BUILDS = {"ivfpq": {"nlist": 8, "pq_m": 4, "pq_nbits": 4, "train_points_per_list": 64, "seed": 0},
          "hnsw": {"hnsw_m": 8, "ef_construction": 40}}


@pytest.mark.parametrize("kind", ["ivfpq", "hnsw"])
def test_exhaustive_settings_give_exact_search_and_the_index_is_cached(tmp_path, kind):
    store = token_store(tmp_path / "tokens", dim=32, n_docs=50, seed=2)
    key = {"role": "document", "corpus": "synthetic"}
    index, hit = faiss_e2e.open_or_build(key, store, 16, kind, BUILDS[kind])
    assert not hit and index.nbytes == (index.path / "index.faiss").stat().st_size and index.build_seconds > 0
    again, hit = faiss_e2e.open_or_build(key, store, 16, kind, BUILDS[kind])
    assert hit and again.index.ntotal == store.n_tokens
    assert dict(cache.STATS) == {"faiss_misses": 1, "faiss_hits": 1}
    faiss_e2e.set_search_params(index, kind, nprobe=8, ef_search=store.n_tokens)  # every cell, every node
    q = clustered(3 * 5, dim=32, seed=5).reshape(3, 5, 32)
    mask = np.ones((3, 5), dtype=bool)
    ranks = tie_ranks([f"d{i}" for i in range(store.n_docs)])
    order = np.empty(store.n_docs, dtype=np.int64)
    order[np.argsort(ranks, kind="stable")] = np.arange(store.n_docs)
    token_docs = plaid.token_documents(store.offsets)
    for i in range(3):
        exact_scores, exact_docs = maxsim_search(q[i:i + 1], mask[i:i + 1], store.vectors, store.offsets, 10,
                                                 dim=16, tie_rank=order)
        scores, docs, scored = faiss_e2e.faiss_search_one(q[i], mask[i], store, index, store.n_tokens, 10, ranks,
                                                          token_docs, 16)
        assert scored == store.n_docs
        assert docs.tolist() == exact_docs[0].tolist()
        np.testing.assert_array_equal(scores, exact_scores[0])


def test_candidates_are_the_documents_of_each_query_tokens_neighbours(tmp_path):
    store = token_store(tmp_path / "tokens", dim=32, n_docs=50, seed=2)
    index, _ = faiss_e2e.open_or_build({"corpus": "x"}, store, 32, "hnsw", BUILDS["hnsw"])
    faiss_e2e.set_search_params(index, "hnsw", nprobe=1, ef_search=64)
    q = clustered(4, dim=32, seed=8)
    token_docs = plaid.token_documents(store.offsets)
    _, scored = faiss_e2e.faiss_search_one(q, np.ones(4, bool), store, index, 3, 50, tie_ranks(
        [f"d{i}" for i in range(50)]), token_docs, 32)[1:]
    # HNSW at ef 64 over 800 vectors finds each token's true 3 nearest (inner product) here
    truth = np.argsort(-(q @ np.asarray(store.vectors, dtype=np.float32).T), axis=1)[:, :3]
    assert scored == len(np.unique(token_docs[truth]))


def test_default_nlist_is_colbert_v1s():
    assert faiss_e2e.default_nlist(1_218_675) == 16384  # 8 sqrt(n) = 8,832 -> next power of two
    assert faiss_e2e.default_nlist(4096) == 512


def test_the_build_is_a_progress_step_of_its_added_slices(tmp_path, capsys, monkeypatch):
    from harness import progress

    monkeypatch.delenv(progress.QUIET_ENV, raising=False)
    monkeypatch.setattr(faiss_e2e, "_ADD_ROWS", 100)
    store = token_store(tmp_path / "tokens", dim=32, n_docs=50, seed=2)
    index, _ = faiss_e2e.build_index(store, 16, "hnsw", BUILDS["hnsw"])
    assert index.ntotal == store.n_tokens
    # 840 token vectors in slices of 100: a line at each tenth a slice reaches (60% is skipped:
    # one slice goes from 50% to 70%)
    assert store.n_tokens == 840
    lines = capsys.readouterr().err.splitlines()
    assert [re.sub(r", [\d,.]+ token vectors/s, \d+ s left\)$", ")", line) for line in lines] == [
        f"faiss hnsw index: {p}% ({n}/840 token vectors)"
        for p, n in ((10, 100), (20, 200), (30, 300), (40, 400), (50, 500), (70, 600), (80, 700), (90, 800),
                     (100, 840))]
