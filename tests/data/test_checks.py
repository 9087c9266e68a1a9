import pytest

from harness.data.checks import check
from harness.data.sources import RawData
from harness.errors import DataError
from harness.suite import Checks


def raw(**changes) -> RawData:
    fields = dict(
        documents=[("d1", "T1", "one"), ("d2", "", "two"), ("d3", "", "three")],
        queries=[("q1", "first"), ("q2", "second"), ("q3", "unjudged")],
        judgments=[("q1", "d1", 1), ("q1", "d3", 0), ("q2", "d2", 2)],
    )
    fields.update(changes)
    return RawData(**fields)


def test_clean_data_passes_and_unjudged_queries_are_counted():
    corpus, queries, qrels, report = check(raw(), Checks(), "dataset 'x'")
    assert corpus.ids == ["d1", "d2", "d3"]
    assert queries.ids == ["q1", "q2"]
    assert qrels.to_dict() == {"q1": {"d1": 1, "d3": 0}, "q2": {"d2": 2}}
    assert report.dropped == {"queries_without_judgments": 1}


def test_duplicate_document_ids_error_names_them():
    data = raw(documents=[("d1", "", "a"), ("d1", "", "b"), ("d2", "", "c")])
    with pytest.raises(DataError) as e:
        check(data, Checks(), "dataset 'x' of suite 's'")
    assert str(e.value).startswith("dataset 'x' of suite 's': 1 duplicate document ids: 'd1'.")
    assert "checks.duplicate_ids: drop" in str(e.value)


def test_duplicate_ids_dropped_keep_first_and_count():
    data = raw(documents=[("d1", "", "first"), ("d1", "", "second"), ("d2", "", "c"), ("d3", "", "x")])
    corpus, _, _, report = check(data, Checks(duplicate_ids="drop"), "x")
    assert corpus.texts[:2] == ["first", "c"]
    assert report.dropped["duplicate_document_ids"] == 1


def test_empty_documents_dropped_with_their_judgments_counted():
    data = raw(documents=[("d1", "T", "one"), ("d2", " ", "  "), ("d3", "", "three")])
    corpus, _, qrels, report = check(data, Checks(), "x")
    assert corpus.ids == ["d1", "d3"]
    assert report.dropped == {"empty_documents": 1, "judgments_unknown_document": 1, "queries_without_judgments": 2}
    assert report.examples["judgments_unknown_document"] == ["q2/d2"]
    assert "q2" not in qrels


def test_empty_query_is_an_error_by_default():
    with pytest.raises(DataError, match=r"x: 1 empty queries: 'q2'\."):
        check(raw(queries=[("q1", "a"), ("q2", " ")]), Checks(), "x")


def test_judgments_naming_unknown_documents_error_when_asked():
    data = raw(judgments=[("q1", "d1", 1), ("q1", "nope", 1), ("q9", "d1", 1)])
    with pytest.raises(DataError) as e:
        check(data, Checks(unknown_judgments="error"), "x")
    assert "1 judged query ids with no query text: 'q9'" in str(e.value)
    _, _, qrels, report = check(data, Checks(), "x")
    assert qrels.to_dict() == {"q1": {"d1": 1}}
    assert report.dropped["judgments_unknown_query"] == 1
    assert report.dropped["judgments_unknown_document"] == 1
