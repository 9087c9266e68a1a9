"""Shared pieces of the bench scripts: machine description, the GEMM throughput probe behind every
floor, JSON output."""

from __future__ import annotations

import datetime
import json
import os
import statistics
import time
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Gemm:
    """One product of the work: (m x k) @ (k x n), done ``count`` times per unit of work."""
    name: str
    m: int
    k: int
    n: int
    count: int = 1

    @property
    def flop(self) -> float:
        return 2.0 * self.m * self.k * self.n


def encoder_gemms(hidden: int, intermediate: int, layers: int, tokens: int = 4096,
                  projection_dim: int | None = None) -> list[Gemm]:
    """A BERT-style encoder's products on a batch of ``tokens`` rows, per forward pass: QKV (as one
    h x 3h product, the fused shape, at least as fast as three h x h ones), attention output,
    feed-forward up and down in every layer, and the projection once."""
    gemms = [Gemm("qkv", tokens, hidden, 3 * hidden, layers), Gemm("attn_out", tokens, hidden, hidden, layers),
             Gemm("ffn_up", tokens, hidden, intermediate, layers), Gemm("ffn_down", tokens, intermediate, hidden, layers)]
    if projection_dim:
        gemms.append(Gemm("projection", tokens, hidden, projection_dim, 1))
    return gemms


def maxsim_gemms(dim: int, query_rows: int = 1024, tile_cols: int = 1024) -> list[Gemm]:
    """Products that do MaxSim's work at width ``dim``: the kernel's own, a tile of document tokens
    (tile_cols x dim) against a query batch's rows (32 queries x 32 tokens), as
    harness.kernels.maxsim sizes them on a CPU, and larger ones the kernel could use instead (the
    last, a 256 MiB product, partly memory-bound). The floor takes the fastest of them
    (``Probe.fastest``): the best the hardware does on this work."""
    return [Gemm(f"tile_{tile_cols}x{query_rows}", tile_cols, dim, query_rows),
            Gemm("2048x2048", 2048, dim, 2048), Gemm("4096x4096", 4096, dim, 4096),
            Gemm("4096x16384", 4096, dim, 16384)]


@dataclass
class Probe:
    """GFLOP/s of each product over the repeats (the faster operand layout of two), and what they
    mean for the whole mix: ``effective`` is the work's FLOPs over the time its products would
    take at each one's best (or median, or worst) speed."""
    dtype: str
    gemms: list[Gemm]
    samples: dict[str, list[float]]
    layouts: dict[str, str] = field(default_factory=dict)

    def effective(self, stat: str = "best") -> float:
        pick = {"best": max, "worst": min, "median": statistics.median}[stat]
        flop = sum(g.count * g.flop for g in self.gemms)
        return flop / sum(g.count * g.flop / pick(self.samples[g.name]) for g in self.gemms)

    def fastest(self) -> Gemm:
        """The product with the best speed of all (for work any of them could do)."""
        return max(self.gemms, key=lambda g: max(self.samples[g.name]))

    def merged(self, other: "Probe") -> "Probe":
        """The samples of two probes of the same products (before and after the timed work)."""
        return Probe(self.dtype, self.gemms, {k: v + other.samples[k] for k, v in self.samples.items()},
                     self.layouts)

    def spread(self, gemm: Gemm | None = None) -> float:
        """(best - worst) / best over the repeats: of one product's speed, or of the mix's."""
        if gemm is not None:
            return 1 - min(self.samples[gemm.name]) / max(self.samples[gemm.name])
        return 1 - self.effective("worst") / self.effective("best")

    def summary(self) -> dict:
        return {"dtype": self.dtype, "effective_gflops": {s: self.effective(s) for s in ("best", "median", "worst")},
                "spread": self.spread(),
                "per_gemm": {g.name: {"m": g.m, "k": g.k, "n": g.n, "count": g.count, "layout": self.layouts.get(g.name),
                                      "best": max(self.samples[g.name]), "median": statistics.median(self.samples[g.name]),
                                      "worst": min(self.samples[g.name]), "repeats": len(self.samples[g.name])}
                             for g in self.gemms}}

    def describe(self) -> str:
        parts = ", ".join(f"{g.name} {max(self.samples[g.name]):.0f}" for g in self.gemms)
        return (f"{self.dtype} GEMM probe: effective {self.effective('best'):.1f} GFLOP/s best, "
                f"{self.effective('median'):.1f} median, {self.effective('worst'):.1f} worst "
                f"(spread {100 * self.spread():.0f}%); per shape best: {parts}")


def gemm_probe(gemms: list[Gemm], dtype: torch.dtype = torch.float32, repeat: int = 10,
               device: torch.device | str = "cpu") -> Probe:
    """Time each product ``repeat`` times into a preallocated output (``torch.mm(a, b, out=c)``),
    in both operand layouts a linear layer or the MaxSim kernel may use (``a @ w.t()`` with w
    (n x k), as nn.Linear does, and ``a @ b`` with b (k x n)), keeping the faster one. A fresh
    output on every call would time the allocator and first-touch page faults too (see
    ``legacy_matmul_gflops``). A timing covers enough products for about 20 ms (at least 50 on a
    GPU, between synchronisations), so that a small product is not timed at the clock's grain."""
    device = torch.device(device)
    gen = torch.Generator().manual_seed(0)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    samples, layouts = {}, {}
    with torch.inference_mode():
        for g in gemms:
            a = torch.randn(g.m, g.k, generator=gen).to(device=device, dtype=dtype)
            w = torch.randn(g.n, g.k, generator=gen).to(device=device, dtype=dtype)
            operands = {"a @ w.t()": w.t(), "a @ b": w.t().contiguous()}
            c = torch.empty(g.m, g.n, device=device, dtype=dtype)
            best_layout, best_rates = None, None
            for layout, b in operands.items():
                rates = timed_rates(lambda: torch.mm(a, b, out=c), g.flop, repeat, sync,
                                    min_inner=50 if device.type == "cuda" else 1)
                if best_rates is None or statistics.median(rates) > statistics.median(best_rates):
                    best_layout, best_rates = layout, rates
            samples[g.name], layouts[g.name] = best_rates, best_layout
    return Probe(str(dtype).removeprefix("torch."), gemms, samples, layouts)


def timed_rates(call, flop: float, repeat: int, sync=lambda: None, min_inner: int = 1) -> list[float]:
    """``repeat`` rates (G per second of ``flop`` a call) of ``call``, after two warm-up calls, each
    timing enough calls for about 20 ms (at least ``min_inner``, between ``sync``s)."""
    for _ in range(2):  # warm-up (and first touch of any output)
        call()
    sync()
    t = time.perf_counter()
    call()
    sync()
    inner = max(min_inner, round(0.02 / max(time.perf_counter() - t, 1e-6)))
    rates = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(inner):
            call()
        sync()
        rates.append(flop * inner / (time.perf_counter() - t) / 1e9)
    return rates


def legacy_matmul_gflops(dtype: torch.dtype, m: int = 4096, k: int = 384, n: int = 4096, repeat: int = 5,
                         device: torch.device | str = "cpu") -> float:
    """The old probe, kept to print the old floors beside the corrected ones: best-of-``repeat``
    throughput of one (m x k) @ (k x n) product ``a @ b`` with a freshly allocated output on every
    call (so it also times the allocator and the output's page faults), in GFLOP/s."""
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
