"""Imported once by the server that ``tests.faults.forked`` forks commands from: the harness and
the libraries of a BM25 run, warmed by one such run on the SciFact sample the fault tests use.

ranx keeps document ids in numba typed containers whose type is the ids' longest length, and
compiles their methods (uncached, seconds) for each new length: a toy evaluation leaves that to
every forked run. Nothing here starts a thread pool that a forked child could not use (torch is
left to the children that need it)."""

import os
import shutil
import sys
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import bm25s  # noqa: F401
import ir_datasets  # noqa: F401
import pyarrow.parquet  # noqa: F401

import harness.pipeline  # noqa: F401
from harness.cli import main

SUITE = Path(__file__).resolve().parents[2] / "suites" / "beir.yaml"
SAMPLE = ("--max-queries", "50", "--max-documents", "1000", "--latency-queries", "0")

_work = Path(tempfile.mkdtemp(prefix="harness-warm-"))
_home = os.environ.get("HARNESS_HOME")
os.environ["HARNESS_HOME"] = str(_work / "home")
try:
    with open(os.devnull, "w") as quiet, redirect_stdout(quiet), redirect_stderr(quiet):  # stdout is the server's
        main(["run", str(SUITE), "-d", "scifact", "-r", "bm25", "--results", str(_work / "results"), *SAMPLE])
except SystemExit as e:  # a failed warm-up only makes the forked runs slower
    print(f"the warm-up run ended with status {e.code}", file=sys.stderr)
finally:
    if _home is None:
        del os.environ["HARNESS_HOME"]
    else:
        os.environ["HARNESS_HOME"] = _home
    shutil.rmtree(_work, ignore_errors=True)
