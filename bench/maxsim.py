"""Benchmark of harness.kernels.maxsim.maxsim_search against the matmul floor of this machine.

    .venv/bin/python bench/maxsim.py            # writes bench/results/maxsim.json

In one run it measures (1) torch matmul throughput (GFLOP/s) for float32 and bfloat16 on the
kernel's own product, a tile of document tokens against a query batch's rows, (1024 x K) @
(K x 1024) for K = each dim, and on (2048 x K) @ (K x 2048), (4096 x K) @ (K x 4096) and (4096 x K) @ (K x 16384)
(``common.maxsim_gemms``, ``common.gemm_probe``: output preallocated, the faster operand layout,
the spread over repeats), before and after the searches; the floor uses the fastest product's best
over all repeats (the best the hardware does on this work, whatever tile the kernel picks). The
old probe, two shapes ((4096 x K) @ (K x 16384), partly memory-bound, and (2048 x K) @ (K x 2048)
repeated, the faster kept), is printed beside it (``old_*``). (2) ``maxsim_search`` on synthetic
data shaped
like BEIR SciFact with a 32-token ColBERT query side: 300 queries x 32 real tokens, 5183
documents of at most 300 tokens (mean about 250), 384-dim float16 unit vectors; dim 128 is
Matryoshka truncation via ``dim=128`` on the same stored vectors. bfloat16 runs use the first
``--bf16-queries`` queries only when bf16 matmul is under half the float32 speed (as on AVX2-only
CPUs, where torch has no fast bf16 GEMM), so the bench stays within a few minutes; their floor is
computed for the same query count.

floor_s = 2 * query_tokens * doc_tokens * dim / throughput(dtype, K=dim); ratio = seconds / floor_s
(``old_ratio_to_floor`` uses the old probe). ``--queries N`` searches the first N queries only.
Each search is also checked against the float64 reference on a few queries.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import gemm_probe, maxsim_gemms  # noqa: E402
from harness.environment import cpu_model  # noqa: E402
from harness.kernels import maxsim as maxsim_module  # noqa: E402
from harness.kernels.maxsim import maxsim_search, reference_maxsim  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "maxsim.json"
N_DOCS, N_QUERIES, Q_LEN, FULL_DIM, MAX_LEN = 5183, 300, 32, 384, 300
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def old_matmul_gflops(dtype: torch.dtype, k: int, m: int, n: int, calls: int, repeats: int) -> float:
    """The old probe: best-of-``repeats`` throughput of ``calls`` back-to-back ``(m, k) @ (n, k).T`` products."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(m, k, generator=gen).to(dtype)
    b = torch.randn(n, k, generator=gen).to(dtype)
    out = torch.empty(m, n, dtype=dtype)
    with torch.inference_mode():
        torch.mm(a, b.t(), out=out)  # warm-up (and first touch of out)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(calls):
                torch.mm(a, b.t(), out=out)
            best = min(best, time.perf_counter() - t0)
    return 2.0 * m * n * k * calls / best / 1e9


def old_measure_matmul(dtype_name: str, k: int) -> dict[str, float]:
    """The old probe's shapes: the brief's shape (4096 x k) @ (k x 16384) (a 256 MiB product, partly memory-bound) and a
    cache-resident (2048 x k) @ (k x 2048) repeated; the floor uses the faster of the two."""
    fast = dtype_name == "fp32"
    big = old_matmul_gflops(DTYPES[dtype_name], k, 4096, 16384, 1, 5 if fast else 2)
    small = old_matmul_gflops(DTYPES[dtype_name], k, 2048, 2048, 10 if fast else 2, 5 if fast else 2)
    return {"4096x16384": big, "2048x2048": small}


def synthetic_scifact(seed: int = 0):
    rng = np.random.default_rng(seed)
    # SciFact abstracts at a 300-token cap: most documents near the cap, a tail of shorter ones.
    lengths = np.clip(np.rint(rng.normal(260, 55, N_DOCS)), 1, MAX_LEN).astype(np.int64)
    offsets = np.zeros(N_DOCS + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(lengths)
    total = int(offsets[-1])
    vectors = np.empty((total, FULL_DIM), dtype=np.float16)
    for r0 in range(0, total, 65536):
        block = rng.standard_normal((min(65536, total - r0), FULL_DIM), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        vectors[r0:r0 + block.shape[0]] = block
    queries = rng.standard_normal((N_QUERIES, Q_LEN, FULL_DIM), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=-1, keepdims=True)
    mask = np.ones((N_QUERIES, Q_LEN), dtype=bool)
    return torch.from_numpy(queries), torch.from_numpy(mask), vectors, offsets


def check(scores, ids, ref, tol) -> dict:
    """Compare the kernel's top-k rows with the float64 reference rows (same queries)."""
    order = np.argsort(-ref, axis=1, kind="stable")[:, :ids.shape[1]]
    err = float(np.abs(scores - np.take_along_axis(ref, order, 1)).max())
    err_own = float(np.abs(scores - np.take_along_axis(ref, ids, 1)).max())
    return {"max_abs_err_vs_reference_topk": err, "max_abs_err_own_ids": err_own,
            "ids_match": bool((ids == order).all()), "within_tol": err_own <= tol and err <= tol, "tol": tol}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per fp32 case (best kept)")
    parser.add_argument("--repeats-small", type=int, default=3, help="timed runs per fp32 case of dim <= 192")
    parser.add_argument("--bf16-queries", type=int, default=16,
                        help="queries for bf16 cases when bf16 matmul is < 1/2 fp32 speed (0: all)")
    parser.add_argument("--query-batch", type=int, default=None)
    parser.add_argument("--chunk-tokens", type=int, default=None)
    parser.add_argument("--tile-elems", type=int, default=None,
                        help="similarities per tile matmul (the kernel's _TILE_ELEMS), for tuning it")
    parser.add_argument("--only", choices=["fp32", "bf16"], default=None)
    parser.add_argument("--dims", default="384,128")
    parser.add_argument("--queries", type=int, default=N_QUERIES, help="search the first N of the 300 queries")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    torch.set_num_threads(os.cpu_count() or 1)
    started = time.perf_counter()
    dims = [int(d) for d in args.dims.split(",")]
    dtypes = [args.only] if args.only else list(DTYPES)
    kernel_kw = {}
    if args.query_batch:
        kernel_kw["query_batch"] = args.query_batch
    if args.chunk_tokens:
        kernel_kw["chunk_tokens"] = args.chunk_tokens
    if args.tile_elems:
        maxsim_module._TILE_ELEMS = args.tile_elems

    machine = {"cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
               "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
               "cpu_capability": torch.backends.cpu.get_cpu_capability(),
               "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
    print("machine:", json.dumps(machine))

    shapes: dict[str, dict[int, dict[str, float]]] = {name: {} for name in dtypes}  # the old probe
    probes = {name: {} for name in dtypes}
    for name in dtypes:
        for d in sorted(set(dims) | {384}):
            probes[name][d] = gemm_probe(maxsim_gemms(d), DTYPES[name], repeat=10 if name == "fp32" else 3)
            shapes[name][d] = old_measure_matmul(name, d)
            print(f"matmul {name} K={d}: " + ", ".join(f"{g.name} {max(probes[name][d].samples[g.name]):.1f}"
                                                      for g in probes[name][d].gemms) + " GFLOP/s; old probe: "
                  + ", ".join(f"{s} {v:.1f}" for s, v in shapes[name][d].items()) + " GFLOP/s", flush=True)
    throughput = {name: {d: max(v.samples[v.fastest().name]) for d, v in per.items()} for name, per in probes.items()}

    queries, mask, vectors, offsets = synthetic_scifact()
    doc_tokens = int(offsets[-1])
    lengths = np.diff(offsets)
    print(f"data: {N_QUERIES} queries x {Q_LEN} tokens, {N_DOCS} docs, {doc_tokens} doc tokens "
          f"(length mean {lengths.mean():.1f}, max {lengths.max()}), stored float16 {FULL_DIM}-dim", flush=True)

    n_check = 4
    refs = {d: reference_maxsim(queries[:n_check], mask[:n_check], vectors, offsets, dim=d) for d in dims}

    rows = []
    for name in dtypes:
        slow = name != "fp32" and "fp32" in throughput and throughput[name][384] < 0.5 * throughput["fp32"][384]
        if name != "fp32" and "fp32" not in throughput:
            slow = throughput[name][384] < 50.0
        n_q = args.bf16_queries if (slow and args.bf16_queries) else args.queries
        for d in dims:
            best, scores, ids = float("inf"), None, None
            for _ in range(1 if name != "fp32" else args.repeats_small if d <= 192 else args.repeats):
                t0 = time.perf_counter()
                scores, ids = maxsim_search(queries[:n_q], mask[:n_q], vectors, offsets, k=args.k,
                                            dim=None if d == FULL_DIM else d, compute_dtype=DTYPES[name],
                                            **kernel_kw)
                best = min(best, time.perf_counter() - t0)
            q_tokens = int(mask[:n_q].sum())
            flops = 2.0 * q_tokens * doc_tokens * d
            ok = check(scores[:n_check], ids[:n_check], refs[d], 1e-4 if name == "fp32" else 5e-2)
            rows.append({"dtype": name, "dim": d, "queries": n_q, "query_tokens": q_tokens, "doc_tokens": doc_tokens,
                         "seconds": best, "gflop": flops / 1e9, "achieved_gflops": flops / best / 1e9, **ok})
            print(f"  {name} dim {d}: {best:.2f} s ({n_q} queries)  ok={ok['within_tol']} "
                  f"err={ok['max_abs_err_own_ids']:.2e}", flush=True)

    # Throughput again after the searches: keep the best of both (the floor is then conservative).
    for name in dtypes:
        for d in list(shapes[name]):
            again = old_measure_matmul(name, d)
            shapes[name][d] = {s: max(v, again[s]) for s, v in shapes[name][d].items()}
            probes[name][d] = probes[name][d].merged(gemm_probe(maxsim_gemms(d), DTYPES[name],
                                                                repeat=10 if name == "fp32" else 3))
            throughput[name][d] = max(probes[name][d].samples[probes[name][d].fastest().name])
    for row in rows:
        gf, old_gf = throughput[row["dtype"]][row["dim"]], max(shapes[row["dtype"]][row["dim"]].values())
        probe = probes[row["dtype"]][row["dim"]]
        row["matmul_gflops"], row["probe_shape"], row["probe_spread"] = gf, probe.fastest().name, probe.spread(probe.fastest())
        row["floor_seconds"] = row["gflop"] / gf
        row["ratio_to_floor"] = row["seconds"] / row["floor_seconds"]
        row["old_matmul_gflops"], row["old_floor_seconds"] = old_gf, row["gflop"] / old_gf
        row["old_ratio_to_floor"] = row["seconds"] / row["old_floor_seconds"]

    header = (f"{'dtype':5} {'dim':>4} {'queries':>7} {'seconds':>8} {'floor_s':>8} {'ratio':>6} "
              f"{'GFLOP/s':>8} {'mm GF/s':>8} {'spread':>6} {'old_fl_s':>8} {'old_rat':>7} {'old_mm':>7} {'ok':>3}")
    print()
    print(header)
    for r in rows:
        print(f"{r['dtype']:5} {r['dim']:>4} {r['queries']:>7} {r['seconds']:>8.2f} {r['floor_seconds']:>8.2f} "
              f"{r['ratio_to_floor']:>6.2f} {r['achieved_gflops']:>8.1f} {r['matmul_gflops']:>8.1f} "
              f"{100 * r['probe_spread']:>5.0f}% {r['old_floor_seconds']:>8.2f} {r['old_ratio_to_floor']:>7.2f} "
              f"{r['old_matmul_gflops']:>7.1f} "
              f"{'yes' if r['within_tol'] else 'NO':>3}")
    elapsed = time.perf_counter() - started
    print(f"total bench time {elapsed:.0f} s")

    result = {"machine": machine,
              "probes": {n: {str(d): v.summary() for d, v in t.items()} for n, t in probes.items()},
              "old_probe_gflops": {n: {str(d): v for d, v in t.items()} for n, t in shapes.items()},
              "data": {"n_queries": N_QUERIES, "q_len": Q_LEN, "n_docs": N_DOCS, "doc_tokens": doc_tokens,
                       "doc_len_mean": float(lengths.mean()), "doc_len_max": int(lengths.max()),
                       "stored_dim": FULL_DIM, "stored_dtype": "float16", "k": args.k},
              "kernel_kwargs": kernel_kw, "tile_elems": maxsim_module._TILE_ELEMS, "runs": rows, "bench_seconds": elapsed}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
