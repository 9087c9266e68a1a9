import pytest
from pydantic import ValidationError

from harness.data.checks import check
from harness.data.sources import RawData
from harness.errors import DataError
from harness.suite_schema import Checks


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


def test_empty_documents_are_kept_by_default_and_counted():
    data = raw(documents=[("d1", "T", "one"), ("d2", " ", "  "), ("d3", "", "three")])
    corpus, queries, qrels, report = check(data, Checks(), "x")
    assert corpus.ids == ["d1", "d2", "d3"] and corpus.texts[1] == "  "  # a model sees its empty text
    assert queries.ids == ["q1", "q2"]
    assert qrels.to_dict() == {"q1": {"d1": 1, "d3": 0}, "q2": {"d2": 2}}
    assert report.kept == {"empty_documents": 1} and report.examples["empty_documents"] == ["d2"]
    assert report.dropped == {"queries_without_judgments": 1}


def test_empty_documents_dropped_when_asked_keep_their_judgments_counted():
    data = raw(documents=[("d1", "T", "one"), ("d2", " ", "  "), ("d3", "", "three")])
    corpus, queries, qrels, report = check(data, Checks(empty_documents="drop"), "x")
    assert corpus.ids == ["d1", "d3"]
    # The judgment of d2 stays in the ideal ranking, so q2 is still evaluated (it scores 0).
    assert qrels.to_dict() == {"q1": {"d1": 1, "d3": 0}, "q2": {"d2": 2}}
    assert queries.ids == ["q1", "q2"]
    assert report.dropped == {"empty_documents": 1, "queries_without_judgments": 1}
    assert report.kept == {"judgments_absent_document": 1}
    assert report.examples["judgments_absent_document"] == ["q2/d2"]


def test_empty_documents_error_when_asked():
    data = raw(documents=[("d1", "T", "one"), ("d2", " ", "  ")])
    with pytest.raises(DataError) as e:
        check(data, Checks(empty_documents="error"), "x")
    assert str(e.value) == ("x: 1 documents with empty title and text: 'd2'. Set `checks.empty_documents: keep` in "
                            "the suite to search them as empty texts, as BEIR does, and count them instead.")


def test_empty_query_is_an_error_by_default():
    with pytest.raises(DataError, match=r"x: 1 empty queries: 'q2'\."):
        check(raw(queries=[("q1", "a"), ("q2", " ")]), Checks(), "x")


def test_judgments_naming_documents_absent_from_the_corpus_stay_in_the_qrels_counted():
    data = raw(judgments=[("q1", "d1", 1), ("q1", "nope", 1), ("q2", "gone", 2), ("q9", "d1", 1)])
    _, queries, qrels, report = check(data, Checks(), "x")
    # q2 judges only a document the corpus lacks: it stays, and is evaluated as trec_eval would.
    assert qrels.to_dict() == {"q1": {"d1": 1, "nope": 1}, "q2": {"gone": 2}}
    assert queries.ids == ["q1", "q2"]
    assert report.kept == {"judgments_absent_document": 2}
    assert report.examples["judgments_absent_document"] == ["q1/nope", "q2/gone"]
    # A query with no text cannot be in any run: its judgments are left out, and counted.
    assert report.dropped == {"judgments_unknown_query": 1, "queries_without_judgments": 1}
    assert report.examples["judgments_unknown_query"] == ["q9"]


def test_unknown_judgments_error_when_asked():
    data = raw(judgments=[("q1", "d1", 1), ("q1", "nope", 1)])
    with pytest.raises(DataError) as e:
        check(data, Checks(unknown_judgments="error"), "x")
    assert str(e.value).startswith("x: 1 judgments (query/document) naming documents not in the corpus (absent from "
                                   "the source or dropped by the checks): 'q1/nope'. Set `checks.unknown_judgments: keep`")
    with pytest.raises(DataError, match=r"x: 1 judged query ids with no query text: 'q9'\."):
        check(raw(judgments=[("q1", "d1", 1), ("q9", "d1", 1)]), Checks(unknown_judgments="error"), "x")


def test_policies_that_do_not_apply_are_refused():
    with pytest.raises(ValidationError, match="`keep` does not apply to duplicate_ids: give `error` or `drop`"):
        Checks(duplicate_ids="keep")
    with pytest.raises(ValidationError, match="`keep` does not apply to empty_queries"):
        Checks(empty_queries="keep")
    with pytest.raises(ValidationError, match="judgments naming documents absent from the corpus are not dropped"):
        Checks(unknown_judgments="drop")


def test_judgments_with_grades_out_of_range_or_contradicting_each_other_are_refused_by_id():
    def load(judgments):
        raw = RawData(documents=[("d1", "", "a"), ("d2", "", "b")], queries=[("q1", "x")], judgments=judgments)
        return check(raw, Checks(), "dataset 'toy'")

    for bad in (-1, 1.5, 101, "high"):
        with pytest.raises(DataError, match=rf"dataset 'toy': query 'q1', document 'd1' has the relevance {bad!r}; "
                                            r"grades are whole numbers from 0 \(judged non-relevant\) to 100\."):
            load([("q1", "d1", bad)])
    with pytest.raises(DataError, match=r"query 'q1', document 'd2' is judged both 1 and 0\. The judgments contradict"):
        load([("q1", "d2", 1), ("q1", "d1", 2), ("q1", "d2", 0)])
    # An identical repeat counts once; 2.0 is the grade 2.
    _, _, qrels, _ = load([("q1", "d1", 2), ("q1", "d1", 2.0), ("q1", "d2", 0)])
    assert qrels.to_dict() == {"q1": {"d1": 2, "d2": 0}} and qrels.n_judgments == 2
