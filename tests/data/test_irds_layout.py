"""The ir_datasets code path beyond SciFact, offline: small datasets laid out in a temporary
IR_DATASETS_HOME exactly where ir_datasets keeps its downloads, then loaded through the CLI as a
user would. ir_datasets uses a file already at its cache path without checking its md5 (it checks
only what it downloads), so these files stand in for the real ones.

Also: a dataset whose files are absent fails at once, naming the files to put in place."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import zipfile
from importlib import resources
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from harness.data.sources import irds
from harness.errors import DataUnavailableError
from harness.results import ResultStore

from tests.conftest import REPO, SHARED, require_shared, run_cli

MIRACL_REFERENCE = SHARED / "data" / "reference" / "miracl"
# Always offline, even on a machine with a network: every request goes to a closed local port.
NO_NETWORK = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "",
              "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9", "no_proxy": ""}


def suite_copy(path: Path, source: Path, datasets: dict[str, dict]) -> Path:
    """A shipped suite with only the given dataset entries (overrides merged into the shipped ones)."""
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    shipped = data["datasets"]
    data["datasets"] = {}
    for name, changes in datasets.items():
        changes = dict(changes)
        data["datasets"][name] = {**shipped[changes.pop("from", name)], **changes}
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def parquet_rows(home: Path, slug: str, table: str) -> dict:
    (entry,) = (home / "datasets" / "ir_datasets" / slug).iterdir()
    return pq.read_table(entry / f"{table}.parquet").to_pydict()


# --- One IR_DATASETS_HOME with two small datasets in ir_datasets' own layouts, run once:
# --- MIRACL Yoruba: the official topics and qrels (the very files ir_datasets downloads) with a
#     small corpus holding every judged passage;
# --- BEIR ArguAna: a small zip in BEIR's own layout, where every query is also a corpus document.

YORUBA_TITLE = "Ìdíje Òlímpíkì"
ARGUMENTS = {
    "test-energy-nuclear-pro01a": "nuclear reactors provide steady carbon free electricity",
    "test-energy-nuclear-pro01b": "nuclear reactors leave radioactive waste for millennia",
    "test-health-sugar-con01a": "sugar taxes reduce childhood obesity rates",
    "test-health-sugar-con01b": "sugar taxes burden poorer households unfairly",
    "test-law-jury-pro02a": "jury trials let citizens check judicial power",
    "test-law-jury-pro02b": "jury verdicts swing with emotional courtroom theatrics",
    "test-sport-doping-con03a": "doping bans protect athletes health",
    "test-sport-doping-con03b": "doping controls invade athletes privacy",
}
QUERIES = ["test-energy-nuclear-pro01a", "test-health-sugar-con01a", "test-law-jury-pro02a"]


def lay_out_miracl_yoruba(irds_home: Path) -> tuple[dict[str, str], list[dict]]:
    require_shared("data", "reference", "miracl")
    base = irds_home / "miracl" / "v1.0" / "yo"
    (base / "dev").mkdir(parents=True)
    (base / "docs").mkdir()
    for kind in ("topics", "qrels"):
        (base / "dev" / f"{kind}.tsv").write_bytes((MIRACL_REFERENCE / f"{kind}.miracl-v1.0-yo-dev.tsv").read_bytes())
    topics = dict(line.rstrip("\n").split("\t", 1) for line in open(base / "dev" / "topics.tsv", encoding="utf-8"))
    judged: dict[str, list[str]] = {}
    for line in open(base / "dev" / "qrels.tsv", encoding="utf-8"):
        qid, _, doc, grade = line.split()
        judged.setdefault(doc, []).append(topics[qid] if grade == "1" else "")
    docs = [{"docid": doc, "title": YORUBA_TITLE if doc == "10020#1" else f"Àkọlé {i}",
             "text": " ".join(t for t in texts if t) or f"ọ̀rọ̀ àfikún {i}"}
            for i, (doc, texts) in enumerate(sorted(judged.items()))]
    docs += [{"docid": "999999#0", "title": "", "text": "Ẹ kú àárọ̀"}, {"docid": "999999#1", "title": "Ọ̀yọ́", "text": ""}]
    # ir_datasets' download table puts Yoruba's only corpus file at docs-1.jsonl.gz
    with gzip.open(base / "docs" / "docs-1.jsonl.gz", "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(d, ensure_ascii=False) + "\n" for d in docs)
    return topics, docs


def lay_out_arguana(irds_home: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("arguana/corpus.jsonl", "".join(
            json.dumps({"_id": i, "title": i.split("-")[2], "text": t, "metadata": {}}) + "\n" for i, t in ARGUMENTS.items()))
        z.writestr("arguana/queries.jsonl", "".join(
            json.dumps({"_id": q, "text": ARGUMENTS[q], "metadata": {}}) + "\n" for q in QUERIES))
        z.writestr("arguana/qrels/test.tsv", "query-id\tcorpus-id\tscore\n" + "".join(
            f"{q}\t{q[:-1]}b\t1\n" for q in QUERIES))
    (irds_home / "beir" / "arguana").mkdir(parents=True)
    (irds_home / "beir" / "arguana" / "source.zip").write_bytes(buffer.getvalue())


@pytest.fixture(scope="module")
def small_home(tmp_path_factory):
    """Both layouts in one IR_DATASETS_HOME, and one CLI run over a suite of their three datasets
    (the shipped entries, with counts for these small corpora)."""
    root = tmp_path_factory.mktemp("irds-layout")
    topics, docs = lay_out_miracl_yoruba(root / "irds")
    lay_out_arguana(root / "irds")
    env = {"IR_DATASETS_HOME": str(root / "irds"), "HARNESS_HOME": str(root / "home"), **NO_NETWORK}
    arguana = {"expected": {"documents": 8, "queries": 3, "judgments": 3, "grades": [1]}}
    beir = suite_copy(root / "beir-small.yaml", REPO / "suites" / "beir.yaml", {
        "arguana": arguana, "arguana-with-self": {"from": "arguana", **arguana, "remove_self_matches": False}})
    miracl = yaml.safe_load((REPO / "suites" / "miracl.yaml").read_text(encoding="utf-8"))["datasets"]["yo"]
    suite = yaml.safe_load(beir.read_text(encoding="utf-8"))
    suite["datasets"]["yo"] = {**miracl, "split": "dev", "metrics": ["ndcg@10", "recall@100"],
                               "expected": {"documents": len(docs), "queries": 119, "judgments": 1188, "grades": [0, 1]}}
    beir.write_text(yaml.safe_dump(suite, allow_unicode=True, sort_keys=False), encoding="utf-8")
    done = run_cli("run", str(beir), "-r", "bm25", "--results", str(root / "results"), env=env)
    assert done.returncode == 0, done.stderr
    records = {r.dataset: r for _, r in ResultStore(root / "results").records()}
    return root, env, topics, docs, records


def test_miracl_yoruba_loads_through_the_cli_with_official_counts_and_texts(small_home):
    root, env, topics, docs, records = small_home
    record = records["yo"]
    downloads = json.loads((resources.files("ir_datasets") / "etc" / "downloads.json").read_text())["miracl"]
    assert record.n_queries == 119  # every official dev query is judged
    assert record.protocol["language"] == "yo" and record.protocol["split"] == "dev"
    assert record.protocol["filters"]["dropped"] == {}  # every judged passage is in the corpus
    assert record.protocol["revision"]["files_md5"] == sorted(
        downloads[k]["expected_md5"] for k in ("v1.0/yo/corpus/0", "v1.0/yo/dev/topics", "v1.0/yo/dev/qrels"))
    assert set(record.metrics) == {"ndcg@10", "recall@100"}

    home = Path(env["HARNESS_HOME"])
    queries = parquet_rows(home, "miracl__yo__dev", "queries")
    assert dict(zip(queries["id"], queries["text"])) == topics
    assert queries["text"][queries["id"].index("10020#0")] == "Odun wo ni wọn ṣe idije Olympiiki akọkọ?"
    documents = parquet_rows(home, "miracl__yo__dev", "documents")
    assert len(documents["id"]) == len(docs) == 944
    at = documents["id"].index("10020#1")
    assert (documents["title"][at], documents["text"][at]) == (YORUBA_TITLE, topics["10020#0"])
    judgments = parquet_rows(home, "miracl__yo__dev", "judgments")
    assert len(judgments["query_id"]) == 1188 and sorted(set(judgments["relevance"])) == [0, 1]
    assert ("10020#0", "10020#0", 0) in set(zip(judgments["query_id"], judgments["doc_id"], judgments["relevance"]))


def test_the_shipped_miracl_counts_reject_a_corpus_that_is_not_the_official_one(small_home):
    root, env, _, docs, _ = small_home
    done = run_cli("run", str(REPO / "suites" / "miracl.yaml"), "-d", "yo", "-r", "bm25",
                   "--results", str(root / "rejected"), env=env)
    assert done.returncode == 2
    assert ("dataset 'yo' of suite 'miracl': the suite expects 49043 documents but ir_datasets 'miracl/yo/dev' "
            f"gave {len(docs)} (as read, before the checks drop anything)") in " ".join(done.stderr.split())
    assert not (root / "rejected").exists()


def test_arguana_from_beirs_zip_layout_drops_each_query_from_its_own_ranking(small_home):
    _, env, _, _, records = small_home
    # Each query's counter-argument shares its topic words; the query itself matches them all.
    assert records["arguana"].metrics["mrr@10"] == 1.0 and records["arguana"].metrics["ndcg@10"] == 1.0
    assert records["arguana-with-self"].metrics["mrr@10"] == 0.5
    assert records["arguana-with-self"].metrics["ndcg@10"] == pytest.approx(1 / 1.584962500721156, abs=1e-12)
    assert records["arguana"].protocol["remove_self_matches"] is True
    assert records["arguana"].n_queries == 3
    documents = parquet_rows(Path(env["HARNESS_HOME"]), "beir__arguana", "documents")
    at = documents["id"].index("test-law-jury-pro02b")
    assert (documents["title"][at], documents["text"][at]) == ("jury", ARGUMENTS["test-law-jury-pro02b"])


# --- Absent data: fail at once, naming IR_DATASETS_HOME, the file, its md5 and its address.

def test_absent_data_fails_fast_naming_the_file_to_put_in_place_and_writes_nothing(tmp_path):
    home = tmp_path / "empty"
    env = {"IR_DATASETS_HOME": str(home), "HARNESS_HOME": str(tmp_path / "harness"), **NO_NETWORK}
    result = run_cli("run", str(REPO / "suites" / "beir.yaml"), "-d", "nfcorpus", "-r", "bm25",
                     "--results", str(tmp_path / "results"), env=env)
    message = " ".join(result.stderr.split())
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert ("The data of 'beir/nfcorpus/test' (dataset 'nfcorpus' of suite 'beir') is not in the ir_datasets "
            "cache and could not be downloaded") in message
    assert f"ir_datasets reads IR_DATASETS_HOME, now {home}." in message
    assert (f"{home / 'beir' / 'nfcorpus' / 'source.zip'} (md5 a89dba18a62ef92f7d323ec890a0d38d, from "
            "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/nfcorpus.zip)") in message
    assert not (tmp_path / "results").exists()
    assert not list((tmp_path / "harness").rglob("manifest.json"))
    # ir_datasets never started: no half-built document store left behind
    assert not (home / "beir" / "nfcorpus" / "docs.pklz4").exists()


def test_an_unreachable_server_stops_the_read_before_ir_datasets_retries(offline, monkeypatch):
    import requests

    files = irds.source_files("beir/nfcorpus/test")
    assert [(f.path.parts[-3:], f.md5) for f in files] == [(("beir", "nfcorpus", "source.zip"),
                                                             "a89dba18a62ef92f7d323ec890a0d38d")]
    probed = []

    def unreachable(url, **kwargs):
        probed.append((url, kwargs["timeout"]))
        raise requests.ConnectTimeout("no route to host")

    class NotToBeRead:
        def docs_iter(self):
            raise AssertionError("ir_datasets was asked to download")

    monkeypatch.setattr(requests, "head", unreachable)
    monkeypatch.setattr(irds, "_load", lambda *a: NotToBeRead())
    with pytest.raises(DataUnavailableError, match=r"could not be downloaded \(ConnectTimeout: no route to host\)"):
        irds.read("beir/nfcorpus/test", "dataset 'nfcorpus' of suite 'beir'")
    assert probed == [("https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/nfcorpus.zip", 5.0)]


def test_files_are_those_of_the_exact_dataset_not_of_its_siblings(offline):
    touche = irds.source_files("beir/webis-touche2020/v2")
    assert [f.md5 for f in touche] == ["46f650ba5a527fc69e0a6521c5a23563"]  # v2's zip, not v1's
    yoruba = irds.source_files("miracl/yo/dev")
    assert sorted(f.path.name for f in yoruba) == ["docs-1.jsonl.gz", "qrels.tsv", "topics.tsv"]  # no test-b topics
    assert all(f.path.parent.parent.name in ("yo", "v1.0") for f in yoruba)
    assert hashlib.md5((MIRACL_REFERENCE / "qrels.miracl-v1.0-yo-dev.tsv").read_bytes()).hexdigest() in {
        f.md5 for f in yoruba}
