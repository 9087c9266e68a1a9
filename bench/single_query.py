"""One exact query at a time against its floors: the full-width store cut per query (before) and
the truncated store materialised once (harness/index/truncated.py, after).

    .venv/bin/python bench/single_query.py [--queries 10] [--store-dir DIR]   # writes bench/results/single_query.json

A SciFact-shaped synthetic store (5,183 documents, 1,307,434 float16 384-dim unit vectors, as the
MiniLM encoding has) in a temporary folder, one 32-token query at a time, k=10, ``maxsim_search``
exactly as the retriever calls it. Floors, measured in the same run:

- compute floor = 2 x 32 x tokens x dim / the float32 matmul throughput of the skinny product
  (65,536 x dim) @ (dim x 32) (``common.gemm_probe``: output preallocated, the faster operand
  layout, best of 5), torch's default threads, as the search runs;
- read floor = the bytes one search reads (the searched store's vector file) / the read bandwidth
  of that file through the kernel's own chunk reader, warm page cache, best of 3.

``ratio`` = median query seconds / max(compute floor, read floor); the issue's target is <= 2.
``--store-dir`` keeps the synthetic store (and its truncated copy) in DIR and reuses them when
there, so that two kernels can be timed on the same files one after the other.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import Gemm, gemm_probe, machine, print_table, write_json  # noqa: E402
from harness.index import truncated  # noqa: E402
from harness.index.token_store import TokenStore, TokenStoreWriter  # noqa: E402
from harness.kernels.chunks import ChunkReader  # noqa: E402
from harness.kernels.maxsim import maxsim_search  # noqa: E402

N_DOCS, TOKENS, FULL, Q_LEN = 5183, 1_307_434, 384, 32


def synthetic_store(path: Path):
    rng = np.random.default_rng(0)
    counts = rng.integers(1, 300, N_DOCS)
    counts = np.maximum(1, np.round(counts * TOKENS / counts.sum())).astype(np.int64)
    counts[-1] += TOKENS - counts.sum()
    writer = TokenStoreWriter(path, counts, FULL)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    step = 200
    for first in range(0, N_DOCS, step):
        stop = min(N_DOCS, first + step)
        x = rng.standard_normal((int(offsets[stop] - offsets[first]), FULL)).astype(np.float32)
        writer.write_span(first, stop, (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float16))
    return writer.finish()


def reused(path: Path, build):
    """(the store at ``path`` if a finished one is there, else ``build()``; True when reused)."""
    if (path / "manifest.json").exists():
        return TokenStore.load(path), True
    return build(), False


def gflops(dim: int) -> float:
    probe = gemm_probe([Gemm("skinny", 65536, dim, Q_LEN)], repeat=5)
    return max(probe.samples["skinny"])


def read_bandwidth(vectors) -> float:
    """Bytes per second reading the whole vector file in the kernel's chunks (65,536 rows)."""
    reader = ChunkReader(vectors, 65536)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for r0 in range(0, len(vectors), 65536):
            reader.rows(r0, min(len(vectors), r0 + 65536))
        best = min(best, time.perf_counter() - t)
    return vectors.nbytes / best


def timed(fn, queries: int) -> float:
    fn(0)  # warm-up
    seconds = []
    for i in range(1, queries + 1):
        t = time.perf_counter()
        fn(i)
        seconds.append(time.perf_counter() - t)
    return float(np.median(seconds))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=10)
    parser.add_argument("--store-dir", type=Path, default=None, help="keep and reuse the synthetic store here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(dir="/var/tmp") as scratch:
        tmp = args.store_dir or Path(scratch)
        store, _ = reused(tmp / "store", lambda: synthetic_store(tmp / "store"))
        rng = np.random.default_rng(1)
        q = rng.standard_normal((args.queries + 1, Q_LEN, FULL)).astype(np.float32)
        q /= np.linalg.norm(q, axis=2, keepdims=True)
        mask = np.ones(q.shape[:2], dtype=bool)
        for dim in (128, 384):
            compute_floor = 2 * Q_LEN * TOKENS * dim / (gflops(dim) * 1e9)
            full = "full store, cut per query" if dim < FULL else "full store"  # nothing to cut at full width
            variants = [(full, store, lambda i: maxsim_search(
                q[i:i + 1], mask[i:i + 1], store.vectors, store.offsets, 10, dim=dim))]
            if dim < FULL:
                t = time.perf_counter()
                cut, was_there = reused(tmp / f"cut{dim}", lambda: truncated.build(tmp / f"cut{dim}", store, dim, {}))
                built = "reused" if was_there else f"built once, {time.perf_counter() - t:.1f} s"
                cq = truncated.cut_queries(q, dim)
                variants.append((f"truncated store ({built})", cut, lambda i: maxsim_search(
                    cq[i:i + 1], mask[i:i + 1], cut.vectors, cut.offsets, 10)))
            for name, searched, fn in variants:
                read_floor = searched.vectors.nbytes / read_bandwidth(searched.vectors)
                seconds = timed(fn, args.queries)
                rows.append({"dim": dim, "search": name, "bytes read MB": searched.vectors.nbytes / 1e6,
                             "query ms": 1000 * seconds, "compute floor ms": 1000 * compute_floor,
                             "read floor ms": 1000 * read_floor, "ratio": seconds / max(compute_floor, read_floor)})
    print_table(rows, ["dim", "search", "bytes read MB", "query ms", "compute floor ms", "read floor ms", "ratio"])
    print(write_json("single_query", {"machine": machine(), "queries": args.queries, "rows": rows}))


if __name__ == "__main__":
    main()
