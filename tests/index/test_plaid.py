"""PLAID's stages against plain re-computations on random data, and a search whose settings
exclude nothing against exact MaxSim over the same residual store."""

import numpy as np
import pytest

from harness.index import plaid
from harness.index.compressed_store import CompressedStore
from harness.index.compression import ResidualCodec
from harness.kernels.maxsim import maxsim_search
from harness.runs import tie_ranks

from tests.index.test_compression import clustered, token_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("plaid")
    source = token_store(path / "tokens", dim=32, n_docs=60, seed=4)
    return CompressedStore.build(path / "residual", source, 32, ResidualCodec(2, n_centroids=32, seed=1))


def queries(n=3, length=6, dim=32, seed=7):
    return clustered(n * length, dim=dim, seed=seed).reshape(n, length, dim)


def test_inverted_lists_hold_each_document_of_each_centroid_once(store):
    ids = np.asarray(store.arrays["centroid_ids"]).astype(int)
    lists = plaid.inverted_lists(ids, store.offsets, 32)
    for c in range(32):
        expected = sorted({i for i in range(store.n_docs) if c in ids[store.offsets[i]:store.offsets[i + 1]]})
        assert lists.docs[lists.starts[c]:lists.starts[c + 1]].tolist() == expected


def test_candidates_pruning_and_centroid_interaction_match_a_plain_loop(store):
    ids = np.asarray(store.arrays["centroid_ids"]).astype(int)
    lists = plaid.inverted_lists(ids, store.offsets, 32)
    centroids = store.codec.tables["centroids"].astype(np.float32)
    q = queries()[0]
    scores = q @ centroids.T
    for ncells in (1, 3, 32):
        cells = {c for row in scores for c in np.argsort(-row)[:ncells]}
        expected = sorted({i for i in range(store.n_docs) if cells & set(ids[store.offsets[i]:store.offsets[i + 1]])})
        assert plaid.candidate_documents(scores, ncells, lists).tolist() == expected
    kept = plaid.kept_centroids(scores, 0.4)
    assert kept.tolist() == [bool(scores[:, c].max() >= 0.4) for c in range(32)]
    assert 0 < kept.sum() < 32  # the threshold prunes some centroids here, not all
    docs = np.arange(store.n_docs)
    for mask in (None, kept):
        got = plaid.centroid_interaction(scores, ids, store.offsets, docs, mask)
        for i in docs:
            codes = ids[store.offsets[i]:store.offsets[i + 1]]
            per = np.where(mask[codes] if mask is not None else True, scores[:, codes], -9999.0)
            assert got[i] == pytest.approx(per.max(axis=1).sum(), abs=1e-4)


def test_exact_stage_scores_the_codec_decompression(store):
    q = queries(1)[0]
    mask = np.ones(len(q), dtype=bool)
    docs = np.array([3, 10, 11, 40, 59])
    ranks = tie_ranks([f"d{i}" for i in range(store.n_docs)])
    scores, found = plaid.exact_top_k(q, mask, store.vectors, store.offsets, docs, 3, ranks)
    codec = store.codec
    expected = {}
    for i in docs:
        rows = slice(int(store.offsets[i]), int(store.offsets[i + 1]))
        decoded = codec.decompress({n: np.asarray(store.arrays[n][rows]) for n in ("centroid_ids", "residuals")})
        np.testing.assert_array_equal(store.vectors[np.arange(rows.start, rows.stop)], decoded)
        expected[int(i)] = float((q @ decoded.T).max(axis=1).sum())
    best3 = sorted(expected, key=lambda d: -expected[d])[:3]
    assert found.tolist() == best3
    np.testing.assert_allclose(scores, [expected[d] for d in best3], atol=1e-5)


def test_settings_that_exclude_nothing_give_exact_search(store):
    ids = np.asarray(store.arrays["centroid_ids"])
    lists = plaid.inverted_lists(ids, store.offsets, 32)
    q = queries(4)
    mask = np.ones(q.shape[:2], dtype=bool)
    mask[1, 4:] = False
    ranks = tie_ranks([f"d{i}" for i in range(store.n_docs)])
    order = np.empty(store.n_docs, dtype=np.int64)
    order[np.argsort(ranks, kind="stable")] = np.arange(store.n_docs)
    batched_scores, _ = maxsim_search(q, mask, store.vectors, store.offsets, 10, tie_rank=order)
    everything = plaid.PlaidSettings(ncells=32, centroid_score_threshold=None, ndocs=4 * store.n_docs)
    for i in range(len(q)):
        exact_scores, exact_docs = maxsim_search(q[i:i + 1], mask[i:i + 1], store.vectors, store.offsets, 10,
                                                 tie_rank=order)
        scores, docs, scored = plaid.plaid_search_one(q[i], mask[i], store, lists, everything, 10, ranks)
        assert scored == store.n_docs
        assert docs.tolist() == exact_docs[0].tolist()
        np.testing.assert_array_equal(scores, exact_scores[0])  # the same bits as a one-query exact search
        # A batch of queries pads each to the longest with zero vectors, which changes the order of
        # the per-query sum: within float32 rounding of the batched search's scores.
        np.testing.assert_allclose(scores, batched_scores[i], rtol=2**-22)
    # defaults at k=10 score only ndocs / 4 = 64 documents at most: here all 60, in fewer stages
    narrow = plaid.PlaidSettings(ncells=1, centroid_score_threshold=0.5, ndocs=16)
    _, docs, scored = plaid.plaid_search_one(q[0], mask[0], store, lists, narrow, 10, ranks)
    assert scored == 10 and len(docs) == 10  # max(k, ndocs / 4) documents fully scored


def test_colbert_defaults_per_depth():
    assert plaid.PlaidSettings.defaults(10) == {"ncells": 1, "centroid_score_threshold": 0.5, "ndocs": 256}
    assert plaid.PlaidSettings.defaults(100) == {"ncells": 2, "centroid_score_threshold": 0.45, "ndocs": 1024}
    assert plaid.PlaidSettings.defaults(1000) == {"ncells": 4, "centroid_score_threshold": 0.4, "ndocs": 4096}
    assert plaid.PlaidSettings.defaults(2000)["ndocs"] == 8000
