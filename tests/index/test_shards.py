"""Shard plans, the exact merge of shard top-k lists, and sharded stores in the cache: a shard
once whole is never encoded again, a damaged one is."""

import numpy as np
import pytest

from harness.index import cache, shards
from harness.index.shards import merge_topk, shard_plan
from harness.index.token_store import TokenStore
from harness.runs import tie_ranks


def test_a_plan_gives_each_shard_the_documents_that_fit_at_their_most_vectors():
    assert shard_plan(4, 3, 6) == [(0, 2), (2, 4)]
    assert shard_plan(4, 3, 7) == [(0, 2), (2, 4)]
    assert shard_plan(5, 3, 7) == [(0, 2), (2, 4), (4, 5)]
    assert shard_plan(3, 9, 4) == [(0, 1), (1, 2), (2, 3)]  # a document longer than a shard is one alone
    assert shard_plan(2, 5, 100) == [(0, 2)]
    assert shard_plan(0, 5, 10) == [(0, 0)]
    with pytest.raises(ValueError, match="at least 1"):
        shard_plan(1, 1, 0)


def test_merging_shard_top_lists_is_the_top_k_of_all_documents_with_ties_in_trec_eval_order():
    rng = np.random.default_rng(3)
    ids = [f"d{i:03d}" for i in rng.permutation(60)]
    ranks = tie_ranks(ids)
    scores = rng.integers(0, 5, size=(4, 60)).astype(np.float32)  # many ties
    spans = [(0, 13), (13, 40), (40, 60)]
    k = 10
    parts = []
    for first, stop in spans:
        # each shard's own top k, by its own order of the corpus's ranks
        local = np.argsort(np.argsort(ranks[first:stop]))
        order = np.stack([np.lexsort((local, -row))[:k] for row in scores[:, first:stop]])
        parts.append((np.take_along_axis(scores[:, first:stop], order, axis=1), order + first))
    merged_scores, merged_docs = merge_topk(parts, k, ranks)
    for q in range(4):
        expected = np.lexsort((ranks, -scores[q]))[:k]
        assert merged_docs[q].tolist() == expected.tolist()
        assert merged_scores[q].tolist() == scores[q, expected].tolist()


class Ones:
    """An encoder of two rows per document, each filled with the document's index; it notes the
    spans it was asked to encode."""

    def __init__(self):
        self.encoded = []

    def encode_span(self, first, stop, make_writer):
        self.encoded.append((first, stop))
        writer = make_writer(np.full(stop - first, 2, dtype=np.int64), 4)
        for i in range(first, stop):
            writer.write(i - first, np.full((2, 4), i, dtype=np.float32))
        return writer.finish()


def test_a_sharded_store_reuses_whole_shards_and_encodes_a_damaged_one_again(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    cache.STATS.clear()
    shards.STATS.clear()
    ids, texts = [f"d{i}" for i in range(10)], [f"text {i}" for i in range(10)]
    key = {"role": "document", "corpus": cache.corpus_fingerprint(ids, texts)}
    encoder = Ones()
    encoded = encoder.encoded
    store, hit = shards.open_or_encode(key, 6, 10, 2, encoder)
    assert not hit and store.spans == [(0, 3), (3, 6), (6, 9), (9, 10)] and encoded == store.spans
    assert store.n_docs == 10 and store.n_tokens == 20 and store.offsets.tolist() == list(range(0, 21, 2))
    assert store.doc(7).tolist() == [[7.0] * 4] * 2
    # Damage one shard: only it is encoded again, by the manifest's plan (these counts would plan 2 a shard).
    vectors = store.shards[2].path / "vectors.bin"
    data = vectors.read_bytes()
    vectors.write_bytes(bytes([data[0] ^ 0xFF]) + data[1:])
    encoded.clear()
    again, hit = shards.open_or_encode(key, 6, 10, 3, encoder)
    assert not hit and encoded == [(6, 9)] and again.doc(7).tolist() == [[7.0] * 4] * 2
    third, hit = shards.open_or_encode(key, 6, 10, 2, encoder)
    assert hit and encoded == [(6, 9)]
    assert dict(shards.STATS) == {"encoded": 5, "reused": 7} and dict(cache.STATS) == {"misses": 2, "hits": 1}


def test_one_shard_is_the_whole_store_at_its_document_key(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    shards.STATS.clear()
    ids, texts = ["a", "b"], ["x", "y"]
    key = {"role": "document", "corpus": cache.corpus_fingerprint(ids, texts)}
    store, _ = shards.open_or_encode(key, 100, 2, 2, Ones())
    assert isinstance(store, TokenStore) and store.path == cache.store_path(key)
    assert not shards.STATS  # shard counters are for stores of several shards
