"""The few-row path of ``maxsim_search`` (one or two queries a batch): the reference's scores, and
a document's score the same bits whatever chunk or block it lands in."""

import numpy as np
import pytest
import torch

from harness.kernels import maxsim, tiles
from harness.kernels.chunks import ChunkReader
from harness.kernels.maxsim import maxsim_search, reference_maxsim
from tests.kernels.test_maxsim import assert_search_matches, corpus, queries_for


def all_scores(q, mask, vectors, offsets, **kw):
    """Every document's score per query: (n_q, n_docs)."""
    n_docs = offsets.size - 1
    scores, ids = maxsim_search(q, mask, vectors, offsets, k=n_docs, **kw)
    full = np.zeros((q.shape[0], n_docs), np.float32)
    np.put_along_axis(full, ids, scores, axis=1)
    return full


@pytest.fixture
def long_and_short():
    lengths = np.random.default_rng(12).integers(1, 40, 300)
    lengths[::23] = 400  # longer than a block and a chunk
    vectors, offsets = corpus(seed=11, n_docs=300, lengths=lengths, dim=128)
    q, mask = queries_for(vectors, offsets, seed=12, n=4, q_len=32, dim=128)
    return q, mask, vectors, offsets


@pytest.mark.parametrize("store", ["float16", "float32"])
@pytest.mark.parametrize("dim", [None, 48])
def test_one_query_at_a_time_equals_the_reference(long_and_short, store, dim, monkeypatch):
    q, mask, vectors, offsets = long_and_short
    vectors = vectors.astype(store)
    monkeypatch.setattr(maxsim, "_FEW_BLOCK_BYTES", 1)  # blocks of the smallest size: many block ends
    ref = reference_maxsim(q, mask, vectors, offsets, dim=dim)
    for i in range(q.shape[0]):
        scores, ids = maxsim_search(q[i:i + 1], mask[i:i + 1], vectors, offsets, k=10, dim=dim, chunk_tokens=997)
        assert_search_matches(scores, ids, ref[i:i + 1], 10)


def test_a_documents_score_is_the_same_bits_whatever_the_chunks_and_blocks(long_and_short, monkeypatch):
    q, mask, vectors, offsets = long_and_short
    alone = np.concatenate([all_scores(q[i:i + 1], mask[i:i + 1], vectors, offsets, chunk_tokens=1 << 20)
                            for i in range(q.shape[0])])
    assert alone[1].max() == 0  # query 1 has no real token
    monkeypatch.setattr(maxsim, "_FEW_BLOCK_BYTES", 1)
    for chunk_tokens in (500, 61):
        for i in range(q.shape[0]):
            np.testing.assert_array_equal(
                all_scores(q[i:i + 1], mask[i:i + 1], vectors, offsets, chunk_tokens=chunk_tokens), alone[i:i + 1])
        # several one-query batches share each chunk, unblocked: the same bits again
        np.testing.assert_array_equal(all_scores(q, mask, vectors, offsets, chunk_tokens=chunk_tokens, query_batch=1),
                                      alone)


def test_short_queries_and_tiny_chunks_are_padded_to_the_sizes_blas_sums_alike(long_and_short):
    """Fewer query rows than tiles.MIN_MM_COLS and chunks shorter than tiles.MIN_MM_ROWS take the
    padded products."""
    q, mask, vectors, offsets = long_and_short
    mask = mask.clone()
    mask[:, 5:] = False  # at most 5 real tokens a query
    assert mask.sum(dim=1).max() < tiles.MIN_MM_COLS and 13 < tiles.MIN_MM_ROWS
    ref = reference_maxsim(q, mask, vectors, offsets)
    whole = all_scores(q, mask, vectors, offsets, query_batch=1)
    np.testing.assert_allclose(whole, ref, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(all_scores(q, mask, vectors, offsets, query_batch=1, chunk_tokens=13), whole)


def test_batches_of_many_rows_and_of_few_in_one_search_both_match_the_reference(long_and_short):
    q, mask, vectors, offsets = long_and_short
    q, mask = torch.cat([q] * 4), torch.cat([mask] * 4)  # 24 queries: a batch of 23 and one of 1
    ref = reference_maxsim(q, mask, vectors, offsets)
    np.testing.assert_allclose(all_scores(q, mask, vectors, offsets, query_batch=23, chunk_tokens=300), ref,
                               atol=1e-5, rtol=0)


def test_one_query_over_a_file_reads_each_chunk_when_asked_and_scores_as_in_memory(long_and_short, tmp_path):
    """A single query's search reads its chunks in the caller's thread (``background=False``)."""
    q, mask, vectors, offsets = long_and_short
    path = tmp_path / "vectors.bin"
    with open(path, "wb") as f:
        f.write(b"x" * 100 + vectors.tobytes())  # rows start off a page boundary
    stored = np.memmap(path, dtype=np.float16, mode="r", offset=100, shape=vectors.shape)
    reader = ChunkReader(stored, 700)
    cuts = [0, 700, 1000, 1001, 1701]  # spans of at most the reader's 700 rows
    for (r0, r1, rows), (s0, s1) in zip(reader.spans(cuts, background=False), zip(cuts[:-1], cuts[1:])):
        assert (r0, r1) == (s0, s1)
        np.testing.assert_array_equal(rows, vectors[s0:s1])
    for i in (0, 2):
        np.testing.assert_array_equal(all_scores(q[i:i + 1], mask[i:i + 1], stored, offsets, chunk_tokens=700),
                                      all_scores(q[i:i + 1], mask[i:i + 1], vectors, offsets, chunk_tokens=700))
