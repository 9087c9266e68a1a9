"""A plain encoder used zero-shot as a multi-vector model, on the real all-MiniLM-L6-v2 weights."""

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from harness.encoders.checkpoint import load_checkpoint
from harness.encoders.multivector import MultiVectorEncoder
from harness.errors import DataUnavailableError, UnknownNameError
from harness.index.token_store import TokenStore, TokenStoreWriter

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DOCS = ["Alterations of the architecture of cerebral white matter, in the developing human brain.",
        "Hello, world!", "A much longer document " * 40]


@pytest.fixture(scope="module")
def reference():
    tokenizer = AutoTokenizer.from_pretrained(MODEL)
    model = AutoModel.from_pretrained(MODEL).eval()

    def vectors(text, maxlen):
        enc = tokenizer(text, truncation=True, max_length=maxlen, return_tensors="pt")
        with torch.inference_mode():
            hidden = model(**enc).last_hidden_state[0]
        return enc["input_ids"][0].tolist(), torch.nn.functional.normalize(hidden, dim=-1).numpy()

    return tokenizer, vectors


def encoder(**overrides):
    ckpt = load_checkpoint(MODEL, overrides={"query_maxlen": 32, "doc_maxlen": 64, **overrides})
    return MultiVectorEncoder(ckpt, batch_tokens=96)


def test_plain_checkpoint_is_identified_by_its_hub_revision():
    ckpt = load_checkpoint(MODEL)
    assert ckpt.identity == {"model": MODEL, "format": "plain", "revision": "c9745ed1d9f207416be6d2e6f8de32d1f16199bf"}
    assert ckpt.projection is None and ckpt.settings.query_marker is None and not ckpt.settings.query_expansion


def test_document_vectors_match_an_independent_forward_pass(tmp_path, reference):
    tokenizer, vectors = reference
    enc = encoder()
    store = enc.encode_documents(DOCS, lambda counts, dim: TokenStoreWriter(tmp_path / "s", counts, dim, dtype="float32"))
    punctuation = {tokenizer.convert_tokens_to_ids(p) for p in [",", ".", "!"]}
    for i, text in enumerate(DOCS):
        ids, expected = vectors(text, 64)
        keep = [t not in punctuation for t in ids]
        np.testing.assert_allclose(store.doc(i), expected[keep], atol=1e-5)
    # "Hello, world!" -> [CLS] hello , world ! [SEP]: the comma and the bang are dropped
    assert store.doc(1).shape == (4, 384)
    assert store.doc(2).shape[0] == 64  # truncated to doc_maxlen, no punctuation in it
    assert np.allclose(np.linalg.norm(store.vectors, axis=1), 1.0, atol=1e-5)


def test_batching_does_not_change_the_stored_vectors(tmp_path):
    # Many small batches (each gathered and written on its own) against one batch for everything.
    docs = DOCS * 4
    small = encoder().encode_documents(docs, lambda c, d: TokenStoreWriter(tmp_path / "a", c, d, dtype="float32"))
    one = MultiVectorEncoder(load_checkpoint(MODEL, overrides={"query_maxlen": 32, "doc_maxlen": 64}),
                             batch_tokens=1 << 20)
    big = one.encode_documents(docs, lambda c, d: TokenStoreWriter(tmp_path / "b", c, d, dtype="float32"))
    # 15, 4 and 64 stored tokens: punctuation dropped, the long one cut at doc_maxlen
    assert small.offsets.tolist() == big.offsets.tolist() == np.cumsum([0] + [15, 4, 64] * 4).tolist()
    np.testing.assert_allclose(small.vectors, big.vectors, atol=1e-5)
    assert one.device.type == "cpu" and one.batch_tokens == 1 << 20
    assert MultiVectorEncoder(load_checkpoint(MODEL)).batch_tokens == 4096  # the CPU default


def test_tokens_are_the_ones_the_tokenizer_call_gives(reference):
    # The encoder calls the Rust tokenizer directly; the ids must be those of tokenizer(...).
    tokenizer, _ = reference
    enc = encoder()
    texts = DOCS + ["Ünïcödé façade — naïve café 東京 🙂", "x", "word " * 500]
    for maxlen in (8, 64, 300):
        expected = tokenizer(texts, truncation=True, max_length=maxlen)["input_ids"]
        assert enc.tokenize(texts, maxlen, None) == expected
        slow = encoder()
        slow._truncating_backend = lambda budget: None  # a tokenizer without a Rust backend
        assert slow.tokenize(texts, maxlen, None) == expected
    # the encoder's tokenizer is left as it was loaded (tokenizer(...) would set truncation on it)
    assert enc.tokenizer.backend_tokenizer.truncation is None


def test_chunks_tokenised_ahead_give_the_same_store(tmp_path):
    # 7 chunks of 2 documents, the next tokenised on a thread (as on a GPU), against one chunk.
    docs = DOCS * 4 + ["Hello again."]
    whole = encoder().encode_documents(docs, lambda c, d: TokenStoreWriter(tmp_path / "a", c, d, dtype="float32"))
    enc = MultiVectorEncoder(load_checkpoint(MODEL, overrides={"query_maxlen": 32, "doc_maxlen": 64}),
                             batch_tokens=96, chunk_tokens=128)  # 2 documents a chunk
    enc.tokenize_ahead = True
    made = []
    chunked = enc.encode_documents(docs, lambda c, d: made.append(list(c)) or TokenStoreWriter(tmp_path / "b", c, d,
                                                                                         dtype="float32"))
    assert made == [[15, 4]]  # the writer is made from the first chunk; the others extend it
    assert chunked.offsets.tolist() == whole.offsets.tolist() == np.cumsum([0] + [15, 4, 64] * 4 + [4]).tolist()
    np.testing.assert_allclose(chunked.vectors, whole.vectors, atol=1e-5)


def test_a_failed_write_leaves_no_store_and_keeps_an_earlier_one(tmp_path):
    class FullDisk(TokenStoreWriter):
        def write_span(self, first, stop, rows):
            if first == 2:  # the second chunk
                raise OSError(28, "No space left on device")
            super().write_span(first, stop, rows)

    enc = MultiVectorEncoder(load_checkpoint(MODEL, overrides={"query_maxlen": 32, "doc_maxlen": 64}),
                             batch_tokens=96, chunk_tokens=128)  # 2 documents a chunk
    enc.tokenize_ahead = True
    with pytest.raises(OSError, match="No space left on device"):
        enc.encode_documents(DOCS * 3, lambda c, d: FullDisk(tmp_path / "s", c, d))
    assert list(tmp_path.iterdir()) == []  # the half-written store was removed
    kept = enc.encode_documents(DOCS, lambda c, d: TokenStoreWriter(tmp_path / "s", c, d))
    with pytest.raises(OSError, match="No space left on device"):
        enc.encode_documents(DOCS * 3, lambda c, d: FullDisk(tmp_path / "s", c, d))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]
    assert TokenStore.open(tmp_path / "s").offsets.tolist() == kept.offsets.tolist() == [0, 15, 19, 83]


def test_no_documents_make_an_empty_store(tmp_path):
    store = encoder().encode_documents([], lambda c, d: TokenStoreWriter(tmp_path / "e", c, d))
    assert store.n_docs == 0 and store.vectors.shape == (0, 384)


def test_query_vectors_and_mask_without_expansion(reference):
    _, vectors = reference
    q, mask = encoder().encode_queries(["What is the brain?", "short"])
    ids, expected = vectors("What is the brain?", 32)
    assert q.shape == (2, len(ids), 384)
    assert mask.sum(axis=1).tolist() == [len(ids), 3]  # [CLS] short [SEP]
    np.testing.assert_allclose(q[0, : len(ids)], expected, atol=1e-5)
    assert not q[1, 3:].any()


def test_query_expansion_pads_with_mask_to_query_maxlen():
    enc = encoder(query_expansion=True)
    ids, attend, scoring = enc.query_inputs(["short"])
    mask_id = enc.tokenizer.mask_token_id
    assert ids[0] == [enc.tokenizer.cls_token_id, enc.tokenizer.convert_tokens_to_ids("short"),
                      enc.tokenizer.sep_token_id] + [mask_id] * 29
    assert attend[0] == [1, 1, 1] + [0] * 29 and scoring[0] == [True] * 32
    q, mask = enc.encode_queries(["short"])
    assert q.shape == (1, 32, 384) and mask.all()


def test_unknown_override_and_missing_model_are_explained():
    with pytest.raises(UnknownNameError, match=r"Unknown encoder settings \['query_len'\]"):
        load_checkpoint(MODEL, overrides={"query_len": 8})
    with pytest.raises(DataUnavailableError) as e:
        load_checkpoint("colbert-ir/colbertv2.0")
    assert "Model 'colbert-ir/colbertv2.0' is neither a local folder nor in the Hugging Face cache" in str(e.value)
    assert "models--colbert-ir--colbertv2.0" in str(e.value) and "HF_HOME=" in str(e.value)


def test_work_done_ahead_comes_back_in_order_and_its_errors_reach_the_caller():
    import threading
    import time

    from harness.encoders.multivector import _ahead

    def slow_first(i):
        time.sleep(0.05 if i == 0 else 0)
        return i, threading.current_thread().name

    out = list(_ahead(slow_first, range(5)))
    assert [i for i, _ in out] == [0, 1, 2, 3, 4]
    assert all(name.startswith("tokenizer") for _, name in out)

    def fails_at_two(i):
        if i == 2:
            raise ValueError("bad chunk 2")
        return i

    seen = []
    with pytest.raises(ValueError, match="bad chunk 2"):
        for i in _ahead(fails_at_two, range(5)):
            seen.append(i)
    assert seen == [0, 1]
