"""The dense baseline: protocol settings read off the loaded model once, then from their record; a
local model folder identified by its files, so a change made in place is a new result."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness import integrity
from harness.errors import UnknownNameError
from harness.pipeline import Unit, execute
from harness.results import load_record
from harness.retrievers.dense import DenseRetriever
from harness.runs import Run

from tests.checkpoints import local_minilm
from tests.conftest import REPO

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
    assert len(records) == 1 and integrity.unseal(records[0].read_text(), records[0]) == {
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


SUITE = """name: keys
defaults:
  language: en
  split: test
  max_length: {query: 32, document: 128}
  metrics: [ndcg@10]
datasets:
  scifact:
    source: {kind: ir_datasets, id: beir/scifact/test}
retrievers:
  dense:
    class: dense
    params: {model: MODEL_FOLDER, device: cpu}
"""


def folder_contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_a_local_model_folder_changed_in_place_is_run_again_and_the_old_result_stays(offline, tmp_path):
    from safetensors.numpy import load_file, save_file

    model = local_minilm(tmp_path / "model")
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE.replace("MODEL_FOLDER", str(model)))
    unit = Unit(str(suite), "scifact", "dense", sample=(10, 100), latency_queries=0)
    results = tmp_path / "results"
    first = execute(unit, results)
    assert first.status == "done" and load_record(first.folder).cost["document_cache"] == "miss"
    before = folder_contents(first.folder)
    assert execute(unit, results).status == "skipped"

    # Retrained in place: one weight matrix scaled, the file rewritten under its name.
    weights = load_file(str(model / "model.safetensors"))
    weights["encoder.layer.5.output.dense.weight"] = weights["encoder.layer.5.output.dense.weight"] * 1.5
    save_file(weights, str(model / "model.safetensors"), metadata={"format": "pt"})
    retrained = execute(unit, results)
    assert retrained.status == "done" and retrained.folder != first.folder
    # The documents were encoded again with the new weights, not read from the old ones' store.
    assert load_record(retrained.folder).cost["document_cache"] == "miss"
    assert Run.from_trec(retrained.folder / "run.trec.gz").scores() != Run.from_trec(first.folder / "run.trec.gz").scores()
    assert folder_contents(first.folder) == before  # the old result is untouched

    # A tokenizer file edited in place is another model too.
    vocab = (model / "vocab.txt").read_text(encoding="utf-8").splitlines()
    vocab[vocab.index("[unused5]")] = "[unused5-edited]"
    (model / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    edited = execute(unit, results)
    assert edited.status == "done" and edited.folder not in (first.folder, retrained.folder)
    assert load_record(edited.folder).cost["document_cache"] == "miss"
    identities = [load_record(o.folder).protocol["system"]["model"] for o in (first, retrained, edited)]
    assert len({i["files_sha256"] for i in identities}) == 3 and all("revision" not in i for i in identities)
    assert sorted(p.name for p in (results / "keys" / "scifact").iterdir()) == sorted(
        o.folder.name for o in (first, retrained, edited))

    # The unchanged folder's re-run is skipped in a fresh process that imports neither torch nor
    # sentence-transformers: its key is hashes of files and records of the model's facts.
    check = ("import sys; from harness.pipeline import Unit, execute; "
             f"outcome = execute(Unit({str(suite)!r}, 'scifact', 'dense', sample=(10, 100), latency_queries=0), "
             f"{str(results)!r}); "
             "print(outcome.status, outcome.folder.name, "
             "[m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.split() == ["skipped", edited.folder.name, "[]"]


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


def test_rerank_scores_the_candidates_as_search_scores_them():
    texts = ["Vitamin D and bone density.", "Protein folding.", "Bone mineral loss in the elderly.", "Cats."]
    r = DenseRetriever(MODEL, device="cpu")
    r.index(["a", "b", "c", "d"], texts)
    searched = r.search(["q"], ["bone density"], k=4)["q"]
    reranked = r.rerank(["q"], ["bone density"], {"q": ["c", "a", "missing"]})["q"]
    assert [d for d, _ in reranked] == [d for d, _ in searched if d in ("a", "c")]
    assert dict(reranked) == pytest.approx({d: s for d, s in searched if d in ("a", "c")}, abs=1e-6)
    assert r.rerank(["q"], ["bone density"], {"q": []})["q"] == []


def test_documents_encode_as_sentence_transformers_encodes_them(offline):
    """The streamed, length-sorted batches give sentence-transformers' own embeddings (its
    ``encode``, one text at a time and in its batches), to 1e-5, for texts of very different lengths."""
    from sentence_transformers import SentenceTransformer

    from harness.data.load import load_dataset
    from harness.suite import load_suite

    spec = load_suite(REPO / "suites" / "beir.yaml").dataset("scifact")
    corpus = load_dataset(spec).corpus
    texts = corpus.select(range(0, 5000, 25)).joined(["title", "text"], " ") + ["", "a", "word " * 400]
    ours = DenseRetriever(MODEL, batch_tokens=2048)._encode(texts, "")
    model = SentenceTransformer(MODEL, device="cpu")
    theirs = model.encode(texts, batch_size=32, convert_to_numpy=True)
    assert ours.shape == theirs.shape == (203, 384)
    assert np.abs(ours - theirs).max() < 1e-5
    alone = np.stack([model.encode([t], convert_to_numpy=True)[0] for t in texts[:5] + texts[-3:]])
    assert np.abs(ours[list(range(5)) + [200, 201, 202]] - alone).max() < 1e-5
