"""The truncated store: a token store cut to dim once, searched with the same bits as the kernel's
own cut of the full-width store, cached under its own key."""

import numpy as np

from harness.index import cache, truncated
from harness.kernels.maxsim import maxsim_rerank, maxsim_search

from tests.index.test_compression import clustered, token_store


def test_search_over_the_truncated_store_gives_the_same_bits(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    cache.STATS.clear()
    source = token_store(tmp_path / "tokens", dim=48, n_docs=70, seed=3)
    key = {"role": "document", "corpus": "synthetic"}
    cut, hit = truncated.open_or_build(key, source, 16)
    assert not hit and cut.dim == 16 and cut.vectors.dtype == np.float32
    np.testing.assert_array_equal(cut.offsets, source.offsets)
    x = np.asarray(source.vectors, dtype=np.float32)[:, :16]
    np.testing.assert_allclose(np.asarray(cut.vectors), x / np.linalg.norm(x, axis=1, keepdims=True), atol=1e-6)
    again, hit = truncated.open_or_build(key, source, 16)
    assert hit and dict(cache.STATS) == {"truncated_misses": 1, "truncated_hits": 1}

    q = clustered(4 * 7, dim=48, seed=11).reshape(4, 7, 48)
    mask = np.ones((4, 7), dtype=bool)
    mask[2, 3:] = False
    expected = maxsim_search(q, mask, source.vectors, source.offsets, 20, dim=16, chunk_tokens=200)
    got = maxsim_search(truncated.cut_queries(q, 16), mask, again.vectors, again.offsets, 20, chunk_tokens=200)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    lists = [np.array([0, 5, 69]), np.array([3]), np.array([], np.int64), np.array([10, 11])]
    for a, b in zip(maxsim_rerank(truncated.cut_queries(q, 16), mask, again.vectors, again.offsets, lists),
                    maxsim_rerank(q, mask, source.vectors, source.offsets, lists, dim=16)):
        np.testing.assert_array_equal(a, b)
