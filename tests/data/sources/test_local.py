"""The `local` source: BEIR folders and TREC-style TSV collections written by each test, loaded as a
user would (a suite file beside them, `load_dataset`, `harness run`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.data import store
from harness.data.load import load_dataset
from harness.errors import DataUnavailableError, FormatError
from harness.suite import load_suite

from tests.conftest import run_cli

DOCUMENTS = {"d1": ("Fruit", "apple banana orchard"), "d2": ("Cars", "car engine wheel"),
             "d3": ("Dessert", "banana split dessert")}
QUERIES = {"q1": "car engine", "q2": "apple orchard"}
QRELS = [("q1", "d2", 1), ("q2", "d1", 2), ("q2", "d3", 0)]


def beir_folder(root: Path, split: str = "test") -> Path:
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": d, "title": t, "text": x, "metadata": {}}) + "\n"
                                               for d, (t, x) in DOCUMENTS.items()))
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in QUERIES.items()))
    (root / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n"
                                                 + "".join(f"{q}\t{d}\t{g}\n" for q, d, g in QRELS))
    return root


def trec_folder(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "collection.tsv").write_text("".join(f"{d}\t{t}\t{x}\n" for d, (t, x) in DOCUMENTS.items()))
    (root / "topics.tsv").write_text("".join(f"{q}\t{t}\n" for q, t in QUERIES.items()))
    (root / "qrels.txt").write_text("".join(f"{q} 0 {d} {g}\n" for q, d, g in QRELS))
    return root


def suite_file(folder: Path, source: str, extra: str = "", name: str = "suite.yaml") -> Path:
    path = folder / name
    path.write_text(f"name: mine\ndatasets:\n  mine:\n    source: {source}\n    language: en\n    split: test\n"
                    "    metrics: [ndcg@10, mrr@10]\n" + extra)
    return path


@pytest.fixture(autouse=True)
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "harness"))


def load(suite: Path):
    loaded = load_suite(suite)
    return load_dataset(loaded.dataset("mine"), loaded.name)


def test_beir_folder_relative_to_the_suite_file(tmp_path, monkeypatch):
    beir_folder(tmp_path / "data" / "mine")
    suite = suite_file(tmp_path, "{kind: local, path: data/mine, format: beir}")
    monkeypatch.chdir("/")  # the folder is found from the suite file, not the working directory
    dataset = load(suite)
    assert dataset.corpus.ids == ["d1", "d2", "d3"]
    assert dataset.corpus.titles[0] == "Fruit" and dataset.corpus.texts[2] == "banana split dessert"
    assert dataset.queries.texts == ["car engine", "apple orchard"]
    assert dataset.qrels.to_dict() == {"q1": {"d2": 1}, "q2": {"d1": 2, "d3": 0}}
    assert set(dataset.revision["files_sha256"]) == {"corpus.jsonl", "queries.jsonl", "qrels/test.tsv"}


def test_beir_judgments_follow_the_split(tmp_path):
    beir_folder(tmp_path / "mine", split="dev")
    suite = suite_file(tmp_path, "{kind: local, path: mine, format: beir}").read_text().replace("split: test", "split: dev")
    (tmp_path / "suite.yaml").write_text(suite)
    assert load(tmp_path / "suite.yaml").qrels.n_judgments == 3


def test_trec_collection_with_candidates_in_rank_order(tmp_path):
    folder = trec_folder(tmp_path / "mine")
    # Lines out of rank order: the candidates follow the rank column.
    (folder / "bm25.run").write_text("q1 Q0 d2 2 1.0 x\nq1 Q0 d3 1 2.0 x\nq2 Q0 d1 1 3.0 x\n")
    suite = suite_file(tmp_path, "{kind: local, path: mine, format: trec, candidates: bm25.run}",
                       "    mode: rerank\n    candidates: {source: dataset}\n")
    dataset = load(suite)
    assert dataset.corpus.titles == ["Fruit", "Cars", "Dessert"]
    assert dataset.candidates == {"q1": ["d3", "d2"], "q2": ["d1"]}
    assert dataset.qrels.to_dict()["q2"] == {"d1": 2, "d3": 0}


def test_cache_is_keyed_by_the_files_content(tmp_path):
    suite = suite_file(tmp_path, "{kind: local, path: mine, format: beir}")
    beir_folder(tmp_path / "mine")
    load(suite)
    entries = lambda: sorted(p.name for p in (store.dataset_cache_dir() / "local").rglob("manifest.json"))  # noqa: E731
    assert len(entries()) == 1
    load(suite)  # unchanged files: the same entry
    assert len(entries()) == 1
    (tmp_path / "mine" / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "wheel"}) + "\n"
                                                     + json.dumps({"_id": "q2", "text": "apple"}) + "\n")
    assert load(suite).queries.texts == ["wheel", "apple"]  # an edited file is read again
    assert len(list((store.dataset_cache_dir() / "local").rglob("manifest.json"))) == 2


@pytest.mark.parametrize("file, content, message", [
    ("corpus.jsonl", '{"_id": "d1", "text": "a"}\n{"_id": "d2", "text": \n',
     "corpus.jsonl:2: not a JSON object (Expecting value at column 23)"),
    ("corpus.jsonl", '{"_id": "d1", "text": "a"}\n\n{"title": "t", "text": "b"}\n',
     "corpus.jsonl:3: the line has no `_id`"),
    ("queries.jsonl", '{"_id": "q1", "text": ["a"]}\n', "queries.jsonl:1: `text` and `title` must be strings"),
    ("qrels/test.tsv", "query-id\tcorpus-id\tscore\nq1\td2\n", "qrels/test.tsv:2: a qrels line has 4 fields"),
])
def test_beir_malformed_line_names_file_and_line(tmp_path, file, content, message):
    folder = beir_folder(tmp_path / "mine")
    (folder / file).write_text(content)
    with pytest.raises(FormatError) as error:
        load(suite_file(tmp_path, "{kind: local, path: mine, format: beir}"))
    assert str(error.value).startswith(str(folder / message.split(":")[0]) + ":" + message.split(":", 1)[1])


@pytest.mark.parametrize("file, content, message", [
    ("collection.tsv", "d1\tapple\nd2 car engine\n", "collection.tsv:2: a line of the collection"),
    ("topics.tsv", "q1\tcar\textra\n", "topics.tsv:1: a line of the topics (id, text) file has 2 tab-separated fields"),
    ("run", "q1 Q0 d2 1 1.0\n", "run:1: a TREC run line has 6 fields"),
    ("run", "q1 Q0 d2 first 1.0 x\n", "run:1: the rank 'first' is not a whole number"),
])
def test_trec_malformed_line_names_file_and_line(tmp_path, file, content, message):
    folder = trec_folder(tmp_path / "mine")
    (folder / "run").write_text("q1 Q0 d2 1 1.0 x\n")
    (folder / file).write_text(content)
    with pytest.raises(FormatError) as error:
        load(suite_file(tmp_path, "{kind: local, path: mine, format: trec, candidates: run}"))
    assert str(error.value).startswith(str(folder / message.split(":")[0]) + ":" + message.split(":", 1)[1])


def test_missing_file_names_it_and_the_layout(tmp_path):
    folder = beir_folder(tmp_path / "mine")
    (folder / "queries.jsonl").unlink()
    with pytest.raises(DataUnavailableError) as error:
        load(suite_file(tmp_path, "{kind: local, path: mine, format: beir}"))
    assert f"lacks queries: {folder / 'queries.jsonl'}. A `format: beir` folder holds corpus.jsonl" in str(error.value)


def test_run_scores_it_and_the_card_holds_checksums_not_the_path(tmp_path):
    """BM25 over the three documents: each query's relevant document shares two words with it and
    the others none, so both rank it first (nDCG@10 = MRR@10 = 1). The same files in another folder
    give the same protocol."""
    hashes = []
    for where in ("a", "b"):
        beir_folder(tmp_path / where / "mine")
        suite = suite_file(tmp_path / where, "{kind: local, path: mine, format: beir}")
        done = run_cli("run", str(suite), "-r", "bm25", "--results", str(tmp_path / where / "results"),
                       env={"HARNESS_HOME": str(tmp_path / "harness")})
        assert done.returncode == 0, done.stderr
        [record] = (tmp_path / where / "results").rglob("record.json")
        record = json.loads(record.read_text())
        assert record["metrics"]["ndcg@10"] == pytest.approx(1.0) and record["metrics"]["mrr@10"] == pytest.approx(1.0)
        assert record["protocol"]["source"] == {"kind": "local", "format": "beir", "documents": None, "queries": None,
                                                "judgments": "qrels/test.tsv", "candidates": None}
        assert str(tmp_path) not in json.dumps(record["protocol"])
        hashes.append(record["protocol_hash"])
    assert hashes[0] == hashes[1]
