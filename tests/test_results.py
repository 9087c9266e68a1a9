import json

import pytest

from harness.data.model import Qrels
from harness.metrics import evaluate
from harness.results import ResultStore, load_per_query, load_record
from harness.runs import Run

from tests.helpers import make_record

RUN = Run({"q1": {"d1": 2.0, "d2": 1.0}, "q2": {"d3": 1.0}}, name="bm25")
QRELS = Qrels({"q1": {"d1": 1}, "q2": {"d9": 1}, "q3": {"d1": 1}})


def test_write_creates_a_complete_folder(tmp_path):
    store = ResultStore(tmp_path)
    evaluation = evaluate(QRELS, RUN, ["ndcg@10", "recall@100"])
    record = make_record("bm25", "scifact", evaluation.mean["ndcg@10"])
    folder = store.write(record, evaluation, RUN)
    assert folder == tmp_path / "beir" / "scifact" / f"bm25-{record.key[:12]}"
    assert sorted(p.name for p in folder.iterdir()) == ["per_query.parquet", "record.json", "run.trec.gz"]
    assert load_record(folder) == record
    assert json.loads((folder / "record.json").read_text())["protocol_hash"] == record.protocol_hash
    per_query = load_per_query(folder)
    assert per_query["query_id"].tolist() == ["q1", "q2", "q3"]
    assert per_query["ndcg@10"].tolist() == [1.0, 0.0, 0.0]
    assert Run.from_trec(folder / "run.trec.gz").scores() == RUN.scores()
    assert [path for path, _ in store.records()] == [folder]


def test_existing_result_is_kept_unless_forced(tmp_path):
    store = ResultStore(tmp_path)
    evaluation = evaluate(QRELS, RUN, ["ndcg@10"])
    record = make_record("bm25", "scifact", 0.1)
    folder = store.write(record, evaluation, RUN)
    with pytest.raises(FileExistsError):
        store.write(record, evaluation, RUN)
    assert load_record(folder).metrics["ndcg@10"] == 0.1
    store.write(record.model_copy(update={"metrics": {"ndcg@10": 0.2, "recall@100": 0.3}}), evaluation, RUN, force=True)
    assert load_record(folder).metrics["ndcg@10"] == 0.2
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]  # no .tmp or .trash left


def test_a_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    store = ResultStore(tmp_path)
    evaluation = evaluate(QRELS, RUN, ["ndcg@10"])

    def broken(self, path):
        raise OSError("disk full")

    monkeypatch.setattr(Run, "to_trec", broken)
    with pytest.raises(OSError, match="disk full"):
        store.write(make_record("bm25", "scifact", 0.1), evaluation, RUN)
    assert list(tmp_path.rglob("*")) == []  # no temporary, no lock file, not even the folders made for them
    assert list(store.records()) == []
