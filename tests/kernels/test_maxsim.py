import sys

import numpy as np
import pytest
import torch

from harness.kernels import maxsim
from harness.kernels.maxsim import maxsim_rerank, maxsim_search, reference_maxsim

DIM = 64
BF16_TOL = 2e-2  # absolute, on scores of queries with at most 12 real tokens


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def corpus(seed=0, n_docs=120, max_len=50, dim=DIM, lengths=None):
    """float16 unit vectors, lengths 1..max_len; docs 40, 41 and 100 copy doc 7 (exact ties)."""
    rng = np.random.default_rng(seed)
    if lengths is None:
        lengths = rng.integers(1, max_len + 1, n_docs)
    lengths = np.asarray(lengths, dtype=np.int64)
    if n_docs > 100:
        lengths[[40, 41, 100]] = lengths[7]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    vectors = unit(rng.standard_normal((offsets[-1], dim))).astype(np.float16)
    if n_docs > 100:
        for twin in (40, 41, 100):
            vectors[offsets[twin]:offsets[twin + 1]] = vectors[offsets[7]:offsets[8]]
    return vectors, offsets


def queries_for(vectors, offsets, seed=1, n=11, q_len=12, dim=DIM):
    """Random unit queries with random padding; query 0 is doc 7's tokens (its twins tie at the
    top), query 1 has no real token at all (every score is 0)."""
    rng = np.random.default_rng(seed)
    q = unit(rng.standard_normal((n, q_len, dim))).astype(np.float32)
    mask = rng.random((n, q_len)) < 0.7
    mask[:, 0] = True
    if offsets.size > 8:
        doc7 = vectors[offsets[7]:offsets[8]].astype(np.float32)
        take = min(len(doc7), q_len)
        q[0, :take] = doc7[:take]
        mask[0] = False
        mask[0, :take] = True
    mask[1] = False
    q[2, 5:] = 0.0  # padded positions may hold anything, zeros included
    mask[2, 5:] = False
    return torch.from_numpy(q), torch.from_numpy(mask)


def expected_topk(ref: np.ndarray, k: int):
    order = np.argsort(-ref, axis=1, kind="stable")[:, :k]  # ties: lower index first
    return np.take_along_axis(ref, order, 1), order


def assert_search_matches(scores, ids, ref, k, tol=1e-5):
    exp_scores, exp_ids = expected_topk(ref, k)
    assert scores.dtype == np.float32 and ids.dtype == np.int64
    assert scores.shape == ids.shape == (ref.shape[0], min(k, ref.shape[1]))
    np.testing.assert_allclose(scores, exp_scores, atol=tol, rtol=0)
    np.testing.assert_array_equal(ids, exp_ids)


@pytest.fixture(params=["tiles", "few rows"])
def path(request, monkeypatch):
    """Batches of few query rows take their own path (``few_rows``): these tests run both."""
    if request.param == "tiles":
        monkeypatch.setattr(maxsim, "FEW_ROWS", 0)
    return request.param


def test_search_equals_reference_across_chunks_batches_and_ties(path):
    vectors, offsets = corpus()
    q, mask = queries_for(vectors, offsets)
    ref = reference_maxsim(q, mask, vectors, offsets)
    # 97-token chunks: ~30 chunks, docs 7 / 40 / 41 / 100 land in different ones; batches of 3.
    scores, ids = maxsim_search(q, mask, vectors, offsets, k=10, chunk_tokens=97, query_batch=3)
    assert_search_matches(scores, ids, ref, 10)
    # The four copies of doc 7 tie exactly, lower index first, and beat everything else.
    assert ids[0, :4].tolist() == [7, 40, 41, 100]
    assert scores[0, 0] == scores[0, 1] == scores[0, 2] == scores[0, 3]
    assert scores[0, 0] == pytest.approx(mask[0].sum().item(), abs=1e-2)
    # A query without real tokens scores 0 everywhere: the top-k is docs 0..k-1.
    assert ids[1].tolist() == list(range(10)) and not scores[1].any()
    # Defaults (one chunk, one batch) give the same answer.
    scores2, ids2 = maxsim_search(q, mask, vectors, offsets, k=10)
    np.testing.assert_array_equal(ids2, ids)
    np.testing.assert_allclose(scores2, scores, atol=1e-6, rtol=0)


def test_a_documents_score_is_the_same_bits_whatever_the_chunks_and_tiles():
    """Shards and chunks move documents between tiles of other sizes (one document alone, a
    piece of a few rows at a chunk's end): their scores must not move by a rounding."""
    lengths = np.random.default_rng(12).integers(1, 40, 300)
    lengths[::23] = 400
    vectors, offsets = corpus(seed=11, n_docs=300, lengths=lengths, dim=128)
    q, mask = queries_for(vectors, offsets, seed=12, n=37, q_len=32, dim=128)

    def all_scores(chunk_tokens):
        scores, ids = maxsim_search(q, mask, vectors, offsets, k=300, chunk_tokens=chunk_tokens, query_batch=16)
        full = np.zeros((37, 300), np.float32)
        np.put_along_axis(full, ids, scores, axis=1)
        return full

    whole = all_scores(1 << 20)
    for chunk_tokens in (500, 97, 5):
        np.testing.assert_array_equal(all_scores(chunk_tokens), whole)


def test_numpy_inputs_and_float32_vectors_give_the_same_result():
    vectors, offsets = corpus(seed=3)
    q, mask = queries_for(vectors, offsets, seed=4)
    ref = reference_maxsim(q, mask, vectors, offsets)
    scores, ids = maxsim_search(q.numpy(), mask.numpy(), vectors.astype(np.float32), offsets, k=7,
                                chunk_tokens=200, query_batch=4)
    assert_search_matches(scores, ids, ref, 7)


def test_k_larger_than_the_corpus_returns_every_document():
    vectors, offsets = corpus(seed=5, n_docs=12)
    q, mask = queries_for(vectors, offsets, seed=6, n=5)
    ref = reference_maxsim(q, mask, vectors, offsets)
    scores, ids = maxsim_search(q, mask, vectors, offsets, k=50, chunk_tokens=40, query_batch=2)
    assert ids.shape == (5, 12)
    assert_search_matches(scores, ids, ref, 50)
    assert sorted(ids[0].tolist()) == list(range(12))


def test_documents_longer_than_a_chunk_and_a_tile(monkeypatch, path):
    lengths = [3, 300, 5, 64, 65, 1, 129, 40, 2, 500, 7]
    vectors, offsets = corpus(seed=7, n_docs=len(lengths), lengths=lengths)
    q, mask = queries_for(vectors, offsets, seed=8, n=6)
    ref = reference_maxsim(q, mask, vectors, offsets)
    # Docs of 300 and 500 tokens span several 64-token chunks (and doc 3 fills one exactly).
    scores, ids = maxsim_search(q, mask, vectors, offsets, k=11, chunk_tokens=64, query_batch=4)
    assert_search_matches(scores, ids, ref, 11)
    # Tiles of 16 columns inside 200-token chunks: long docs scored piecewise within a chunk too.
    monkeypatch.setattr(maxsim, "_TILE_ELEMS", 1)
    monkeypatch.setattr(maxsim, "_MIN_TILE_COLS", 16)
    scores, ids = maxsim_search(q, mask, vectors, offsets, k=5, chunk_tokens=200, query_batch=5)
    assert_search_matches(scores, ids, ref, 5)


def test_many_chunks_with_tiny_tiles(monkeypatch, path):
    monkeypatch.setattr(maxsim, "_TILE_ELEMS", 1)
    monkeypatch.setattr(maxsim, "_MIN_TILE_COLS", 8)
    monkeypatch.setattr(maxsim, "_MERGE_DOCS", 10)
    vectors, offsets = corpus(seed=9)
    q, mask = queries_for(vectors, offsets, seed=10)
    ref = reference_maxsim(q, mask, vectors, offsets)
    scores, ids = maxsim_search(q, mask, vectors, offsets, k=20, chunk_tokens=150, query_batch=2)
    assert_search_matches(scores, ids, ref, 20)


def test_tie_rank_orders_ties_and_decides_which_survive_the_cut(monkeypatch, path):
    """Docs 7, 40, 41 and 100 tie at query 0's top; query 1 scores every document 0. With a
    shuffled ``tie_rank``, a cut inside a tie keeps the lowest ranks: the first k of the full ranking."""
    monkeypatch.setattr(maxsim, "_TILE_ELEMS", 1)  # short and piecewise (long) documents both
    monkeypatch.setattr(maxsim, "_MIN_TILE_COLS", 16)
    vectors, offsets = corpus(seed=9)
    q, mask = queries_for(vectors, offsets, seed=10)
    rank = np.random.default_rng(11).permutation(120)
    full_scores, full_ids = maxsim_search(q, mask, vectors, offsets, k=120, chunk_tokens=97, query_batch=3,
                                          tie_rank=rank)
    for s, i in zip(full_scores, full_ids):
        assert np.array_equal(np.lexsort((rank[i], -s)), np.arange(120))  # score desc, then rank asc
    assert sorted(full_ids[0, :4].tolist()) == [7, 40, 41, 100]
    assert full_ids[0, :4].tolist() == sorted([7, 40, 41, 100], key=lambda d: rank[d])
    assert full_ids[1].tolist() == np.argsort(rank).tolist()
    for k in (2, 3, 10, 50):
        scores, ids = maxsim_search(q, mask, vectors, offsets, k=k, chunk_tokens=97, query_batch=3, tie_rank=rank)
        np.testing.assert_array_equal(ids, full_ids[:, :k])
        np.testing.assert_array_equal(scores, full_scores[:, :k])
    with pytest.raises(ValueError, match="tie_rank must be a permutation of 0..119"):
        maxsim_search(q, mask, vectors, offsets, k=3, tie_rank=np.zeros(120, np.int64))


@pytest.mark.parametrize("dim", [32, 16])
def test_matryoshka_dim_renormalises_both_sides(dim):
    vectors, offsets = corpus(seed=11)
    q, mask = queries_for(vectors, offsets, seed=12)
    ref = reference_maxsim(q, mask, vectors, offsets, dim=dim)
    # The reference re-normalises after slicing: a truncated token's self-similarity is 1.
    sliced = vectors[:5, :dim].astype(np.float64)
    sliced /= np.linalg.norm(sliced, axis=1, keepdims=True)
    assert reference_maxsim(sliced[None].astype(np.float32), np.ones((1, 5), bool), vectors[:5],
                            np.array([0, 5]), dim=dim)[0, 0] == pytest.approx(5.0, abs=1e-3)
    assert not np.allclose(ref, reference_maxsim(q, mask, vectors, offsets))
    scores, ids = maxsim_search(q, mask, vectors, offsets, k=10, dim=dim, chunk_tokens=128, query_batch=4)
    assert_search_matches(scores, ids, ref, 10)
    # dim == full_dim is the same as no truncation.
    full = maxsim_search(q, mask, vectors, offsets, k=10, dim=DIM)
    none = maxsim_search(q, mask, vectors, offsets, k=10)
    np.testing.assert_array_equal(full[1], none[1])
    np.testing.assert_array_equal(full[0], none[0])


def test_float16_memmap_input(tmp_path):
    vectors, offsets = corpus(seed=13)
    path = tmp_path / "vectors.bin"
    mm = np.memmap(path, dtype=np.float16, mode="w+", shape=vectors.shape)
    mm[:] = vectors
    mm.flush()
    del mm
    stored = np.memmap(path, dtype=np.float16, mode="r", shape=vectors.shape)
    q, mask = queries_for(vectors, offsets, seed=14)
    ref = reference_maxsim(q, mask, stored, offsets)
    scores, ids = maxsim_search(q, mask, stored, offsets, k=10, chunk_tokens=256, query_batch=5)
    assert_search_matches(scores, ids, ref, 10)
    ref32 = reference_maxsim(q, mask, stored, offsets, dim=32)
    scores, ids = maxsim_search(q, mask, stored, offsets, k=10, dim=32, chunk_tokens=256)
    assert_search_matches(scores, ids, ref32, 10)
    cands = [np.array([3, 1, 99]), np.array([], dtype=np.int64)] + [np.arange(i, 120, 17) for i in range(9)]
    for i, got in enumerate(maxsim_rerank(q, mask, stored, offsets, cands)):
        np.testing.assert_allclose(got, ref[i, cands[i]], atol=1e-5, rtol=0)


def _mapped_rss_bytes(path) -> int:
    """Resident bytes of this process's mappings of ``path`` (Linux /proc/self/smaps)."""
    total, inside = 0, False
    for line in open("/proc/self/smaps"):
        head = line.split()
        if head and "-" in head[0] and not head[0].endswith(":"):
            inside = len(head) > 5 and head[5] == str(path)
        elif inside and head[0] == "Rss:":
            total += int(head[1]) * 1024
    return total


def test_memmap_searched_through_file_reads_offset_and_copy_on_write(tmp_path):
    vectors, offsets = corpus(seed=13)
    path = tmp_path / "vectors.bin"
    header = 100  # rows start after a header that is not a multiple of the page size
    with open(path, "wb") as f:
        f.write(b"x" * header + vectors.tobytes())
    q, mask = queries_for(vectors, offsets, seed=14)
    ref = reference_maxsim(q, mask, vectors, offsets)
    stored = np.memmap(path, dtype=np.float16, mode="r", offset=header, shape=vectors.shape)
    scores, ids = maxsim_search(q, mask, stored, offsets, k=10, chunk_tokens=256, query_batch=5)
    assert_search_matches(scores, ids, ref, 10)
    # A copy-on-write map's private changes are not in the file: it is searched through the map.
    private = np.memmap(path, dtype=np.float16, mode="c", offset=header, shape=vectors.shape)
    private[offsets[3]:offsets[4]] = private[offsets[7]:offsets[8]][:1]
    changed = np.array(private)
    scores, ids = maxsim_search(q, mask, private, offsets, k=10, chunk_tokens=256, query_batch=5)
    assert_search_matches(scores, ids, reference_maxsim(q, mask, changed, offsets), 10)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/smaps")
def test_search_leaves_a_memmapped_store_out_of_the_resident_set(tmp_path):
    vectors, offsets = corpus(seed=13, n_docs=2000, max_len=40)  # about 10 MB of float16
    path = tmp_path / "vectors.bin"
    vectors.tofile(path)
    stored = np.memmap(path, dtype=np.float16, mode="r", shape=vectors.shape)
    q, mask = queries_for(vectors, offsets, seed=14)
    expected = maxsim_search(q, mask, vectors, offsets, k=10, chunk_tokens=4096)
    got = maxsim_search(q, mask, stored, offsets, k=10, chunk_tokens=4096)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    assert _mapped_rss_bytes(path) < vectors.nbytes // 10
    # One query reads through the map (no copy), and lets each chunk's pages go once scored
    for i in (0, 5):
        one = maxsim_search(q[i:i + 1], mask[i:i + 1], stored, offsets, k=10, chunk_tokens=4096)
        in_memory = maxsim_search(q[i:i + 1], mask[i:i + 1], vectors, offsets, k=10, chunk_tokens=4096)
        np.testing.assert_array_equal(one[0], in_memory[0])
        np.testing.assert_array_equal(one[1], in_memory[1])
        assert _mapped_rss_bytes(path) < vectors.nbytes // 10


@pytest.mark.parametrize("dim", [None, 32])
def test_bfloat16_mode_within_tolerance(dim):
    vectors, offsets = corpus(seed=15)
    q, mask = queries_for(vectors, offsets, seed=16)
    assert mask.sum(dim=1).max() <= 12
    ref = reference_maxsim(q, mask, vectors, offsets, dim=dim)
    scores, ids = maxsim_search(q, mask, vectors, offsets, k=10, dim=dim, chunk_tokens=300, query_batch=4,
                                compute_dtype=torch.bfloat16)
    assert scores.dtype == np.float32 and ids.shape == (11, 10)
    # Each returned score is its document's true score within BF16_TOL, and so is each rank's
    # score (the i-th best of scores that are all within the tolerance is within it too).
    np.testing.assert_allclose(scores, np.take_along_axis(ref, ids, 1), atol=BF16_TOL, rtol=0)
    np.testing.assert_allclose(scores, expected_topk(ref, 10)[0], atol=BF16_TOL, rtol=0)
    assert (np.diff(scores, axis=1) <= 0).all()
    assert len(set(ids[0].tolist())) == 10
    got = maxsim_rerank(q, mask, vectors, offsets, [np.arange(120)] * 11, dim=dim, compute_dtype=torch.bfloat16)
    np.testing.assert_allclose(np.stack(got), ref, atol=BF16_TOL, rtol=0)


def test_rerank_equals_reference_including_empty_lists():
    vectors, offsets = corpus(seed=17)
    q, mask = queries_for(vectors, offsets, seed=18)
    rng = np.random.default_rng(19)
    cands = [rng.choice(120, size=rng.integers(0, 40), replace=False) for _ in range(11)]
    cands[3] = np.array([], dtype=np.int64)
    cands[4] = np.array([5, 5, 119, 0, 7, 40])  # repeats and ties, any order
    for dim in (None, 16):
        ref = reference_maxsim(q, mask, vectors, offsets, dim=dim)
        got = maxsim_rerank(q, mask, vectors, offsets, cands, dim=dim)
        assert len(got) == 11
        for i in range(11):
            assert got[i].dtype == np.float32 and got[i].shape == cands[i].shape
            np.testing.assert_allclose(got[i], ref[i, cands[i]], atol=1e-5, rtol=0)
    assert got[3].size == 0
    assert got[4][0] == got[4][1]
    # Query 1 has no real token.
    assert not got[1].any()


def test_rerank_with_more_rows_than_one_gather(monkeypatch):
    monkeypatch.setattr(maxsim, "_RERANK_ROWS", 30)
    vectors, offsets = corpus(seed=20)
    q, mask = queries_for(vectors, offsets, seed=21)
    ref = reference_maxsim(q, mask, vectors, offsets)
    got = maxsim_rerank(q, mask, vectors, offsets, [np.arange(119, -1, -1)] * 11)
    np.testing.assert_allclose(np.stack(got), ref[:, ::-1], atol=1e-5, rtol=0)


def test_invalid_arguments():
    vectors, offsets = corpus(seed=22, n_docs=5)
    q, mask = queries_for(vectors, offsets, seed=23, n=3)
    with pytest.raises(ValueError):
        maxsim_search(q, mask, vectors, offsets, k=3, dim=DIM + 1)
    with pytest.raises(ValueError):
        maxsim_search(q, mask, vectors, offsets[:-1], k=3)
    with pytest.raises(ValueError):
        maxsim_search(q, mask, vectors, np.array([0, 2, 2, offsets[-1]]), k=3)
    with pytest.raises(ValueError):
        maxsim_search(q[:, :, :32], mask, vectors, offsets, k=3)
    with pytest.raises(IndexError):
        maxsim_rerank(q, mask, vectors, offsets, [np.array([5]), np.array([]), np.array([])])


def test_the_cpu_named_as_a_device_is_the_default_path():
    vectors, offsets = corpus(seed=24)
    q, mask = queries_for(vectors, offsets, seed=25)
    ref = reference_maxsim(q, mask, vectors, offsets, dim=48)
    for device in ("cpu", torch.device("cpu")):
        scores, ids = maxsim_search(q, mask, vectors, offsets, k=10, dim=48, device=device)
        assert_search_matches(scores, ids, ref, 10)
        got = maxsim_rerank(q, mask, vectors, offsets, [np.arange(120)] * 11, dim=48, device=device)
        np.testing.assert_allclose(np.stack(got), ref, atol=1e-5, rtol=0)


# Runs where torch sees a CUDA GPU (none in CI). Needs no shared caches: on a GPU machine,
# `pytest --noconftest tests/kernels/test_maxsim.py -k gpu` runs it alone.
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("chunk_tokens", [None, 97])
def test_gpu_search_and_rerank_match_the_reference(chunk_tokens, monkeypatch):
    vectors, offsets = corpus(seed=26)
    q, mask = queries_for(vectors, offsets, seed=27)
    for dim in (None, 32):
        ref = reference_maxsim(q, mask, vectors, offsets, dim=dim)
        scores, ids = maxsim_search(q, mask, vectors, offsets, k=10, dim=dim, chunk_tokens=chunk_tokens,
                                    query_batch=3, device="cuda")
        assert_search_matches(scores, ids, ref, 10)
        assert ids[0, :4].tolist() == [7, 40, 41, 100]
        got = maxsim_rerank(q, mask, vectors, offsets, [np.arange(119, -1, -1)] * 11, dim=dim, device="cuda")
        np.testing.assert_allclose(np.stack(got), ref[:, ::-1], atol=1e-5, rtol=0)
        scores, ids = maxsim_search(q, mask, vectors, offsets, k=10, dim=dim, chunk_tokens=chunk_tokens,
                                    compute_dtype=torch.bfloat16, device="cuda")
        np.testing.assert_allclose(scores, np.take_along_axis(ref, ids, 1), atol=BF16_TOL, rtol=0)
    # 8-column GPU tiles: documents longer than a tile are scored piecewise there too.
    monkeypatch.setattr(maxsim, "_GPU_TILE_ELEMS", 64)
    monkeypatch.setattr(maxsim, "_MIN_TILE_COLS", 8)
    ref = reference_maxsim(q, mask, vectors, offsets)
    scores, ids = maxsim_search(q, mask, vectors, offsets, k=10, chunk_tokens=chunk_tokens, device="cuda")
    assert_search_matches(scores, ids, ref, 10)
