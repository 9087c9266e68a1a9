"""Datasets listed as unavailable, groups, and what `expected` compares: the suite-level fields."""

from __future__ import annotations

import hashlib
import logging

import pytest

from harness.data.load import _check_expected, load_dataset
from harness.data.sources import RawData
from harness.errors import DataError, DataUnavailableError, SuiteError
from harness.hashing import canonical_json
from harness.pipeline import plan
from harness.suite import load_suite
from harness.suite_schema import Expected
from tests.conftest import REPO, run_cli
from tests.helpers import make_card

BEIR_PATH = REPO / "suites" / "beir.yaml"
BIOASQ_REASON = ("not redistributable: the corpus is BioASQ Task 9a's PubMed abstracts, which need a BioASQ "
                 "account, built with BEIR's own script; ir_datasets has no id for it")


def test_an_unavailable_dataset_is_refused_by_name_with_its_reason():
    suite = load_suite(BEIR_PATH)
    assert suite.dataset("bioasq").unavailable == BIOASQ_REASON
    with pytest.raises(DataUnavailableError) as e:
        plan(suite, ["scifact", "bioasq"], ["bm25"])
    assert str(e.value) == (f"Dataset 'bioasq' of suite 'beir' ({BEIR_PATH}) is listed but cannot be run: "
                            f"{BIOASQ_REASON}. `harness list` shows the datasets that can.")
    with pytest.raises(DataUnavailableError, match=r"^Dataset 'robust04' of suite 'beir' is listed but cannot be run: "
                                                   r"not redistributable: TREC disks 4 and 5"):
        load_dataset(suite.dataset("robust04"), "beir")


def test_the_whole_suite_runs_without_its_unavailable_datasets_and_says_so(caplog):
    suite = load_suite(BEIR_PATH)
    with caplog.at_level(logging.WARNING, logger="harness.pipeline"):
        units = plan(suite, retriever_names=["bm25"])
    assert [u.dataset for u in units] == [n for n in suite.datasets if n not in
                                          ("bioasq", "signal1m", "trec-news", "robust04")]
    assert len(units) == 26
    assert ("suite beir: skipping 4 unavailable datasets (bioasq, signal1m, trec-news, robust04); "
            "`harness list` says why") in caplog.messages


def test_cli_run_of_an_unavailable_dataset_exits_2_and_writes_nothing(tmp_path):
    result = run_cli("run", str(BEIR_PATH), "-d", "trec-news", "-r", "bm25", "--results", str(tmp_path / "results"))
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert "Dataset 'trec-news' of suite 'beir'" in message
    assert "is listed but cannot be run: not redistributable: the Washington Post collection" in message
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "results").exists()


def test_a_dataset_needs_a_source_or_a_reason(tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_text("name: x\ndefaults: {language: en, split: test}\ndatasets:\n  d: {group: g}\n"
                    "  e: {unavailable: licensed corpus}\n")
    with pytest.raises(SuiteError) as e:
        load_suite(path)
    assert str(e.value) == (f"{path}:4: field `datasets.d`: `source` is required (or `unavailable: <reason>` "
                            "for a dataset that cannot be had).")
    path.write_text("name: x\ndefaults: {language: en, split: test}\ndatasets:\n  e: {unavailable: ''}\n")
    with pytest.raises(SuiteError, match=r"field `datasets.e.unavailable`: String should have at least 1 character"):
        load_suite(path)


def test_group_is_a_label_the_protocol_hash_leaves_out():
    grouped = make_card("cqadupstack-gis", group="cqadupstack")
    plain = make_card("cqadupstack-gis")
    assert grouped.to_dict()["group"] == "cqadupstack" and plain.to_dict()["group"] is None
    assert (grouped.protocol_hash, grouped.card_hash) == (plain.protocol_hash, plain.card_hash)
    # A card stored before `group` existed reads back with the same hashes.
    legacy = {k: v for k, v in plain.to_dict().items() if k != "group"}
    assert type(plain).model_validate(legacy).protocol_hash == plain.protocol_hash
    # The hash is that of everything but the labels and the system section, computed here directly.
    hashed = {k: v for k, v in grouped.to_dict().items() if k not in ("suite", "dataset", "group", "in_average", "system")}
    assert grouped.protocol_hash == hashlib.sha256(canonical_json(hashed).encode()).hexdigest()


def spec_expecting(**expected):
    spec = load_suite(BEIR_PATH).dataset("scifact")
    return spec.model_copy(update={"expected": spec.expected.model_copy(update=expected)})


RAW = RawData(
    documents=[("d1", "", "one"), ("d2", "", "   "), ("d3", "t", "three")],  # d2 is empty: the checks count it
    queries=[("q1", "first"), ("q2", "second")],
    judgments=[("q1", "d1", 1), ("q1", "d2", 0), ("q2", "d3", 2), ("q9", "d1", 1)],  # q9: unknown query
)


def test_expected_counts_are_the_sources_own_before_the_checks_drop_anything():
    _check_expected(spec_expecting(documents=3, queries=2, judgments=4, grades=[0, 1, 2]), RAW, "dataset 'x'")
    with pytest.raises(DataError) as e:
        _check_expected(spec_expecting(documents=2, queries=2, judgments=4, grades=None), RAW, "dataset 'x'")
    assert str(e.value) == (
        "dataset 'x': the suite expects 2 documents but ir_datasets 'beir/scifact/test' gave 3 (as read, before the "
        "checks drop anything). The data or the suite's `expected` counts are wrong: compare with the dataset's "
        "official files before trusting any score on it.")


def test_expected_grades_must_be_exactly_those_the_judgments_use():
    with pytest.raises(DataError) as e:
        _check_expected(spec_expecting(documents=3, queries=2, judgments=4, grades=[1, 2]), RAW, "dataset 'x'")
    assert str(e.value).startswith("dataset 'x': the suite expects relevance grades [1, 2] but the judgments of "
                                   "ir_datasets 'beir/scifact/test' use [0, 1, 2].")
    # a suite may list them in any order; they are compared as a set
    assert Expected.model_validate({"grades": [2, 0, 1, 1]}).grades == [0, 1, 2]


def test_list_shows_groups_languages_and_why_a_dataset_is_unavailable():
    result = run_cli("list")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert ("suite beir (suites/beir.yaml): 26 datasets, 4 unavailable, group cqadupstack of 12; lang en; "
            "mode full; main metric ndcg@10") in out
    assert f"  bioasq is unavailable: {BIOASQ_REASON}" in " ".join(out.split("\n"))
    assert "suite miracl (suites/miracl.yaml): 18 datasets; split dev; mode full; main metric ndcg@10" in out

    def rows(suite: str) -> dict[str, list[str]]:
        section = out.split(f"suite {suite} (")[1].split("\nsuite ")[0]
        return {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
                for line in section.splitlines() if line.startswith("│")}

    beir, miracl = rows("beir"), rows("miracl")
    assert len(beir) == 30 and len(miracl) == 18
    assert beir["cqadupstack-gis"] == ["ir_datasets:beir/cqadupstack/gis", "test", "cqadupstack"]
    assert beir["msmarco"] == ["ir_datasets:beir/msmarco/dev", "dev", ""]
    assert beir["robust04"] == ["unavailable, see below", "test", ""]
    assert miracl["yo"] == ["ir_datasets:miracl/yo/dev", "yo"]
