"""Shared fixtures. Tests run offline: the real loading code (ir_datasets, transformers) is fed
from writable copies of the pre-seeded caches in ../shared (see ../shared/README.md).

The copies are made once per session, before any test imports ir_datasets or huggingface_hub,
because both read their cache variables when first imported.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARNESS_SHARED", REPO.parent / "shared"))
SCIFACT_SUITE = REPO / "suites" / "beir.yaml"
_ROOT: Path | None = None


def shared_missing(*parts: str) -> str | None:
    """Why ``../shared/<parts>`` cannot be used, or None when it is there."""
    path = SHARED.joinpath(*parts)
    if path.exists():
        return None
    return (f"needs {path} (see ../shared/README.md), or HARNESS_SHARED pointing to a copy of shared/; "
            "tests that need no cached data run without it")


def require_shared(*parts: str) -> Path:
    """``../shared/<parts>``, or the test is skipped with the reason. In CI it must be there: a
    skip would hide every test that reads real data."""
    reason = shared_missing(*parts)
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return SHARED.joinpath(*parts)


def pytest_configure(config):
    global _ROOT
    caches = SHARED / "cache"
    _ROOT = Path(tempfile.mkdtemp(prefix="harness-tests-"))
    # Without ../shared the libraries get empty caches of their own, never the user's: tests that
    # need the data skip (see ``offline``), the others run anywhere.
    for name in ("ir_datasets", "huggingface"):
        if (caches / name).is_dir():
            shutil.copytree(caches / name, _ROOT / name)
        else:
            (_ROOT / name).mkdir()
    if os.environ.get("CI") and (shared_missing("cache", "ir_datasets") or shared_missing("cache", "huggingface")):
        raise pytest.UsageError(f"The pre-seeded caches are missing: expected {caches}/ir_datasets and "
                                f"{caches}/huggingface (see ../shared/README.md), or set HARNESS_SHARED.")
    # Under pytest-xdist (run_all.sh test) each worker's torch takes its share of the cores, as a
    # Ray worker's does: two torch threads per core made every small op ~8 ms slower (bench/README.md).
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        from harness.executors import THREADS_ENV, threads_per_worker

        share = str(threads_per_worker(os.cpu_count(), workers))
        os.environ.setdefault(THREADS_ENV, share)
        os.environ.setdefault("OMP_NUM_THREADS", share)  # torch's own ops in the tests, before torch starts
    os.environ.update({
        "IR_DATASETS_HOME": str(_ROOT / "ir_datasets"),
        "HF_HOME": str(_ROOT / "huggingface"),
        "HF_HUB_OFFLINE": "1",
        "HARNESS_HOME": str(_ROOT / "harness"),
    })


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Without ../shared (and outside CI), a test that stops because a model or dataset is not in
    the caches is skipped with the path it needs, like those that ask for the ``offline`` fixture."""
    outcome = yield
    report = outcome.get_result()
    missing = shared_missing("cache", "huggingface") or shared_missing("cache", "ir_datasets")
    if not report.failed or call.excinfo is None or missing is None or os.environ.get("CI"):
        return
    from harness.errors import DataUnavailableError

    # transformers' own loaders say "not in the cache" with an OSError naming the hub
    offline_miss = call.excinfo.errisinstance(OSError) and "huggingface.co" in str(call.excinfo.value)
    if call.excinfo.errisinstance(DataUnavailableError) or offline_miss:
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {missing}")


def pytest_unconfigure(config):
    if _ROOT is not None:
        shutil.rmtree(_ROOT, ignore_errors=True)


@pytest.fixture(scope="session")
def cache_root() -> Path:
    """The session's writable copies of ../shared/cache; skips the test where there are none."""
    require_shared("cache", "ir_datasets")
    require_shared("cache", "huggingface")
    return _ROOT


@pytest.fixture
def offline(cache_root) -> Path:
    """Environment of an offline user whose caches hold BEIR SciFact and all-MiniLM-L6-v2; the
    harness's own cache is shared by the session's tests, so SciFact is parsed once."""
    return cache_root


def run_cli(*args: str, env: dict | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """The CLI as a user runs it, in a fresh process."""
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200", **(env or {})}, timeout=900)
