"""`source: {kind: mteb}`, offline: a task's data laid out in the datasets cache as `datasets` keeps
a prepared hub dataset (`<HF_DATASETS_CACHE>/<org>___<name>/<config>/0.0.0/<hash>/`, Arrow files
and `dataset_info.json`), which mteb's own loader reads when HF_HUB_OFFLINE is set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli

datasets = pytest.importorskip("datasets")
pytest.importorskip("mteb")

SCIFACT_REVISION = "d56462d0e63a25450459c4f213e49ffdb866f7f9"  # MTEB's pin (mteb.get_task("SciFact"))
CORPUS = [{"_id": "d1", "title": "Fruit", "text": "apple banana orchard"},
          {"_id": "d2", "title": "Cars", "text": "car engine wheel"},
          {"_id": "d3", "title": "", "text": "banana split dessert"}]
QUERIES = [{"_id": "q1", "text": "car engine"}, {"_id": "q2", "text": "apple orchard"},
           {"_id": "q3", "text": "not judged"}]
QRELS = [{"query-id": "q1", "corpus-id": "d2", "score": 1}, {"query-id": "q2", "corpus-id": "d1", "score": 1}]


def cached(cache: Path, repo: str, config: str, split: str, rows: list[dict]) -> None:
    """One config of a hub dataset as `datasets` stores it once prepared."""
    from datasets.arrow_writer import ArrowWriter

    folder = cache / repo.replace("/", "___") / config / "0.0.0" / SCIFACT_REVISION
    folder.mkdir(parents=True)
    table = datasets.Dataset.from_list(rows)
    name = repo.split("/")[-1]
    with ArrowWriter(path=str(folder / f"{name}-{split}.arrow")) as writer:
        writer.write_table(table.data.table)
        writer.finalize()
    datasets.DatasetInfo(features=table.features, config_name=config, dataset_name=name,
                         splits=[{"name": split, "num_examples": len(rows), "dataset_name": name}]
                         ).write_to_directory(str(folder))


@pytest.fixture
def scifact_cache(tmp_path) -> dict[str, str]:
    cache = tmp_path / "datasets"
    cached(cache, "mteb/scifact", "default", "test", QRELS)
    cached(cache, "mteb/scifact", "corpus", "corpus", CORPUS)
    cached(cache, "mteb/scifact", "queries", "queries", QUERIES)
    return {"HF_DATASETS_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "HARNESS_HOME": str(tmp_path / "harness")}


def suite(tmp_path: Path, source: str = "{kind: mteb, task: SciFact}") -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(f"name: mine\ndatasets:\n  scifact:\n    source: {source}\n    language: en\n    split: test\n"
                    "    metrics: [ndcg@10, recall@100]\n")
    return path


def test_an_mteb_task_is_a_suite_dataset(tmp_path, scifact_cache):
    results = tmp_path / "results"
    done = run_cli("run", str(suite(tmp_path)), "-r", "bm25", "--latency-queries", "0", "--results", str(results),
                   env=scifact_cache)
    assert done.returncode == 0, done.stderr
    [record] = [json.loads(p.read_text()) for p in results.rglob("record.json")]
    # BM25 ranks each judged query's document first; q3, which MTEB's loader drops (no judgments), is not scored.
    assert record["metrics"] == {"ndcg@10": pytest.approx(1.0), "recall@100": pytest.approx(1.0)}
    assert record["n_queries"] == 2
    assert record["protocol"]["source"] == {"kind": "mteb", "task": "SciFact", "subset": None, "split": "test"}
    assert record["protocol"]["revision"] == {"dataset": "mteb/scifact", "dataset_revision": SCIFACT_REVISION,
                                              "hf_subset": "default", "split": "test"}


def test_missing_data_names_the_task_its_revision_and_the_cache(tmp_path):
    env = {"HF_DATASETS_CACHE": str(tmp_path / "empty"), "HF_HUB_OFFLINE": "1", "HARNESS_HOME": str(tmp_path / "h")}
    done = run_cli("run", str(suite(tmp_path)), "-r", "bm25", "--results", str(tmp_path / "results"), env=env)
    assert done.returncode == 2
    text = " ".join(done.stderr.split())
    assert text.startswith(f"error: dataset 'scifact' of suite 'mine': mteb could not load task SciFact (mteb/scifact "
                           f"at revision {SCIFACT_REVISION}, subset default, split test)"), text
    assert f"the datasets cache, {tmp_path / 'empty'} (HF_DATASETS_CACHE or $HF_HOME/datasets)" in text


@pytest.mark.parametrize("source, message", [
    ("{kind: mteb, task: NoSuchTask}", "MTEB has no task 'NoSuchTask'"),
    ("{kind: mteb, task: MIRACLRetrieval}", "MTEB task MIRACLRetrieval has subsets ar, bn, de"),
    ("{kind: mteb, task: Banking77Classification}", "MTEB task Banking77Classification is a Classification task"),
])
def test_tasks_that_cannot_be_a_dataset_are_refused_by_name(tmp_path, source, message):
    done = run_cli("run", str(suite(tmp_path, source)), "-r", "bm25", "--results", str(tmp_path / "results"),
                   env={"HARNESS_HOME": str(tmp_path / "h"), "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 2
    assert message in " ".join(done.stderr.split()), done.stderr
