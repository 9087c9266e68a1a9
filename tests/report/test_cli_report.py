"""`harness report` as a user runs it: everything by default, or only the formats asked for."""

from tests.conftest import run_cli
from tests.report.builders import store_result


def test_report_writes_tables_plots_and_page_and_prints_markdown(tmp_path):
    results, out = tmp_path / "results", tmp_path / "reports"
    base = [0.1 * i for i in range(10)]
    store_result(results, "bm25", "scifact", base, cost={"search_s": 0.01})
    store_result(results, "minilm@dim=64", "scifact", [s + 0.05 for s in base],
                 cost={"bytes_per_document": 7680, "dim": 64, "storage_dtype": "float16"})
    store_result(results, "minilm@dim=128", "scifact", [s + 0.1 for s in base],
                 cost={"bytes_per_document": 15360, "dim": 128, "storage_dtype": "float16"})
    done = run_cli("report", str(results), "--out", str(out), "--baseline", "bm25")
    assert done.returncode == 0, done.stderr
    for name in ("results.md", "results.tex", "results.csv", "significance.csv", "index.html"):
        assert f"wrote {out / name}" in done.stdout
    assert f"wrote 3 plots (PNG and SVG) under {out / 'plots'}" in " ".join(done.stdout.split())
    assert sorted(p.name for p in (out / "plots").iterdir()) == [
        f"{kind}-beir-scifact.{ext}" for kind in ("dimension", "latency", "storage") for ext in ("png", "svg")]
    # Ten queries, all +0.1 (or +0.05): exact p = 2/1024 each, 4/1024 after Holm over two comparisons.
    assert "| minilm@dim=128 | **55.0▲** | **55.0** |" in done.stdout
    assert "| minilm@dim=64 | <ins>50.0▲</ins> | <ins>50.0</ins> |" in done.stdout


def test_report_with_only_markdown_and_no_plots_writes_only_that(tmp_path):
    results, out = tmp_path / "results", tmp_path / "reports"
    store_result(results, "bm25", "scifact", [0.5, 0.6], cost={"search_s": 0.01})
    done = run_cli("report", str(results), "--out", str(out), "-f", "markdown", "--no-plots")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["results.md"]


def test_report_errors_are_one_paragraph_with_status_2(tmp_path):
    results = tmp_path / "results"
    store_result(results, "bm25", "scifact", [0.5, 0.6])
    done = run_cli("report", str(results), "--out", str(tmp_path / "reports"), "-f", "pdf")
    assert done.returncode == 2
    assert "Unknown report format 'pdf'; choose from markdown, latex, csv, html." in done.stderr
    done = run_cli("report", str(results), "--out", str(tmp_path / "reports"), "--baseline", "splade")
    assert done.returncode == 2 and "No table has a row 'splade' to use as --baseline" in done.stderr
    assert "Traceback" not in done.stderr
