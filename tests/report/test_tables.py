"""Paper-style tables: best/second marks, group averages, the language matrix, the protocol caption."""

import pytest

from harness.errors import ProtocolMismatchError
from harness.report import AVG, build_tables, to_latex, to_markdown
from harness.report.html import table_html

from tests.helpers import make_card, make_record


def by_title(tables):
    return {t.title: t for t in tables}


def test_best_is_bold_second_underlined_and_ties_at_print_precision_share_the_mark():
    recs = [make_record("a", "scifact", 0.5000), make_record("b", "scifact", 0.49996),  # both print 50.0
            make_record("c", "scifact", 0.4500), make_record("d", "scifact", 0.4000)]
    (table,) = build_tables(recs)
    assert [table.rank(r, "scifact") for r in "abcd"] == [1, 1, 2, None]
    md = to_markdown(table)
    assert "| a | **50.0** | **50.0** |" in md and "| b | **50.0** | **50.0** |" in md
    assert "| c | <ins>45.0</ins> | <ins>45.0</ins> |" in md and "| d | 40.0 | 40.0 |" in md
    tex = to_latex([table])
    assert r"c & \underline{45.0} & \underline{45.0} \\" in tex and r"d & 40.0 & 40.0 \\" in tex
    page = table_html(table, "t")
    assert "<td>c</td><td><u>45.0</u></td>" in page and "<td>a</td><td><strong>50.0</strong></td>" in page


def test_rows_in_natural_order_so_dimensions_read_small_to_large():
    recs = [make_record(f"m@dim={d}", "scifact", 0.5) for d in (384, 64, 128)] + [make_record("bm25", "scifact", 0.4)]
    (table,) = build_tables(recs)
    assert table.rows == ["bm25", "m@dim=64", "m@dim=128", "m@dim=384"]


def cqa(name, forum, ndcg):
    return make_record(name, forum, ndcg, card=make_card(forum, group="cqadupstack"))


def test_a_group_is_one_column_the_mean_of_its_members_and_counts_once_in_the_average():
    recs = [make_record("bm25", "scifact", 0.60), cqa("bm25", "cqa-android", 0.20), cqa("bm25", "cqa-gis", 0.40),
            make_record("colbert", "scifact", 0.70), cqa("colbert", "cqa-android", 0.30)]  # lacks cqa-gis
    tables = by_title(build_tables(recs))
    assert list(tables) == ["beir", "beir / cqadupstack"]
    main, group = tables["beir"], tables["beir / cqadupstack"]
    assert main.columns == ["cqadupstack", "scifact"]
    assert main.cells[("bm25", "cqadupstack")] == pytest.approx(0.30)
    # Counted once: (0.30 + 0.60) / 2, not (0.20 + 0.40 + 0.60) / 3.
    assert main.average("bm25") == pytest.approx(0.45)
    assert ("colbert", "cqadupstack") not in main.cells and main.average("colbert") is None
    assert "| bm25 | **30.0** | <ins>60.0</ins> | **45.0** |" in to_markdown(main)
    assert "| colbert |  | **70.0** |  |" in to_markdown(main)
    assert "a group counts once, as the mean of its members (cqadupstack: mean of 2 datasets)" in main.caption()
    assert group.columns == ["cqa-android", "cqa-gis"]
    assert group.average("bm25") == pytest.approx(0.30) and group.average("colbert") is None
    assert group.cells[("colbert", "cqa-android")] == pytest.approx(0.30)
    # The group cell's results, weighted 1/2 each; the average's, 1/4 each (two columns).
    assert [(p.dataset, p.weight) for p in main.cell_parts("bm25", AVG)] == [
        ("beir/cqa-android", 0.25), ("beir/cqa-gis", 0.25), ("beir/scifact", 0.5)]


def lang(suite, dataset, language, name, ndcg, split="dev"):
    card = make_card(dataset, suite=suite, language=language, split=split)
    return make_record(name, dataset, ndcg, card=card)


def test_language_matrix_spans_multilingual_suites_one_column_per_language():
    recs = [
        make_record("bm25", "scifact", 0.67),  # BEIR is English-only: not in the matrix
        lang("miracl", "ja", "ja", "bm25", 0.60), lang("miracl", "en", "en", "bm25", 0.70),
        lang("mldr", "ja", "ja", "bm25", 0.40), lang("mldr", "en", "en", "bm25", 0.30),
        lang("jqara", "jqara", "ja", "bm25", 0.50, split="test"),
        lang("miracl", "ja", "ja", "bge-m3", 0.80), lang("miracl", "en", "en", "bge-m3", 0.90),
        lang("mldr", "en", "en", "bge-m3", 0.50), lang("jqara", "jqara", "ja", "bge-m3", 0.70, split="test"),
    ]
    matrix = by_title(build_tables(recs))["Languages"]
    assert matrix.kind == "languages" and matrix.columns == ["en", "ja"] and matrix.rows == ["bge-m3", "bm25"]
    assert matrix.cells[("bm25", "ja")] == pytest.approx((0.60 + 0.40 + 0.50) / 3)
    assert matrix.cells[("bm25", "en")] == pytest.approx((0.70 + 0.30) / 2)
    assert matrix.cells[("bge-m3", "en")] == pytest.approx((0.90 + 0.50) / 2)
    assert ("bge-m3", "ja") not in matrix.cells  # no MLDR ja result: blank, not a mean of fewer datasets
    assert matrix.average("bm25") == pytest.approx((0.5 + 0.5) / 2)
    assert matrix.column_notes == {"en": "miracl/en, mldr/en", "ja": "jqara/jqara, miracl/ja, mldr/ja"}
    caption = matrix.caption()
    assert caption.startswith("Languages across suites jqara, miracl, mldr: ndcg@10 ×100")
    assert "split dev (miracl/en, miracl/ja, mldr/en, mldr/ja); split test (jqara/jqara)" in caption
    assert "| bm25 | <ins>50.0</ins> | **50.0** | **50.0** |" in to_markdown(matrix)


def test_english_only_suites_make_no_language_matrix():
    assert [t.kind for t in build_tables([make_record("bm25", "scifact", 0.6), make_record("bm25", "nfcorpus", 0.3)])] \
        == ["suite"]


def test_caption_states_split_lengths_mode_depth_and_names_datasets_that_differ():
    own_length = make_card("msmarco", split="dev", max_length={"query": 32, "document": None})
    recs = [make_record("bm25", "scifact", 0.6), make_record("bm25", "msmarco", 0.2, card=own_length)]
    (table,) = build_tables(recs)
    caption = table.caption()
    assert caption.startswith("Suite beir: ndcg@10 ×100 (split dev (msmarco); split test (scifact); "
                              "max length query 32 / document 300 tokens (scifact); max length query 32 / "
                              "document model's own tokens (msmarco); full-corpus retrieval; depth 1000).")
    assert f"Protocol hashes: msmarco {recs[1].protocol_hash[:8]}, scifact {recs[0].protocol_hash[:8]}." in caption


def test_group_name_that_is_also_a_dataset_is_refused():
    recs = [make_record("bm25", "cqadupstack", 0.3), cqa("bm25", "cqa-gis", 0.4)]
    with pytest.raises(ProtocolMismatchError, match="group name 'cqadupstack' is also a dataset's name"):
        build_tables(recs)


def test_a_dataset_outside_the_average_is_shown_but_not_averaged():
    msmarco = make_card("msmarco", in_average=False)
    recs = [make_record("bm25", "scifact", 0.60), make_record("bm25", "nfcorpus", 0.30),
            make_record("bm25", "msmarco", 0.90, card=msmarco)]
    (table,) = build_tables(recs)
    assert table.columns == ["msmarco", "nfcorpus", "scifact"] and table.outside_average == {"msmarco"}
    assert table.average("bm25") == pytest.approx(0.45)  # (0.30 + 0.60) / 2: MS MARCO left out
    assert [p.dataset for p in table.cell_parts("bm25", AVG)] == ["beir/nfcorpus", "beir/scifact"]
    assert "except msmarco, reported but outside the average" in table.caption()
    # A label, like the group: the protocol hash is the same with or without it.
    assert msmarco.protocol_hash == make_card("msmarco").protocol_hash


def test_a_gap_that_tied_scores_alone_could_close_is_marked():
    def with_ties(name, ndcg, pessimistic, optimistic, dataset="scifact"):
        record = make_record(name, dataset, ndcg)
        return record.model_copy(update={"ties": {"order": "trec_eval", "metric": "ndcg@10", "pairs": 10,
                                                  "tied_pairs": 4, "tied_groups": 1, "mixed_groups": 1,
                                                  "queries_with_ties": 1, "pessimistic": pessimistic,
                                                  "optimistic": optimistic}})

    recs = [with_ties("best", 0.60, 0.58, 0.61), with_ties("close", 0.57, 0.55, 0.58),  # 0.58 >= 0.58: marked
            with_ties("far", 0.50, 0.49, 0.57), make_record("unbounded", "scifact", 0.59),
            with_ties("best", 0.40, 0.40, 0.40, "nfcorpus"), with_ties("close", 0.39, 0.38, 0.40, "nfcorpus")]
    (table,) = build_tables(recs)
    assert {cell: mark for cell, mark in table.tie_marks.items()} == {
        ("close", "scifact"): "‡", ("close", "nfcorpus"): "‡"}
    assert table.mark("close", "scifact") == "‡" and table.mark("far", "scifact") == ""
    assert table.mark("close", AVG) == "" and "‡ below the column's best by no more than" in table.caption()
    assert "| close | <ins>39.0‡</ins> | 57.0‡ |" in to_markdown(table)
    assert r"57.0$^\ddagger$" in to_latex([table])
    # Without tie reports (older records), nothing is marked.
    (plain,) = build_tables([make_record("best", "scifact", 0.6), make_record("close", "scifact", 0.57)])
    assert plain.tie_marks == {} and "‡" not in plain.caption()


def test_one_system_stored_under_two_names_is_refused_naming_both():
    # `harness run --model M` and a suite entry of the same configuration store one system twice.
    first = make_record("minilm-maxsim@dim=128", "scifact", 0.70)
    again = first.model_copy(update={"retriever": {**first.retriever, "name": "all-MiniLM-L6-v2@dim=128"}})
    with pytest.raises(ProtocolMismatchError) as e:
        build_tables([first, again, make_record("bm25", "scifact", 0.67)])
    row = "all-MiniLM-L6-v2@dim=128"  # a key's row takes the label of the last result with that key
    assert str(e.value) == (f"Two results for row {row} on beir/scifact: minilm-maxsim@dim=128 and {row} "
                            "(one system and protocol, stored twice). Remove one of the result folders.")
