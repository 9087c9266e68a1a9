"""Report plots: the Pareto frontier, and each plot's files with their title, axis labels, legend
and the points drawn (read back from the SVG, which keeps its text as text)."""

import xml.etree.ElementTree as ET

import pytest
from PIL import Image

from harness.report import build_tables
from harness.report.pareto import pareto_frontier
from harness.report.plots import make_plots

from tests.helpers import make_card, make_record

SVG = "{http://www.w3.org/2000/svg}"


def svg_texts(path) -> list[str]:
    return ["".join(e.itertext()) for e in ET.parse(path).iter(f"{SVG}text")]


def svg_ids(path, prefix: str) -> set[str]:
    return {g.get("id") for g in ET.parse(path).iter(f"{SVG}g") if (g.get("id") or "").startswith(prefix)}


def assert_png(path, min_width=600):
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width >= min_width and image.height >= 300


def record(name, ndcg, dataset="scifact", n_queries=3, **cost):
    return make_record(name, dataset, ndcg).model_copy(update={"cost": cost, "n_queries": n_queries})


def test_pareto_frontier_keeps_only_points_nothing_cheaper_beats():
    points = [(100, 0.5), (200, 0.6), (150, 0.4), (400, 0.6), (50, 0.3), (800, 0.7), (100, 0.5)]
    # (150, 0.4) and (400, 0.6) are dominated; of the two identical (100, 0.5) the first stays.
    assert pareto_frontier(points) == [4, 0, 1, 5]
    assert pareto_frontier([]) == []


STORAGE = [  # name, nDCG@10, bytes per document, dtype
    ("dense", 0.500, 1536, "float32"), ("m@dim=64", 0.490, 19200, "float16"), ("m@dim=128", 0.505, 38400, "float16"),
    ("m@dim=384,dtype=int8", 0.610, 57600, "int8"), ("m@dim=256", 0.530, 76800, "float16"),
    ("m@dim=384", 0.620, 115200, "float16"),
]


def dim_of(name):
    return int(name.split("=")[1].split(",")[0]) if "@" in name else 384


def by_kind(plots):
    return {p.kind: p for p in plots}


def test_quality_vs_storage_marks_the_pareto_frontier(tmp_path):
    recs = [record(n, s, bytes_per_document=b, storage_dtype=d, dim=dim_of(n)) for n, s, b, d in STORAGE]
    recs.append(record("bm25", 0.67))
    plot = by_kind(make_plots(recs, build_tables(recs), tmp_path))["storage"]
    assert plot.frontier == ("dense", "m@dim=128", "m@dim=384,dtype=int8", "m@dim=384")
    assert plot.data["m@dim=256"] == [(76800.0, pytest.approx(53.0))]
    assert plot.svg == tmp_path / "storage-beir-scifact.svg" and plot.png.with_suffix(".svg") == plot.svg
    assert_png(plot.png)
    texts = svg_texts(plot.svg)
    for text in ["beir/scifact: nDCG@10 vs storage per document", "Storage per document (bytes, log scale)",
                 "nDCG@10 (×100)", "storage dtype: float16", "storage dtype: float32", "storage dtype: int8",
                 "Pareto frontier", "1 kB", "10 kB", "100 kB", *(n for n, *_ in STORAGE)]:
        assert text in texts
    assert "bm25" not in texts and plot.note == "Without a storage figure (not plotted): bm25."
    assert svg_ids(plot.svg, "point-") == {"point-dense", "point-m_dim_64", "point-m_dim_128",
                                           "point-m_dim_384_dtype_int8", "point-m_dim_256", "point-m_dim_384"}
    assert svg_ids(plot.svg, "frontier-") == {"frontier-dense", "frontier-m_dim_128", "frontier-m_dim_384_dtype_int8",
                                              "frontier-m_dim_384"}


def test_quality_vs_dimension_draws_each_matryoshka_sweep_with_references(tmp_path):
    recs = [record(n, s, dim=dim_of(n)) for n, s, _, _ in STORAGE if n.startswith("m@")]
    recs.append(record("bm25", 0.67))
    plot = by_kind(make_plots(recs, build_tables(recs), tmp_path))["dimension"]
    # The int8 sweep has one point: no line; the float sweep is drawn in order of dimension.
    assert plot.data == {"m": [(64, pytest.approx(49.0)), (128, pytest.approx(50.5)), (256, pytest.approx(53.0)),
                               (384, pytest.approx(62.0))],
                         "bm25": [(None, pytest.approx(67.0))], "m@dim=384,dtype=int8": [(None, pytest.approx(61.0))]}
    assert_png(plot.png)
    texts = svg_texts(plot.svg)
    for text in ["beir/scifact: nDCG@10 vs dimension", "Dimension per vector (components, log₂ scale)",
                 "nDCG@10 (×100)", "m (Matryoshka truncation)", "bm25 (not swept, for reference)",
                 "64", "128", "256", "384"]:
        assert text in texts


def test_latency_bars_p50_with_p95_whiskers_and_the_fallback_said_on_the_plot(tmp_path):
    recs = [record("dense", 0.5, search_latency_ms={"p50": 2.0, "p95": 3.5, "p99": 4.0},
                   query_latency_ms={"p50": 6.0, "p95": 9.0, "p99": 12.0}),
            record("m@dim=128", 0.55, search_latency_ms={"p50": 20.0, "p95": 31.0, "p99": 40.0}),
            record("bm25", 0.6, n_queries=300, search_s=0.6),  # no percentiles: 0.6 s / 300 queries
            record("imported", 0.4)]
    plot = by_kind(make_plots(recs, build_tables(recs), tmp_path))["latency"]
    assert plot.data == {"search": [("bm25", pytest.approx(2.0), None), ("dense", 2.0, 3.5), ("m@dim=128", 20.0, 31.0)],
                         "encode + search, one query": [("dense", 6.0, 9.0)]}
    assert_png(plot.png)
    texts = svg_texts(plot.svg)
    note = "Hatched, no whisker: no percentiles recorded, mean per query from the batch's total time (bm25)."
    for text in ["beir/scifact: query latency (bar p50, whisker p95)", "Latency per query (ms)", "Retriever",
                 "search", "encode + search, one query", "mean over the batch", note, "bm25", "dense", "m@dim=128"]:
        assert text in texts
    assert "imported" not in texts and plot.note == note + " No latency recorded: imported."
    assert svg_ids(plot.svg, "bar-") == {"bar-bm25-search", "bar-dense-search", "bar-m_dim_128-search",
                                         "bar-dense-encode_search_one_query"}


def test_latency_vs_corpus_size_only_for_retrievers_measured_at_several_sizes(tmp_path):
    recs = [record("m", 0.5, dataset="scifact", n_documents=5183, search_latency_ms={"p50": 10.0, "p95": 12.0}),
            record("m", 0.3, dataset="nq", n_documents=2681468, search_latency_ms={"p50": 900.0, "p95": 1100.0}),
            record("dense", 0.5, dataset="scifact", n_documents=5183, search_latency_ms={"p50": 1.0, "p95": 1.2})]
    plots = by_kind(make_plots(recs, build_tables(recs), tmp_path))
    plot = plots["latency-corpus"]
    assert plot.data == {"m": [(5183, 10.0, 12.0), (2681468, 900.0, 1100.0)]}
    assert_png(plot.png)
    texts = svg_texts(plot.svg)
    for text in ["Search latency vs corpus size (p50, whisker p95)", "Corpus size (documents, log scale)",
                 "Search latency per query (ms, log scale)", "m"]:
        assert text in texts
    assert "dense" not in texts


def test_per_language_bars_for_a_multilingual_suite(tmp_path):
    recs = [make_record(name, lang, score, card=make_card(lang, suite="miracl", language=lang, split="dev"))
            for name, lang, score in [("bm25", "ja", 0.40), ("bm25", "sw", 0.38), ("bge-m3", "ja", 0.70),
                                      ("bge-m3", "sw", 0.68)]]
    plot = by_kind(make_plots(recs, build_tables(recs), tmp_path))["languages"]
    assert plot.data == {"bge-m3": [("ja", pytest.approx(70.0)), ("sw", pytest.approx(68.0))],
                         "bm25": [("ja", pytest.approx(40.0)), ("sw", pytest.approx(38.0))]}
    assert_png(plot.png, min_width=500)
    texts = svg_texts(plot.svg)
    for text in ["miracl: nDCG@10 per language", "Language (code)", "nDCG@10 (×100)", "ja", "sw", "bm25", "bge-m3"]:
        assert text in texts


def test_results_without_costs_or_sweeps_draw_nothing(tmp_path):
    recs = [make_record("bm25", "scifact", 0.6), make_record("dense", "scifact", 0.5)]
    assert make_plots(recs, build_tables(recs), tmp_path / "plots") == []
    assert not (tmp_path / "plots").exists()
