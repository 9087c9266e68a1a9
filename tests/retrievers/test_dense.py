"""The dense baseline's protocol settings: read off the loaded model once, then from their record."""

import json

import pytest

from harness.errors import UnknownNameError
from harness.retrievers.dense import DenseRetriever

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))


def test_settings_come_from_the_model_once_then_from_their_record(tmp_path):
    first = DenseRetriever(MODEL)
    settings = first.settings()
    assert first._model is not None  # the first time, the model is loaded to read them
    assert settings["modules"] == ["Transformer", "Pooling", "Normalize"] and settings["max_seq_length"] == 256
    again = DenseRetriever(MODEL)
    assert again.settings() == settings and again._model is None  # a re-run does not load the model
    records = list((tmp_path / "home" / "model-facts").glob("*.json"))
    assert len(records) == 1 and json.loads(records[0].read_text()) == {
        "modules": ["Transformer", "Pooling", "Normalize"], "max_seq_length": 256}
    # Another length asked for is another record, read off the model again.
    short = DenseRetriever(MODEL)
    short.set_max_length(None, 128)
    assert short.settings()["max_seq_length"] == 128 and short._model is not None
    # An unreadable record is replaced, not trusted.
    records[0].write_text("{not json")
    assert DenseRetriever(MODEL).settings() == settings
    assert json.loads(records[0].read_text())["max_seq_length"] == 256


def test_the_device_is_checked_by_name_at_once_and_recorded_with_the_cost():
    with pytest.raises(UnknownNameError, match="Unknown device 'gpu0'"):
        DenseRetriever(MODEL, device="gpu0")
    r = DenseRetriever(MODEL, device="cpu")
    r.index(["a", "b"], ["Vitamin D and bone density.", "Protein folding."])
    assert r.cost()["device"] == "cpu"
    # Float32 vectors, one per document, plus the offsets: the storage figures a plot shows.
    assert (r.cost()["storage_dtype"], r.cost()["index_bytes"]) == ("float32", 2 * 384 * 4 + 3 * 8)
    run = r.search(["q"], ["bone density"], k=2)
    assert [d for d, _ in run["q"]][0] == "a"


def test_ties_at_the_depth_cut_fall_in_trec_eval_order():
    from tests.retrievers.test_bm25 import tied_corpus

    ids, texts = tied_corpus()
    dense = DenseRetriever(MODEL)
    dense.index(ids, texts)
    queries = ["vitamin and bones", "protein"]
    full = dense.search(["q1", "q2"], queries, k=1000)
    # Copies of one text have one vector: 15 documents tie on the first group's score.
    assert [s for _, s in full["q1"][:16]].count(full["q1"][0][1]) == 15
    for k in (7, 15, 22):
        cut = dense.search(["q1", "q2"], queries, k=k)
        assert cut["q1"] == full["q1"][:k] and cut["q2"] == full["q2"][:k], k


def test_an_empty_document_is_encoded_as_an_empty_text():
    dense = DenseRetriever(MODEL)
    dense.index(["a", "b", "c"], ["vitamin d and bone density", "", "the common cold"])
    run = dense.search(["q"], ["bone density"], k=10)
    assert [d for d, _ in run["q"]][0] == "a" and len(run["q"]) == 3
