"""Shared pieces of the bench scripts: machine description, matmul throughput, JSON output."""

from __future__ import annotations

import datetime
import json
import os
import time
from pathlib import Path

import torch

from harness.environment import cpu_model

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "date": datetime.date.today().isoformat()}


def matmul_gflops(dtype: torch.dtype, m: int = 4096, k: int = 384, n: int = 4096, repeat: int = 5) -> float:
    """Best-of-``repeat`` throughput of one (m x k) @ (k x n) product, in GFLOP/s."""
    a = torch.randn(m, k).to(dtype)
    b = torch.randn(k, n).to(dtype)
    with torch.inference_mode():
        a @ b  # warm-up
        best = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t)
    return 2 * m * k * n / best / 1e9


def write_json(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=True))
    return path


def print_table(rows: list[dict], columns: list[str]) -> None:
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for r in rows:
        print("  ".join(_fmt(r.get(c)).ljust(widths[c]) for c in columns))


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return "" if value is None else str(value)
