"""The reports' "Δ vs exact" column (every format) and the latency-vs-loss plot with its Pareto
frontier, from records that carry ``vs_exact``."""

import pytest

from harness.report import build_tables, formats
from harness.report.html import table_html
from harness.report.vs_exact import attach_deltas, latency_vs_loss

from tests.helpers import make_record
from tests.report.test_plots import assert_png, svg_texts


def loss(delta, low, high, p50, exact_p50=400.0):
    return {"delta": delta, "ci95": [low, high], "latency_ms": {"p50": p50, "p95": 2 * p50},
            "exact_latency_ms": {"p50": exact_p50, "p95": 2 * exact_p50}}


RECORDS = [("m@index=exact", 0.70, None), ("m@index=plaid,ncells=1", 0.69, loss(-0.01, -0.02, -0.001, 40.0)),
           ("m@index=plaid,ncells=4", 0.699, loss(-0.001, -0.004, 0.002, 90.0)),
           ("m@index=faiss", 0.68, loss(-0.02, -0.03, -0.01, 120.0))]


def records():
    return [make_record(n, "scifact", s).model_copy(update={"vs_exact": v}) for n, s, v in RECORDS]


def test_delta_column_in_markdown_csv_latex_and_html():
    recs = records()
    tables = build_tables(recs)
    attach_deltas(tables, recs)
    table = tables[0]
    assert table.deltas == {"m@index=plaid,ncells=1": "-1.00 [-2.00, -0.10]",
                            "m@index=plaid,ncells=4": "-0.10 [-0.40, +0.20]",
                            "m@index=faiss": "-2.00 [-3.00, -1.00]"}
    md = formats.to_markdown(table)
    assert "| Retriever | scifact | Avg | Δ vs exact |" in md
    assert "| m@index=faiss | 68.0 | 68.0 | -2.00 [-3.00, -1.00] |" in md
    assert "| m@index=exact | **70.0** | **70.0** |  |" in md and "Δ vs exact: an approximate index's" in md
    csv = formats.to_csv(table).splitlines()
    assert csv[0].endswith(",average,delta_vs_exact_x100") and 'beir,m@index=faiss,0.680000,0.680000,"-2.00 [-3.00, -1.00]"' in csv
    assert r"$\Delta$ vs exact" in formats.to_latex([table])
    assert "<th>Δ vs exact</th>" in table_html(table, "t") and "<td>-0.10 [-0.40, +0.20]</td>" in table_html(table, "t")
    # without approximate results nothing changes
    plain = build_tables(recs[:1])
    attach_deltas(plain, recs[:1])
    assert "Δ vs exact" not in formats.to_markdown(plain[0])


def test_latency_vs_loss_marks_the_frontier(tmp_path):
    plots = latency_vs_loss(records(), tmp_path, None)
    assert len(plots) == 1
    plot = plots[0]
    # plaid ncells=1 is fastest; ncells=4 is slower but loses less; faiss is slower and loses more
    # than both; exact (400 ms, no loss) closes the frontier.
    assert plot.frontier == ("m@index=plaid,ncells=1", "m@index=plaid,ncells=4", "exact")
    assert plot.data["m@index=faiss"] == [(120.0, pytest.approx(-2.0))]
    assert_png(plot.png)
    texts = svg_texts(plot.svg)
    for text in ["beir/scifact: latency against loss", "Δ nDCG@10 vs exact (×100)", "Pareto frontier",
                 "search latency p50, one query (ms, log scale)", "m@index=faiss", "exact"]:
        assert text in texts
