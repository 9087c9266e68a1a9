"""Significance marks against a baseline row: paired randomization test per cell, Holm per table,
on per-query scores read back from result folders written through the real ResultStore."""

import pytest

from harness.errors import HarnessError
from harness.report import AVG, build_tables, to_markdown, write_reports
from harness.report.marks import BETTER, WORSE, mark_significance, paired_scores
from harness.results import ResultStore, load_per_query
from harness.report.tables import result_id

from tests.report.builders import store_result

BASE = [0.2 + 0.05 * i for i in range(10)]  # ten queries
# Ten differences, eight of +0.1 and two negative: the exact two-sided randomization p is 40/1024.
WEAK = [0.1] * 8 + [-0.05, -0.1]


def shifted(deltas):
    return [b + d for b, d in zip(BASE, deltas)]


def loader(root):
    folders = {result_id(r): f for f, r in ResultStore(root).records()}
    return lambda rid: load_per_query(folders[rid])


def tables_of(root, baseline="bm25"):
    tables = build_tables([r for _, r in ResultStore(root).records()])
    mark_significance(tables, baseline, loader(root))
    return {t.title: t for t in tables}


def test_holm_removes_a_mark_that_the_raw_p_would_give_and_keeps_the_strong_ones(tmp_path):
    # Suite "sig": four comparisons against bm25 on one dataset.
    for name, deltas in [("bm25", [0] * 10), ("strong", [0.1] * 10), ("weak", WEAK), ("worse", [-0.1] * 10),
                         ("noise", [0.1, -0.1] * 5)]:
        store_result(tmp_path, name, "d1", shifted(deltas), suite="sig")
    # Suite "alone": the same weak system is the only comparison, so Holm changes nothing.
    for name, deltas in [("bm25", [0] * 10), ("weak", WEAK)]:
        store_result(tmp_path, name, "d1", shifted(deltas), suite="alone")
    tables = tables_of(tmp_path)
    sig = tables["sig"].significance
    # All sign assignments are enumerated (2^10 < 10,000): exact p-values.
    assert sig.p_raw[("weak", "d1")] == pytest.approx(40 / 1024)
    assert sig.p_raw[("strong", "d1")] == pytest.approx(2 / 1024)
    assert sig.p_raw[("noise", "d1")] == pytest.approx(1.0)
    # Holm: 2/1024 x 4, then max(that, 2/1024 x 3), then 40/1024 x 2 = 0.078 > 0.05.
    assert sig.p_adjusted[("strong", "d1")] == pytest.approx(8 / 1024)
    assert sig.p_adjusted[("worse", "d1")] == pytest.approx(8 / 1024)
    assert sig.p_adjusted[("weak", "d1")] == pytest.approx(80 / 1024)
    assert sig.marks == {("strong", "d1"): BETTER, ("worse", "d1"): WORSE}
    assert len(sig.p_raw) == 4  # one column: the average is that column, not tested twice
    md = to_markdown(tables["sig"])
    assert "| strong | **52.5▲** | **52.5** |" in md
    assert "| weak | <ins>49.0</ins> | <ins>49.0</ins> |" in md  # raw p = 0.039, adjusted 0.078: no mark
    assert "| worse | 32.5▼ | 32.5 |" in md
    assert "Holm correction over this table's 4 comparisons" in tables["sig"].caption()
    alone = tables["alone"].significance
    assert alone.p_adjusted[("weak", "d1")] == pytest.approx(40 / 1024)
    assert alone.marks == {("weak", "d1"): BETTER}


def test_pooled_scores_of_a_group_and_the_average_are_weighted_as_the_table_averages(tmp_path):
    # A forum of 4 queries and one of 2; the group's mean is the mean of the forum means.
    for name, shift in [("bm25", 0.0), ("colbert", 0.1)]:
        store_result(tmp_path, name, "cqa-a", [0.1 + shift, 0.2 + shift, 0.3 + shift, 0.4 + shift], group="cqa")
        store_result(tmp_path, name, "cqa-b", [0.8 + shift, 0.9 + shift], group="cqa")
        store_result(tmp_path, name, "scifact", [0.5 + shift] * 3)
    main = build_tables([r for _, r in ResultStore(tmp_path).records()])[0]
    scores = loader(tmp_path)
    for column in ("cqa", "scifact", AVG):
        baseline, candidate = paired_scores(main, "colbert", "bm25", column, scores)
        assert baseline.mean() == pytest.approx(main.value("bm25", column))
        assert candidate.mean() == pytest.approx(main.value("colbert", column))
    assert main.value("bm25", "cqa") == pytest.approx((0.25 + 0.85) / 2)  # not the pooled 0.45
    assert len(paired_scores(main, "colbert", "bm25", AVG, scores)[0]) == 9


def test_a_baseline_no_table_has_is_an_error_naming_the_rows(tmp_path):
    store_result(tmp_path, "bm25", "d1", BASE)
    with pytest.raises(HarnessError, match="No table has a row 'splade' to use as --baseline; the rows are: bm25"):
        write_reports(tmp_path, tmp_path / "out", ["markdown"], baseline="splade")


def test_a_table_without_the_baseline_says_so_and_marks_nothing(tmp_path):
    store_result(tmp_path, "bm25", "d1", BASE, suite="one")
    store_result(tmp_path, "colbert", "d1", shifted([0.1] * 10), suite="two")
    store_result(tmp_path, "dense", "d1", shifted([0.2] * 10), suite="two")
    tables = tables_of(tmp_path)
    assert tables["two"].significance.marks == {}
    assert "No significance marks: bm25 has no results in this table." in tables["two"].caption()


def test_bare_name_finds_its_configuration_row_and_refuses_when_ambiguous(tmp_path):
    store_result(tmp_path, "bm25", "d1", BASE, params={"k1": 0.9})
    store_result(tmp_path, "colbert", "d1", shifted([0.1] * 10))
    (table,) = build_tables([r for _, r in ResultStore(tmp_path).records()])
    mark_significance([table], "bm25", loader(tmp_path))
    assert table.significance.baseline == "bm25" and table.significance.marks == {("colbert", "d1"): BETTER}
    store_result(tmp_path, "bm25", "d1", shifted([0.01] * 10), params={"k1": 1.2})
    (table,) = build_tables([r for _, r in ResultStore(tmp_path).records()])
    with pytest.raises(HarnessError, match=r"Baseline 'bm25' is ambiguous in table beir: it matches rows bm25 \["):
        mark_significance([table], "bm25", loader(tmp_path))
