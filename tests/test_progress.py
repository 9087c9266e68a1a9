"""Progress of long steps: rich bars on a terminal (a real pseudo-terminal here), a line every 10%
otherwise, nothing with --quiet; libraries' own tqdm bars turned off."""

from __future__ import annotations

import os
import re
import subprocess
import sys


from harness import progress

from tests.conftest import REPO, SCIFACT_SUITE, run_cli


def test_a_line_every_tenth_when_not_a_terminal(capsys, monkeypatch):
    monkeypatch.delenv(progress.QUIET_ENV, raising=False)
    chunks = [list(range(7))] * 30  # 210 documents in chunks of 7
    assert list(progress.counted(chunks, "encoding documents", 210, "docs", size=len)) == chunks
    lines = capsys.readouterr().err.splitlines()
    assert [re.sub(r", [\d,.]+ docs/s, \d+ s left\)$", ")", line) for line in lines] == [
        f"encoding documents: {p}% ({n:,}/210 docs)" for p, n in
        [(10, 21), (20, 42), (30, 63), (40, 84), (50, 105), (60, 126), (70, 147), (80, 168), (90, 189), (100, 210)]]


def test_quiet_and_one_item_steps_show_nothing(capsys, monkeypatch):
    monkeypatch.setenv(progress.QUIET_ENV, "1")
    assert list(progress.counted(range(50), "BM25 search", 50, "queries")) == list(range(50))
    monkeypatch.delenv(progress.QUIET_ENV)
    assert list(progress.counted(["q"], "BM25 search", 1, "queries")) == ["q"]  # one query: no step
    assert capsys.readouterr().err == ""


def test_a_bar_with_rate_and_time_left_on_a_terminal():
    code = ("import time; from harness import progress\n"
            "for _ in progress.counted(range(40), 'encoding documents', 40, 'docs'): time.sleep(0.05)\n")
    primary, secondary = os.openpty()
    env = {k: v for k, v in os.environ.items() if k != progress.QUIET_ENV}
    child = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=secondary, stderr=secondary,
                             env={**env, "COLUMNS": "160", "TERM": "xterm"})
    os.close(secondary)
    output = b""
    while True:
        try:
            data = os.read(primary, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        output += data
    assert child.wait(timeout=60) == 0
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output.decode("utf-8", "replace"))
    assert "encoding documents" in text and "━" in text  # rich's bar
    assert re.search(r"\d+/40 docs", text) and re.search(r"[\d.]+ docs/s", text)
    assert re.search(r"\d+:\d\d:\d\d", text)  # time left


def test_libraries_tqdm_bars_are_turned_off():
    code = "from harness import progress; {}import tqdm; list(tqdm.tqdm(range(3), desc='theirs'))"
    env = {k: v for k, v in os.environ.items() if k not in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS")}
    theirs = subprocess.run([sys.executable, "-c", code.format("")], capture_output=True, text=True, env=env, cwd=REPO)
    assert "theirs: 100%" in theirs.stderr
    ours = subprocess.run([sys.executable, "-c", code.format("progress.quiet_libraries(); ")], capture_output=True,
                          text=True, env=env, cwd=REPO)
    assert ours.returncode == 0 and ours.stderr == ""


def test_run_shows_its_steps_and_quiet_silences_them(offline, tmp_path):
    env = {"HARNESS_HOME": str(tmp_path / "harness")}  # SciFact read again from ir_datasets' files
    args = ["run", str(SCIFACT_SUITE), "-d", "scifact", "-r", "bm25", "--max-queries", "20", "--latency-queries", "10"]
    done = run_cli(*args, "--results", str(tmp_path / "results"), env=env)
    assert done.returncode == 0, done.stderr
    for step in ("reading beir/scifact/test: 100% (5,183/5,183 docs", "BM25 search: 100% (20/20 queries",
                 "latency sampling: 100% (10/10 queries"):
        assert step in done.stderr, done.stderr
    assert "docs_iter" not in done.stderr and "it/s]" not in done.stderr  # no tqdm bar of ir_datasets'
    done = run_cli(*args, "--quiet", "--force", "--results", str(tmp_path / "results"), env=env)
    assert done.returncode == 0 and done.stderr == "", done.stderr
