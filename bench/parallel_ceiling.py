"""What two one-thread workers can gain on this machine at all: the same fixed work, one process
alone and then two processes at once, each on one thread.

    .venv/bin/python bench/parallel_ceiling.py [--seconds 20] [--rounds 2]   # writes bench/results/parallel_ceiling.json

The scale bench's target (2 encoding workers at least 1.8x the documents per second of 1) assumes
two cores that do not slow each other down. On a virtual machine they may: two vCPUs can be
hyperthreads of one physical core, or share its caches and memory bandwidth. This script measures
the ceiling with no harness code in the way: each process repeats a unit of work for about
``--seconds`` and reports units per second, alone and side by side, started together on a barrier.
Two kinds of work:

- ``gemm``: the document encoder's own products (MiniLM's feed-forward up-projection shape,
  4096 x 384 @ 384 x 1536, float32, output preallocated), compute-bound;
- ``encode``: the MiniLM encoder's forward pass over one fixed batch (16 documents of 256
  tokens, random ids, eager torch), the encoding step's mix of GEMMs, attention and element-wise
  work. Needs no weights: the model is built from MiniLM's shape with random weights.

``ceiling`` = (units per second of two processes together) / (units per second of one alone).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import machine, print_table, write_json  # noqa: E402


def _unit(kind: str):
    import torch

    torch.set_num_threads(1)
    if kind == "gemm":
        a, b = torch.randn(4096, 384), torch.randn(384, 1536)
        out = torch.empty(4096, 1536)
        return lambda: torch.matmul(a, b, out=out)
    from transformers import BertConfig, BertModel

    config = BertConfig(hidden_size=384, intermediate_size=1536, num_hidden_layers=6, num_attention_heads=12,
                        vocab_size=30522)
    torch.manual_seed(0)
    model = BertModel(config).eval()
    ids = torch.randint(1000, 30000, (16, 256))
    mask = torch.ones_like(ids)

    def forward():
        with torch.inference_mode():
            model(input_ids=ids, attention_mask=mask)
    return forward


def _worker(kind: str, seconds: float, barrier, results) -> None:
    unit = _unit(kind)
    unit()  # warm: allocations, oneDNN primitives
    barrier.wait()
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        unit()
        n += 1
    results.put(n / (time.perf_counter() - start))


def rate(kind: str, processes: int, seconds: float) -> float:
    """Units per second of ``processes`` one-thread processes running at once, summed."""
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(kind, seconds, barrier, results)) for _ in range(processes)]
    for p in procs:
        p.start()
    total = sum(results.get() for _ in procs)
    for p in procs:
        p.join()
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="how long each measurement runs")
    parser.add_argument("--rounds", type=int, default=2, help="alternate 1 and 2 processes this many times")
    parser.add_argument("--kinds", nargs="+", default=["gemm", "encode"], choices=["gemm", "encode"])
    args = parser.parse_args()
    rows = []
    for kind in args.kinds:
        for r in range(args.rounds):
            # Alternating the order cancels a drift of the machine's speed over the run.
            order = (1, 2) if r % 2 == 0 else (2, 1)
            got = {n: rate(kind, n, args.seconds) for n in order}
            rows.append({"kind": kind, "round": r + 1, "one_per_s": round(got[1], 3),
                         "two_per_s": round(got[2], 3), "ceiling": round(got[2] / got[1], 3)})
    print_table(rows, ["kind", "round", "one_per_s", "two_per_s", "ceiling"])
    path = write_json("parallel_ceiling", {"machine": machine(), "seconds": args.seconds, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
