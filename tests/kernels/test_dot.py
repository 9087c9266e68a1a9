"""The dense baseline's chunked top-k against a full score matrix."""

import numpy as np
import pytest

from harness.index.token_store import TokenStore, TokenStoreWriter
from harness.kernels.dot import dot_search
from harness.runs import top_k


def test_chunked_top_k_is_the_full_matrix_top_k_ties_in_tie_rank_order(tmp_path):
    rng = np.random.default_rng(0)
    docs = rng.integers(-2, 3, (5000, 8)).astype(np.float32)  # small integers: exact sums, many ties
    queries = rng.integers(-2, 3, (7, 8)).astype(np.float32)
    ranks = rng.permutation(5000)
    full = queries @ docs.T
    for k in (1, 10, 999, 6000):
        scores, found = dot_search(queries, docs, k, ranks, block_scores=7 * 1024)  # 5 chunks
        for i in range(7):
            expected = top_k(full[i], k, ranks)
            assert found[i].tolist() == expected.tolist()
            assert np.array_equal(scores[i], full[i, expected])


def test_a_memory_mapped_store_is_read_in_chunks_to_the_same_result(tmp_path):
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((3000, 16)).astype(np.float32)
    writer = TokenStoreWriter(tmp_path / "store", np.ones(3000, dtype=np.int64), 16, dtype="float32")
    writer.write_span(0, 3000, vectors)
    store = writer.finish()
    reopened = TokenStore.load(tmp_path / "store")
    queries = rng.standard_normal((3, 16)).astype(np.float32)
    in_memory = dot_search(queries, vectors, 50, block_scores=3 * 1024)
    mapped = dot_search(queries, reopened.vectors, 50, block_scores=3 * 1024)
    assert np.array_equal(in_memory[1], mapped[1]) and np.array_equal(in_memory[0], mapped[0])
    assert store.n_docs == 3000
    with pytest.raises(ValueError, match="tie_rank must be a permutation"):
        dot_search(queries, vectors, 5, tie_rank=np.zeros(3000, dtype=np.int64))
