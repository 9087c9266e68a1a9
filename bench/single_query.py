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
  of that file through the kernel's own chunk reader, warm page cache, best of 3, the faster of
  copying it into the reader's buffer and reading it through the map (what a single query does);
  the copy's time is shown beside it.

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


def read_bandwidth(vectors) -> tuple[float, float]:
    """Bytes per second reading the whole vector file through the kernel's chunk reader, warm page
    cache, best of 3: (copied into its buffer in 65,536-row chunks, as batched searches read;
    through the map in the single query's 16,384-row spans, each byte read once by a bitwise-or
    reduction, as a single query's search reads). The floor takes the faster."""
    reader = ChunkReader(vectors, 65536)
    cuts = list(range(0, len(vectors), 16384)) + [len(vectors)]

    def copied():
        for r0 in range(0, len(vectors), 65536):
            reader.rows(r0, min(len(vectors), r0 + 65536))

    def mapped():
        for _, _, rows in reader.spans(cuts, background=False):
            np.bitwise_or.reduce(np.ascontiguousarray(rows).view(np.uint64).ravel())

    rates = []
    for read in (copied, mapped):
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            read()
            best = min(best, time.perf_counter() - t)
        rates.append(vectors.nbytes / best)
    return rates[0], rates[1]


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
                copied, mapped = read_bandwidth(searched.vectors)
                read_floor = searched.vectors.nbytes / max(copied, mapped)
                seconds = timed(fn, args.queries)
                rows.append({"dim": dim, "search": name, "bytes read MB": searched.vectors.nbytes / 1e6,
                             "query ms": 1000 * seconds, "compute floor ms": 1000 * compute_floor,
                             "read floor ms": 1000 * read_floor, "copied read ms": 1000 * searched.vectors.nbytes / copied,
                             "ratio": seconds / max(compute_floor, read_floor)})
    print_table(rows, ["dim", "search", "bytes read MB", "query ms", "compute floor ms", "read floor ms", "copied read ms",
                      "ratio"])
    print(write_json("single_query", {"machine": machine(), "queries": args.queries, "rows": rows}))


if __name__ == "__main__":
    main()
