from pathlib import Path

import pytest

from harness.errors import SuiteError, UnknownNameError
from harness.suite import load_suite
from harness.suite_schema import Policy
from tests.conftest import SCIFACT_SUITE

GOOD = """\
name: demo
defaults:
  language: en
  split: test
  metrics: [ndcg@10, recall@100]
datasets:
  scifact:
    source: {kind: ir_datasets, id: beir/scifact/test}
    max_length: {query: 32, document: 300}
  arguana:
    source: {kind: ir_datasets, id: beir/arguana}
    remove_self_matches: true
    main_metric: recall@100
retrievers:
  bm25: {class: bm25, params: {k1: 1.2}}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return path


def test_shipped_beir_suite_loads_with_scifact_protocol():
    suite = load_suite(SCIFACT_SUITE)
    spec = suite.dataset("scifact")
    assert suite.name == "beir"
    assert spec.source.id == "beir/scifact/test"
    assert spec.metrics == ["ndcg@10", "recall@100", "recall@1000", "mrr@10", "map@100"]
    assert spec.main_metric == "ndcg@10"
    assert spec.text.document_fields == ["title", "text"]
    assert (spec.max_length.query, spec.max_length.document) == (32, 300)
    assert spec.expected.judgments == 339
    assert suite.retriever("bm25").params == {"k1": 0.9, "b": 0.4, "stemmer": "porter", "stopwords": "en"}


def test_defaults_merge_and_entry_overrides(tmp_path):
    suite = load_suite(write(tmp_path, GOOD))
    assert suite.dataset("scifact").main_metric == "ndcg@10"
    assert suite.dataset("arguana").main_metric == "recall@100"
    assert suite.dataset("arguana").remove_self_matches is True
    assert suite.dataset("scifact").checks.empty_queries is Policy.error
    # a retriever the suite does not configure means the registered one with defaults
    assert suite.retriever("other").class_ == "other" and suite.retriever("other").params == {}


def test_yaml_syntax_error_names_file_line_and_column(tmp_path):
    path = write(tmp_path, GOOD.replace("  scifact:\n", "  scifact:\n   bad: [\n"))
    with pytest.raises(SuiteError) as e:
        load_suite(path)
    assert str(e.value).startswith(f"{path}:")
    assert "not a valid suite file" in str(e.value)


def test_unknown_field_names_line_and_field(tmp_path):
    path = write(tmp_path, GOOD.replace("    remove_self_matches: true", "    remove_self_match: true"))
    with pytest.raises(SuiteError) as e:
        load_suite(path)
    assert str(e.value) == (f"{path}:12: field `datasets.arguana.remove_self_match`: unknown field (a typo?). "
                            "See the dataset fields in README.md.")


def test_an_unknown_retriever_field_points_to_the_retriever_fields(tmp_path):
    path = write(tmp_path, GOOD.replace("{class: bm25, params: {k1: 1.2}}", "{class: bm25, param: {k1: 1.2}}"))
    with pytest.raises(SuiteError) as e:
        load_suite(path)
    assert str(e.value) == (f"{path}:15: field `retrievers.bm25.param`: unknown field (a typo?). "
                            "A retriever takes `class`, `params` and `sweep`: see \"Retrievers\" in README.md.")


def test_wrong_type_in_nested_field_names_its_line(tmp_path):
    path = write(tmp_path, GOOD.replace("{query: 32, document: 300}", "{query: 32, document: -5}"))
    with pytest.raises(SuiteError) as e:
        load_suite(path)
    assert f"{path}:9: field `datasets.scifact.max_length.document`: Input should be greater than 0" in str(e.value)


def test_main_metric_must_be_among_metrics(tmp_path):
    path = write(tmp_path, GOOD.replace("main_metric: recall@100", "main_metric: map@100"))
    with pytest.raises(SuiteError, match=r"suite.yaml:10: field `datasets.arguana`: main_metric 'map@100' is not one of metrics"):
        load_suite(path)


def test_check_policies_default_to_keeping_and_a_judgment_drop_is_refused(tmp_path):
    checks = load_suite(write(tmp_path, GOOD)).dataset("scifact").checks
    assert (checks.empty_documents, checks.unknown_judgments) == (Policy.keep, Policy.keep)
    path = write(tmp_path, GOOD.replace("    remove_self_matches: true",
                                        "    remove_self_matches: true\n    checks: {unknown_judgments: drop}"))
    with pytest.raises(SuiteError) as e:
        load_suite(path)
    assert str(e.value).startswith(f"{path}:13: field `datasets.arguana.checks.unknown_judgments`: judgments naming "
                                   "documents absent from the corpus are not dropped: trec_eval and BEIR keep them")


def test_unknown_metric_in_defaults_points_at_defaults(tmp_path):
    path = write(tmp_path, GOOD.replace("[ndcg@10, recall@100]", "[ndcg@10, recal@100]"))
    with pytest.raises(SuiteError) as e:
        load_suite(path)
    assert f"{path}:5: field `defaults.metrics`: Unknown metric 'recal@100'" in str(e.value)


def test_duplicate_dataset_names_are_an_error(tmp_path):
    path = write(tmp_path, GOOD.replace("retrievers:", "  scifact:\n    source: {kind: ir_datasets, id: x}\nretrievers:"))
    with pytest.raises(SuiteError, match=r"suite.yaml:14:3: not a valid suite file: duplicate key 'scifact' \(first defined on line 7\)"):
        load_suite(path)


def test_unknown_source_kind_and_missing_fields(tmp_path):
    path = write(tmp_path, GOOD.replace("{kind: ir_datasets, id: beir/scifact/test}", "{kind: ftp, id: x}"))
    with pytest.raises(SuiteError, match=r"field `datasets.scifact.source`: `kind` is missing or unknown: a source's "
                                         r"kind is one of ir_datasets, huggingface, local, mteb\."):
        load_suite(path)
    path = write(tmp_path, "name: x\ndatasets:\n  d: {source: {kind: ir_datasets, id: a}}\n")
    with pytest.raises(SuiteError) as e:
        load_suite(path)
    assert "field `datasets.d.language`: required field is missing." in str(e.value)
    assert "field `datasets.d.split`: required field is missing." in str(e.value)


def test_rerank_needs_candidates(tmp_path):
    path = write(tmp_path, GOOD.replace("    remove_self_matches: true", "    mode: rerank"))
    with pytest.raises(SuiteError, match="mode: rerank needs `candidates`"):
        load_suite(path)


def test_unknown_dataset_lists_the_known_ones(tmp_path):
    suite = load_suite(write(tmp_path, GOOD))
    with pytest.raises(UnknownNameError) as e:
        suite.dataset("scifacts")
    assert "has no dataset 'scifacts'. Its datasets are: scifact, arguana." in str(e.value)


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(SuiteError, match="does not exist"):
        load_suite(tmp_path / "nope.yaml")
    with pytest.raises(SuiteError, match="a suite file is a YAML mapping"):
        load_suite(write(tmp_path, "- just\n- a list\n"))
