"""The real ir_datasets code path, fed from the seeded SciFact cache."""

import json
from importlib import metadata

import pytest

from harness.data import store
from harness.data.load import load_dataset
from harness.data.sources import irds
from harness.errors import CorruptFileError, DataError, UnknownNameError
from harness.suite import load_suite

from tests.conftest import SCIFACT_SUITE


def scifact_spec(**changes):
    spec = load_suite(SCIFACT_SUITE).dataset("scifact")
    return spec.model_copy(update=changes)


def test_scifact_loads_through_ir_datasets_with_official_counts(offline):
    dataset = load_dataset(scifact_spec(), "beir")
    assert len(dataset.corpus) == 5183
    assert len(dataset.queries) == 300
    assert dataset.qrels.n_judgments == 339
    assert dataset.qrels.grades() == {1}
    assert dataset.report.dropped == {}
    # The files read, not the library that read them (that is in the result's environment).
    assert dataset.revision == {"files_md5": ["5f7d1de60b170fc8027bb7898e2efca1"]}
    first = dataset.corpus.ids.index("4983")
    assert dataset.corpus.titles[first].startswith("Microstructural development of human newborn")
    joined = dataset.corpus.joined(["title", "text"], " ")[first]
    assert joined.startswith("Microstructural development") and " Alterations of the architecture" in joined
    assert dataset.queries.texts[dataset.queries.ids.index("1")] == "0-dimensional biomaterials show inductive properties."


def test_second_load_reads_the_parquet_cache_not_ir_datasets(offline, monkeypatch):
    load_dataset(scifact_spec(), "beir")
    entry = store.entry_dir("ir_datasets", "beir/scifact/test", irds.revision("beir/scifact/test"))
    assert (entry / "manifest.json").is_file()
    monkeypatch.setattr(irds, "read", lambda *a: pytest.fail("ir_datasets was read again"))
    assert len(load_dataset(scifact_spec(), "beir").corpus) == 5183


def test_an_ir_datasets_upgrade_reads_the_files_again_under_the_same_revision(offline, tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    before = load_dataset(scifact_spec(), "beir")
    entry = store.entry_dir("ir_datasets", "beir/scifact/test", before.revision)
    installed = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: "99.0" if name == "ir_datasets" else installed(name))
    after = load_dataset(scifact_spec(), "beir")
    assert after.revision == before.revision and after.corpus.ids == before.corpus.ids
    # Its parser may read the files otherwise: the Parquet cache keeps an entry per release.
    upgraded = store.entry_dir("ir_datasets", "beir/scifact/test", before.revision)
    assert upgraded != entry and sorted(p.name for p in entry.parent.iterdir()) == sorted([entry.name, upgraded.name])
    assert json.loads((upgraded / "manifest.json").read_text())["parsed_by"] == {"ir_datasets": "99.0"}
    assert json.loads((entry / "manifest.json").read_text())["parsed_by"] == {"ir_datasets": installed("ir_datasets")}


def test_half_written_cache_entry_is_ignored_and_rebuilt(offline, tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    entry = store.entry_dir("ir_datasets", "beir/scifact/test", irds.revision("beir/scifact/test"))
    entry.mkdir(parents=True)
    (entry / "documents.parquet").write_bytes(b"truncated")  # no manifest: an interrupted write
    with pytest.raises(CorruptFileError, match=r"manifest\.json is missing"):
        store.read(entry)
    assert len(load_dataset(scifact_spec(), "beir").corpus) == 5183
    assert (entry / "manifest.json").is_file()
    assert len(store.read(entry).documents) == 5183
    assert [p.name for p in entry.parent.iterdir()] == [entry.name]  # no temporary folder left


def test_expected_counts_must_match(offline):
    spec = scifact_spec(expected=scifact_spec().expected.model_copy(update={"judgments": 340}))
    with pytest.raises(DataError, match=r"the suite expects 340 judgments but ir_datasets 'beir/scifact/test' gave 339"):
        load_dataset(spec, "beir")


def test_unknown_ir_datasets_id_suggests_close_ids(offline):
    spec = scifact_spec(source=scifact_spec().source.model_copy(update={"id": "beir/scifakt/test"}))
    with pytest.raises(UnknownNameError, match=r"ir_datasets has no dataset 'beir/scifakt/test' \(dataset 'scifact' of suite 'beir'\)\. Did you mean beir/scifact/test"):
        load_dataset(spec, "beir")


def test_sample_keeps_judged_documents_and_is_seeded(offline):
    from harness.suite_schema import Sample

    full = load_dataset(scifact_spec(), "beir")
    small = load_dataset(scifact_spec(sample=Sample(queries=10, documents=200, seed=1)), "beir")
    again = load_dataset(scifact_spec(sample=Sample(queries=10, documents=200, seed=1)), "beir")
    other = load_dataset(scifact_spec(sample=Sample(queries=10, documents=200, seed=2)), "beir")
    assert len(small.queries) == 10 and len(small.corpus) == 200
    assert small.queries.ids == again.queries.ids and small.corpus.ids == again.corpus.ids
    assert small.queries.ids != other.queries.ids
    judged = {d for q in small.qrels for d in small.qrels[q]}
    assert judged <= set(small.corpus.ids)
    assert set(small.qrels) == set(small.queries.ids)
    # corpus order is preserved: a subsequence of the full corpus
    positions = [full.corpus.ids.index(d) for d in small.corpus.ids]
    assert positions == sorted(positions)


def test_a_sampled_rerank_dataset_keeps_every_candidate_of_its_queries(tmp_path, monkeypatch):
    """JaCWIR (in its own hub layout): a query's candidates are its judged positive and two mined,
    unjudged negatives. A smoke run's corpus keeps all of them, so it re-ranks the real lists."""
    from harness.pipeline import Unit, execute
    from harness.runs import Run
    from harness.suite_schema import Sample
    from tests.data.sources.hubcache import offline_hub, put, suite_without_expected
    from tests.data.sources.test_huggingface import JACWIR, PAGES, jacwir_files

    hub = offline_hub(monkeypatch, tmp_path)
    # More pages in the collection than candidates, so that the sample has others to choose from.
    pages = {**PAGES, **{f"x{i}": ("天気", f"予報{i}") for i in range(20)}}
    put(hub, "hotchpotch/JaCWIR", JACWIR, jacwir_files(pages=pages))
    suite = suite_without_expected("jqara", tmp_path)
    spec = load_suite(suite).dataset("jacwir")
    for documents in (2, 6):
        small = load_dataset(spec.model_copy(update={"sample": Sample(queries=1, documents=documents)}), "jqara")
        (query,) = small.queries.ids
        assert set(small.candidates[query]) <= set(small.corpus.ids)
        assert len(small.corpus) == max(documents, 3)  # three candidates, the judged one among them
    outcome = execute(Unit(str(suite), "jacwir", "bm25", sample=(1, 2), latency_queries=0), tmp_path / "results")
    ((_, ranking),) = Run.from_trec(outcome.folder / "run.trec.gz").items()
    assert sorted(d for d, _ in ranking) == sorted(small.candidates[query])
