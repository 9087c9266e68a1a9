import csv
import io
import shutil
import subprocess

import pytest

from harness.errors import ProtocolMismatchError
from harness.report import build_tables, to_csv, to_latex, to_markdown

from tests.helpers import make_card, make_record


def records():
    return [
        make_record("bm25", "scifact", 0.6769),
        make_record("bm25", "nfcorpus", 0.3250),
        make_record("colbert_v2", "scifact", 0.6930),
        make_record("colbert_v2", "nfcorpus", 0.3380),
        make_record("dense", "scifact", 0.6450),
    ]


def test_markdown_table_bold_best_underlined_second_and_average():
    (table,) = build_tables(records())
    assert table.columns == ["nfcorpus", "scifact"]
    lines = to_markdown(table).splitlines()
    assert lines[2:7] == [
        "| Retriever | nfcorpus | scifact | Avg |",
        "|---|---:|---:|---:|",
        "| bm25 | <ins>32.5</ins> | <ins>67.7</ins> | <ins>50.1</ins> |",
        "| colbert_v2 | **33.8** | **69.3** | **51.5** |",
        "| dense |  | 64.5 |  |",
    ]
    assert "ndcg@10 ×100" in lines[-1]


def test_csv_keeps_full_precision():
    (table,) = build_tables(records())
    rows = list(csv.reader(io.StringIO(to_csv(table))))
    assert rows[0] == ["suite", "retriever", "nfcorpus", "scifact", "average"]
    assert rows[1] == ["metric", "", "ndcg@10", "ndcg@10", ""]
    assert rows[3] == ["beir", "bm25", "0.325000", "0.676900", "0.500950"]
    assert rows[5] == ["beir", "dense", "", "0.645000", ""]


def test_latex_is_a_complete_booktabs_document_with_escapes():
    (table,) = build_tables(records())
    tex = to_latex([table])
    assert tex.startswith("\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage{amssymb}\n"
                          "\\usepackage{graphicx}\n\\begin{document}")
    assert "\\toprule\nRetriever & nfcorpus & scifact & Avg \\\\\n\\midrule" in tex
    assert "colbert\\_v2 & \\textbf{33.8} & \\textbf{69.3} & \\textbf{51.5} \\\\" in tex
    assert "bm25 & \\underline{32.5} & \\underline{67.7} & \\underline{50.1} \\\\" in tex
    assert tex.rstrip().endswith("\\end{document}")


def test_different_protocols_in_one_column_are_refused_then_marked_when_forced():
    longer = make_card("scifact", max_length={"query": 32, "document": 512})
    recs = records() + [make_record("colbert_512", "scifact", 0.70, card=longer)]
    with pytest.raises(ProtocolMismatchError) as e:
        build_tables(recs)
    assert "beir/scifact were measured under 2 different protocols" in str(e.value)
    assert "differing in: max_length" in str(e.value)
    (table,) = build_tables(recs, force=True)
    assert table.marks == {("colbert_512", "scifact"): "†"}
    assert "| colbert_512 |  | **70.0†** |  |" in to_markdown(table)


def test_same_name_different_parameters_get_distinct_rows():
    recs = [make_record("bm25", "scifact", 0.67, params={"k1": 0.9}), make_record("bm25", "scifact", 0.66, params={"k1": 1.2})]
    (table,) = build_tables(recs)
    assert len(table.rows) == 2 and all(r.startswith("bm25 [") for r in table.rows)


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed (Debian: texlive-latex-recommended)")
def test_latex_compiles_with_pdflatex(tmp_path):
    recs = records() + [make_record("colbert_512", "scifact", 0.70,
                                    card=make_card("scifact", max_length={"query": 32, "document": 512}))]
    (tmp_path / "t.tex").write_text(to_latex(build_tables(recs, force=True)))
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:]
    assert (tmp_path / "t.pdf").stat().st_size > 1000
