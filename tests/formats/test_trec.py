import gzip

import numpy as np
import pytest

from harness.errors import FormatError
from harness.formats import trec


def test_run_round_trip_plain_and_gzip(tmp_path):
    rankings = [("q1", [("d2", 2.5), ("d1", 1.0)]), ("q2", [("d9", 0.125)])]
    for name in ("run.trec", "run.trec.gz"):
        trec.write_run(tmp_path / name, rankings, tag="my run")
        assert trec.read_run(tmp_path / name) == {"q1": {"d2": 2.5, "d1": 1.0}, "q2": {"d9": 0.125}}
    assert (tmp_path / "run.trec").read_text().splitlines()[0] == "q1 Q0 d2 1 2.5 my_run"
    assert gzip.decompress((tmp_path / "run.trec.gz").read_bytes()).decode() == (tmp_path / "run.trec").read_text()


def test_scores_are_written_exactly_at_float32_or_float64_precision(tmp_path):
    # float32 scores (a model's) that print alike to 6 decimals: the shortest float32 digits.
    single = [float(np.float32(v)) for v in (0.1234561, 0.1234564, 0.1)]
    assert trec.exact_scores(single) == ["0.1234561", "0.1234564", "0.1"]
    # float64 scores closer than a float32 step: float32 digits would tie them, float64's do not.
    double = [1 / 3, 1 / 3 + 1e-12, 2.0]
    assert np.float32(double[0]) == np.float32(double[1])
    assert trec.exact_scores(double) == [repr(v) for v in double]
    assert trec.exact_scores([1e300, 1.0]) == ["1e+300", "1.0"]
    trec.write_run(tmp_path / "run.trec", [("q1", zip("abc", single)), ("q2", zip("abc", double))], tag="t")
    back = trec.read_run(tmp_path / "run.trec")
    assert [np.float32(v) for v in back["q1"].values()] == [np.float32(v) for v in single]
    assert list(back["q2"].values()) == double


def test_ranked_run_keeps_file_order_and_ranks(tmp_path):
    (tmp_path / "run.trec").write_text("q1 Q0 b 2 0.5 t\nq1 Q0 a 1 0.5 t\nq2 Q0 c 7 1e-3 t\n")
    assert trec.read_ranked_run(tmp_path / "run.trec") == {"q1": [("b", 2, 0.5), ("a", 1, 0.5)], "q2": [("c", 7, 0.001)]}


def test_gzip_bytes_are_reproducible(tmp_path):
    trec.write_run(tmp_path / "a.gz", [("q", [("d", 1.0)])], tag="t")
    trec.write_run(tmp_path / "b.gz", [("q", [("d", 1.0)])], tag="t")
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()


def test_malformed_run_names_file_and_line(tmp_path):
    path = tmp_path / "bad.trec"
    path.write_text("q1 Q0 d1 1 2.0 t\nq1 Q0 d2 2 t\n")
    with pytest.raises(FormatError) as e:
        trec.read_run(path)
    assert str(e.value).startswith(f"{path}:2: a TREC run line has 6 fields")
    path.write_text("q1 Q0 d1 1 high t\n")
    with pytest.raises(FormatError, match=r":1: the score 'high' is not a number"):
        trec.read_run(path)
    path.write_text("q1 Q0 d1 1 2.0 t\nq1 Q0 d1 2 1.0 t\n")
    with pytest.raises(FormatError, match=r":2: document 'd1' is listed twice for query 'q1'"):
        trec.read_run(path)


def test_qrels_trec_and_beir_tsv_with_header(tmp_path):
    (tmp_path / "q.trec").write_text("q1 0 d1 2\nq1 0 d2 0\nq2 Q0 d3 1\n")
    assert trec.read_qrels(tmp_path / "q.trec") == {"q1": {"d1": 2, "d2": 0}, "q2": {"d3": 1}}
    (tmp_path / "q.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    assert trec.read_qrels(tmp_path / "q.tsv") == {"q1": {"d1": 1}}
    (tmp_path / "bad").write_text("q1 0 d1 1\nq1 d1\n")
    with pytest.raises(FormatError, match=r"bad:2: a qrels line has 4 fields"):
        trec.read_qrels(tmp_path / "bad")
