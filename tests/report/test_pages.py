"""`write_reports` end to end on result folders written through the real ResultStore: every
format, significance.csv, the plots, and the HTML page that holds them all."""

import csv
import html
import io
import random
import re
import shutil
import subprocess

import pytest
from PIL import Image, ImageStat

from harness.report import write_reports
from harness.report.tables import build_tables
from harness.results import ResultStore

from tests.report.builders import store_result

LATENCY = {"p50": 4.0, "p95": 6.0, "p99": 7.0}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """BEIR (two datasets and a two-forum group) and MIRACL (two languages), three retrievers."""
    root = tmp_path_factory.mktemp("results")
    rng = random.Random(7)
    for dataset, group in [("scifact", None), ("nfcorpus", None), ("cqa-android", "cqadupstack"),
                           ("cqa-gis", "cqadupstack")]:
        base = [rng.random() * 0.6 for _ in range(40)]
        extra = {"group": group} if group else {}
        store_result(root, "bm25", dataset, base, cost={"search_s": 0.02}, **extra)
        for dim in (64, 128):
            gain = 0.2 if dim == 128 else 0.05
            store_result(root, f"minilm@dim={dim}", dataset, [min(1.0, s + gain) for s in base],
                         cost={"bytes_per_document": 4 * 60 * dim, "dim": dim, "storage_dtype": "float16",
                               "n_documents": 1000, "search_latency_ms": LATENCY}, **extra)
    for language in ("ja", "sw"):
        base = [rng.random() * 0.6 for _ in range(30)]
        store_result(root, "bm25", language, base, suite="miracl", language=language, split="dev")
        store_result(root, "minilm@dim=128", language, [s + 0.1 for s in base], suite="miracl", language=language,
                     split="dev")
    return root


@pytest.fixture(scope="module")
def report(results, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    written = write_reports(results, out, baseline="bm25")
    return out, written


def test_every_format_and_plot_is_written(report):
    out, written = report
    names = {p.relative_to(out).as_posix() for p in written}
    assert {"results.md", "results.tex", "results.csv", "significance.csv", "index.html"} <= names
    plots = sorted(n for n in names if n.startswith("plots/"))
    assert plots == sorted(f"plots/{stem}.{ext}" for ext in ("png", "svg") for stem in [
        *(f"{kind}-beir-{d}" for kind in ("storage", "dimension", "latency")
          for d in ("cqa-android", "cqa-gis", "nfcorpus", "scifact")),
        "languages-miracl"])
    assert all((out / n).stat().st_size > 1000 for n in names)


def test_a_plot_the_results_no_longer_allow_is_removed_and_other_files_are_kept(results, tmp_path):
    plots = tmp_path / "plots"
    plots.mkdir()
    for name in ["storage-beir-gone.png", "storage-beir-gone.svg", "notes.txt"]:
        (plots / name).write_text("from an earlier report")
    written = write_reports(results, tmp_path, ["markdown"])
    assert sorted(p.name for p in plots.iterdir()) == sorted([*(p.name for p in written if p.parent == plots),
                                                               "notes.txt"])
    assert not (plots / "storage-beir-gone.png").exists() and len(list(plots.glob("*.svg"))) == 13


def test_markdown_has_the_group_column_the_language_matrix_and_significance(report):
    out, _ = report
    md = (out / "results.md").read_text()
    assert [line for line in md.splitlines() if line.startswith("## ")] == [
        "## beir", "## beir / cqadupstack", "## miracl", "## Languages"]
    assert "| Retriever | cqadupstack | nfcorpus | scifact | Avg |" in md
    # +0.2 on every one of 40 queries (or 80 for the group): far beyond Holm's bar, so marked.
    assert re.search(r"\| minilm@dim=128 \| \*\*\d\d\.\d▲\*\* \| \*\*\d\d\.\d▲\*\* \| \*\*\d\d\.\d▲\*\* \| "
                     r"\*\*\d\d\.\d▲\*\* \|", md)


def test_significance_csv_lists_every_tested_cell_with_raw_and_holm_p(report):
    out, _ = report
    rows = list(csv.DictReader(io.StringIO((out / "significance.csv").read_text())))
    beir = [r for r in rows if r["table"] == "beir"]
    # Two rows against bm25, three columns plus the average.
    assert len(beir) == 8 and {r["baseline"] for r in beir} == {"bm25"}
    for r in rows:
        assert float(r["p"]) <= float(r["p_holm"]) <= 1
        assert r["mark"] == ("▲" if float(r["p_holm"]) <= 0.05 and float(r["value"]) > float(r["baseline_value"])
                             else "▼" if float(r["p_holm"]) <= 0.05 else "")


def test_html_page_holds_every_table_and_plot_and_needs_no_network(report, results):
    out, written = report
    page = (out / "index.html").read_text()
    tables = build_tables([r for _, r in ResultStore(results).records()])
    assert page.count('<section id="table') == len(tables) == 4
    for table in tables:
        assert f"<h3>{table.title}</h3>" in page
        # The page's caption is this one plus the significance note.
        assert html.escape(table.caption()) in page
    svgs = [p for p in written if p.suffix == ".svg"]
    assert page.count("<svg") == len(svgs) == 13
    for svg in svgs:
        rel = svg.relative_to(out).as_posix()
        assert f'href="{rel}"' in page and f'href="{rel[:-4]}.png"' in page
    assert "<script" not in page and not re.search(r'(src|href)="https?:', page)
    assert "<td>minilm@dim=128</td>" in page and "<strong>" in page and "<u>" in page


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="pdflatex not installed (Debian: texlive-latex-recommended)")
def test_full_latex_report_compiles(report, tmp_path):
    out, _ = report
    shutil.copy(out / "results.tex", tmp_path / "results.tex")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "results.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:]
    assert (tmp_path / "results.pdf").stat().st_size > 1000


def _chromium():
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


@pytest.mark.skipif(_chromium() is None, reason="no headless Chromium (Debian: chromium)")
def test_html_page_renders_in_a_headless_browser(report, tmp_path):
    out, _ = report
    shot = tmp_path / "page.png"
    subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1200,2000", f"--screenshot={shot}", (out / "index.html").as_uri()],
                   capture_output=True, timeout=120)
    with Image.open(shot) as image:
        assert image.size == (1200, 2000)
        # Not a blank page: dark text and lines on white give a spread of grey levels.
        assert ImageStat.Stat(image.convert("L")).stddev[0] > 20


# Opens the report in a frame and, once it has loaded, lists what the browser made of it: every
# table's rows and laid-out width, every inline plot's size and drawn shapes, and every linked plot
# file loaded as an image (its decoded size; 0 when it fails).
_INSPECT = """<!doctype html><html><body><pre id="found">not loaded</pre>
<iframe id="page" src="index.html" style="width:1200px;height:2000px"></iframe>
<script>
document.getElementById("page").onload = async (event) => {
  const doc = event.target.contentDocument;
  const box = (e) => { const r = e.getBoundingClientRect(); return [r.width, r.height]; };
  const tables = [...doc.querySelectorAll("table")].map(t => ({rows: t.rows.length, cells: t.querySelectorAll("td").length, box: box(t)}));
  const plots = [...doc.querySelectorAll("figure svg")].map(s => ({box: box(s), shapes: s.querySelectorAll("path, line, rect, text, use").length}));
  const files = [...doc.querySelectorAll('a[href$=".png"], a[href$=".svg"]')].map(a => a.getAttribute("href"));
  const images = await Promise.all(files.map(href => new Promise(done => {
    const image = new Image();
    image.onload = () => done({href, size: [image.naturalWidth, image.naturalHeight]});
    image.onerror = () => done({href, size: [0, 0]});
    image.src = href;
  })));
  document.getElementById("found").textContent = JSON.stringify({title: doc.title, tables, plots, images});
};
</script></body></html>
"""


@pytest.mark.skipif(_chromium() is None, reason="no headless Chromium (Debian: chromium)")
def test_every_table_and_plot_of_the_page_loads_in_chromium(report, results, tmp_path):
    """The page as a browser lays it out: no mock, Chromium itself, headless."""
    import json

    out, written = report
    page = tmp_path / "reports"
    shutil.copytree(out, page)
    (page / "inspect.html").write_text(_INSPECT, encoding="utf-8")
    done = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
                           "--virtual-time-budget=20000", "--dump-dom", (page / "inspect.html").as_uri()],
                          capture_output=True, text=True, timeout=180)
    found = re.search(r'<pre id="found">(.*?)</pre>', done.stdout, re.S)
    assert found and found.group(1) != "not loaded", done.stderr[-2000:]
    seen = json.loads(html.unescape(found.group(1)))
    tables = build_tables([r for _, r in ResultStore(results).records()])
    assert len(seen["tables"]) == len(tables) == 4
    for table, shown in zip(tables, seen["tables"]):
        assert shown["rows"] == len(table.rows) + 1  # the header and one row per retriever
        assert shown["cells"] == len(table.rows) * (len(table.columns) + 2)  # row label, columns, Avg
        assert shown["box"][0] > 100 and shown["box"][1] > 20
    svgs = sorted(p.relative_to(out).as_posix() for p in written if p.suffix == ".svg")
    assert len(seen["plots"]) == len(svgs) == 13
    assert all(p["box"][0] > 100 and p["box"][1] > 100 and p["shapes"] > 5 for p in seen["plots"])
    images = {i["href"]: i["size"] for i in seen["images"]}
    assert sorted(images) == sorted(svgs + [s[:-4] + ".png" for s in svgs])
    broken = [href for href, (width, height) in images.items() if not (width > 100 and height > 100)]
    assert not broken, f"did not load as images: {broken}"
