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


def machine(device: torch.device | None = None) -> dict:
    info = {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "date": datetime.date.today().isoformat()}
    if device is not None and device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def matmul_gflops(dtype: torch.dtype, m: int = 4096, k: int = 384, n: int = 4096, repeat: int = 5,
                  device: torch.device | str = "cpu") -> float:
    """Best-of-``repeat`` throughput of one (m x k) @ (k x n) product, in GFLOP/s. On a GPU each
    timing covers 50 products (one is a few microseconds) between synchronisations."""
    device = torch.device(device)
    a = torch.randn(m, k, device=device).to(dtype)
    b = torch.randn(k, n, device=device).to(dtype)
    inner = 50 if device.type == "cuda" else 1

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    with torch.inference_mode():
        for _ in range(inner):  # warm-up
            a @ b
        sync()
        best = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            for _ in range(inner):
                a @ b
            sync()
            best = min(best, (time.perf_counter() - t) / inner)
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
