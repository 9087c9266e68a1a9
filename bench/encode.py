"""Document encoding speed against its compute floor, on BEIR SciFact, per precision and device.

    python bench/encode.py [--limit N] [--doc-maxlen 300] [--precision fp32 bf16] [--device auto]
    python bench/encode.py --runs DIR     # also search at every dim, write TREC runs to DIR
    python bench/encode.py --export-texts scifact.json.gz   # for a machine without the dataset
    python bench/encode.py --texts scifact.json.gz --model ./minilm --runs DIR
    python bench/encode.py --store-dir /dev/shm /var/tmp   # the store in memory, then on a disk
    python bench/encode.py --precision fp32 --cpu-kernels eager fused   # before / after, one run

The floor is the forward pass's FLOPs over the GEMM throughput measured here, on the same device
and in the same run: per token and layer 24*h^2 (QKV, output, feed-forward) + 4*L*h (attention
over the document's true length L), plus 2*h*dim for a projection. The throughput is the model's
own products at the encoder's batch size (``common.encoder_gemms``: QKV, attention output,
feed-forward up and down, projection), each into a preallocated output, probed before and after
the encodings; the floor uses each product's best speed over all repeats, and the table shows the
spread. ``old_*`` columns repeat the floor with the old probe (one 4096x384 @ 384x4096 product
into a fresh output each call), which read 20-30% low, so old ratios looked better than they were.
The timed encoding includes tokenisation and writing the float16 token store, as in `harness run`; ``--stages`` also times
tokenisation alone and the forward passes alone (no gathering, no writes), to show which one bounds
the encoding on a fast device. ``--store-dir`` picks the folders the store is written to (one timed
encoding each), and for each one a probe writes and flushes as many bytes as the store has, in
1 MiB positioned writes, to show what that folder's disk alone costs. On a GPU, one small
encoding before the timed one pays for CUDA's start-up (kernel loading, cuBLAS handles).

int8 is timed against the fp32 floor (the same FLOPs). With int8 asked for, a probe of its own
times ``Int8Linear`` on the same products, before and after the encodings: its two int8 products alone
(``int8_gemm_gops``) and the whole layer call, quantising its input per token and scaling back
(``int8_layer_gops``), both counted as the layer's FLOPs, with the floors they give; the gap from the layer floor to the encoding is
what is not a linear layer (attention, LayerNorm, GELU, the residual adds, tokenising, the store).

``--cpu-kernels eager fused`` encodes fp32 twice in one process: the plain transformers forward
with glibc's allocator defaults, then oneDNN's fused linear kernels with freed pages kept
(harness/encoders/cpu_kernels.py). Keep eager first: the fused encoding changes glibc's settings,
and after it they are fixed at their initial values, no longer glibc's adaptive ones.

With ``--runs``, each precision's store is searched exactly (the harness's MaxSim kernel, on the
same device, bf16 compute for bf16 as the late_interaction retriever does) at every ``--dims``,
and the top-100 of each query is written as a TREC run; score them with
``harness evaluate --run FILE --suite suites/beir.yaml -d scifact``.

Needs IR_DATASETS_HOME and HF_HOME holding SciFact and all-MiniLM-L6-v2 (./run_all.sh seeds them
from ../shared), or ``--texts`` and a local ``--model`` folder.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (encoder_gemms, gemm_probe, legacy_matmul_gflops, machine, print_table, timed_rates,  # noqa: E402
                    write_json)

from harness.encoders.checkpoint import load_checkpoint  # noqa: E402
from harness.devices import resolve_device  # noqa: E402
from harness.encoders.multivector import MultiVectorEncoder  # noqa: E402
from harness.index.token_store import TokenStoreWriter  # noqa: E402


def forward_flops(lengths: list[int], layers: int, hidden: int, projection_dim: int | None) -> float:
    per_token = 24 * hidden * hidden * layers + (2 * hidden * projection_dim if projection_dim else 0)
    return float(sum(n * per_token + layers * 4 * n * n * hidden for n in lengths))


def scifact_texts() -> dict:
    """Document and query ids and texts, joined as the beir suite joins them."""
    from harness.data.load import load_dataset
    from harness.suite import load_suite

    spec = load_suite(Path(__file__).resolve().parents[1] / "suites" / "beir.yaml").dataset("scifact")
    data = load_dataset(spec, "beir")
    return {"dataset": "beir/scifact/test", "doc_ids": list(data.corpus.ids),
            "documents": data.corpus.joined(spec.text.document_fields, spec.text.separator),
            "query_ids": list(data.queries.ids), "queries": list(data.queries.texts)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def forward_only_seconds(encoder: MultiVectorEncoder, ids: list[list[int]]) -> float:
    """The forward passes of the timed encoding alone: same batches, no gathering or store writes."""
    import numpy as np

    from harness.encoders.batches import length_sorted_batches

    lengths = [len(s) for s in ids]
    pad = encoder.tokenizer.pad_token_id or 0
    inputs = []
    for batch in length_sorted_batches(lengths, encoder.batch_tokens):
        length = max(lengths[i] for i in batch)
        x = np.full((len(batch), length), pad, dtype=np.int64)
        a = np.zeros((len(batch), length), dtype=np.int64)
        for j, i in enumerate(batch):
            x[j, : lengths[i]] = ids[i]
            a[j, : lengths[i]] = 1
        inputs.append((x, a))
    _sync(encoder.device)
    t = time.perf_counter()
    for x, a in inputs:
        encoder._forward_padded(x, a)
    _sync(encoder.device)
    return time.perf_counter() - t


def int8_linear_probe(gemms, repeat: int = 10) -> dict[str, dict[str, float]]:
    """Per product of ``gemms`` (the encoder's shapes), the best GOP/s over ``repeat`` timings of
    an ``Int8Linear`` (random weights): ``gemm``, its two int8 products alone (input quantised before),
    and ``layer``, the whole layer call (quantising the float32 input per token, the product,
    scaling back and adding the bias), each at least ~20 ms of calls per timing. The rate counts the
    layer's own FLOPs (2mkn, as the floors do), not the two products'."""
    from harness.encoders.int8_linear import Int8Linear, quantize_rows

    gen = torch.Generator().manual_seed(0)
    out = {}
    with torch.inference_mode():
        for g in gemms:
            layer = Int8Linear(torch.nn.Linear(g.k, g.n))
            x = torch.randn(g.m, g.k, generator=gen)
            high, low, _ = quantize_rows(x)

            def product():  # both int8 products and their sum, the input's pieces made before
                return layer.product(high, low)

            out[g.name] = {name: max(timed_rates(call, g.flop, repeat))
                           for name, call in (("gemm", product), ("layer", lambda: layer(x)))}
    return out


def int8_effective(probe: dict[str, dict[str, float]], gemms, kind: str) -> float:
    """GOP/s of the encoder's products together at the probe's best rates, weighted by FLOPs."""
    seconds = sum(g.flop * g.count / (probe[g.name][kind] * 1e9) for g in gemms)
    return sum(g.flop * g.count for g in gemms) / seconds / 1e9


def disk_seconds(folder: Path, nbytes: int) -> tuple[float, float]:
    """(write s, fsync s) of ``nbytes`` written to a new file in ``folder`` in 1 MiB positioned writes."""
    block = os.urandom(1 << 20)
    with tempfile.TemporaryDirectory(dir=folder) as tmp, open(Path(tmp) / "probe", "wb", buffering=0) as f:
        t = time.perf_counter()
        for start in range(0, nbytes, len(block)):
            os.pwrite(f.fileno(), block[: nbytes - start], start)
        written = time.perf_counter()
        os.fsync(f.fileno())
        return written - t, time.perf_counter() - written


def write_runs(encoder: MultiVectorEncoder, store, texts: dict, dims: list[int], precision: str, folder: Path,
               depth: int = 100) -> list[dict]:
    from harness.kernels.maxsim import maxsim_search

    queries, mask = encoder.encode_queries(texts["queries"])
    rows = []
    for dim in dims:
        _sync(encoder.device)
        t = time.perf_counter()
        scores, indices = maxsim_search(queries, mask, store.vectors, store.offsets, depth, dim=dim,
                                        compute_dtype=encoder.dtype, device=encoder.device)
        seconds = time.perf_counter() - t
        path = folder / f"scifact-{precision}-d{dim}.run"
        with path.open("w") as f:
            for qid, s_row, i_row in zip(texts["query_ids"], scores, indices):
                for rank, (s, i) in enumerate(zip(s_row, i_row), 1):
                    f.write(f"{qid} Q0 {texts['doc_ids'][i]} {rank} {s:.6f} {precision}-d{dim}\n")
        rows.append({"precision": precision, "dim": dim, "search_s": seconds, "run": path.name})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--limit", type=int, default=None, help="encode only the first N documents")
    parser.add_argument("--doc-maxlen", type=int, default=300)
    parser.add_argument("--query-maxlen", type=int, default=32)
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--cpu-kernels", nargs="+", default=["fused"], choices=["eager", "fused"],
                        help="fp32 on a CPU: encode once with each, in this order (eager first: see above)")
    parser.add_argument("--batch-tokens", type=int, default=None, help="default: the encoder's (4096 on a CPU)")
    parser.add_argument("--repeat", type=int, default=1, help="timed encodings per store folder (the best is kept)")
    parser.add_argument("--chunk-tokens", type=int, default=1 << 18,
                        help="encode chunks of chunk_tokens // doc_maxlen documents (the encoder's default)")
    parser.add_argument("--store-dir", type=Path, nargs="+", default=[None],
                        help="folders to write the timed store in, one encoding each (default: a temporary folder)")
    parser.add_argument("--texts", type=Path, help="read ids and texts from this file (see --export-texts)")
    parser.add_argument("--export-texts", type=Path, help="write SciFact's ids and texts here, and stop")
    parser.add_argument("--runs", type=Path, help="search every --dims and write TREC runs into this folder")
    parser.add_argument("--dims", type=int, nargs="+", default=[384, 256, 128, 64])
    parser.add_argument("--name", default="encode", help="name of the JSON written under bench/results")
    parser.add_argument("--stages", action="store_true",
                        help="also time tokenisation and the forward passes alone (one more pass)")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count())

    if args.export_texts:
        with gzip.open(args.export_texts, "wt", encoding="utf-8") as f:
            json.dump(scifact_texts(), f)
        print("wrote", args.export_texts)
        return
    if args.texts:
        with gzip.open(args.texts, "rt", encoding="utf-8") as f:
            texts = json.load(f)
    else:
        texts = scifact_texts()
    documents = texts["documents"][: args.limit]
    device = torch.device(resolve_device(args.device))
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16, "int8": torch.float32}
    probed = sorted({"fp32"} | {"bf16" for p in args.precision if p == "bf16"})
    overrides = {"doc_maxlen": args.doc_maxlen, "query_maxlen": args.query_maxlen}
    legacy = {p: legacy_matmul_gflops(dtypes[p], device=device) for p in probed}
    probes, gemms, int8_probe = {}, None, None
    rows, search_rows = [], []
    encodings = [(p, k) for p in args.precision for k in (args.cpu_kernels if p == "fp32" else ["fused"])]
    for precision, cpu_kernels in encodings:
        ckpt = load_checkpoint(args.model, format="plain", overrides=overrides)
        encoder = MultiVectorEncoder(ckpt, precision=precision, batch_tokens=args.batch_tokens, device=str(device),
                                     chunk_tokens=args.chunk_tokens, cpu_kernels=cpu_kernels)
        config = encoder.model.config
        if gemms is None:  # the model's own products, probed before the encodings (and again after)
            gemms = encoder_gemms(config.hidden_size, config.intermediate_size, config.num_hidden_layers,
                                  encoder.batch_tokens, encoder.dim if encoder.projection is not None else None)
            probes = {p: gemm_probe(gemms, dtypes[p], device=device) for p in probed}
            int8_probe = int8_linear_probe(gemms) if "int8" in args.precision else None
        t = time.perf_counter()
        ids, _ = encoder.document_inputs(documents)
        tokenize_s = time.perf_counter() - t
        flops = forward_flops([len(s) for s in ids], config.num_hidden_layers, config.hidden_size,
                              encoder.dim if encoder.projection is not None else None)
        forward_s = forward_first_s = None
        for n, store_dir in enumerate(args.store_dir):
            with tempfile.TemporaryDirectory(dir=store_dir) as tmp:
                if device.type == "cuda":
                    encoder.encode_documents(documents[:64], lambda c, d: TokenStoreWriter(Path(tmp) / "warm", c, d))
                timings = []
                for r in range(args.repeat):
                    path = Path(tmp) / f"s{r}"  # each encoding writes a new store
                    _sync(device)
                    t = time.perf_counter()
                    store = encoder.encode_documents(documents, lambda c, d: TokenStoreWriter(path, c, d))
                    _sync(device)
                    timings.append(time.perf_counter() - t)
                seconds = min(timings)
                if args.runs and n == 0:
                    args.runs.mkdir(parents=True, exist_ok=True)
                    name = precision if len(args.cpu_kernels) == 1 or precision != "fp32" else f"fp32-{cpu_kernels}"
                    search_rows += write_runs(encoder, store, {**texts, "documents": documents}, args.dims,
                                              name, args.runs)
                n_tokens, store_bytes = store.n_tokens, store.nbytes()
                del store
                probe = disk_seconds(Path(tmp), store_bytes) if args.stages else (None, None)
            if args.stages and forward_s is None:
                # twice: the first pass meets new batch shapes (the timed encodings batch within chunks)
                forward_first_s = forward_only_seconds(encoder, ids)
                forward_s = forward_only_seconds(encoder, ids)
            rows.append({"precision": precision, "cpu_kernels": encoder.cpu_kernels, "device": str(device), "store_dir": str(store_dir or tempfile.gettempdir()),
                         "documents": len(documents), "input_tokens": int(sum(map(len, ids))),
                         "stored_tokens": n_tokens, "store_bytes": store_bytes, "tflop": flops / 1e12,
                         "seconds": seconds, "seconds_each": timings, "first_s": timings[0],
                         "docs_per_s": len(documents) / seconds,
                         "tokenize_s": tokenize_s, "forward_only_s": forward_s, "forward_only_first_s": forward_first_s,
                         "disk_write_s": probe[0], "disk_fsync_s": probe[1]})
    # Probed again after the encodings: the floor takes each product's best over both probes.
    probes = {p: probe.merged(gemm_probe(gemms, dtypes[p], device=device)) for p, probe in probes.items()}
    for p in probed:
        legacy[p] = max(legacy[p], legacy_matmul_gflops(dtypes[p], device=device))
    if int8_probe is not None:  # each product's best over both probes, as for the float ones
        again = int8_linear_probe(gemms)
        int8_probe = {g: {k: max(v, again[g][k]) for k, v in rates.items()} for g, rates in int8_probe.items()}
    for row in rows:
        own = "bf16" if row["precision"] == "bf16" else "fp32"  # int8 is measured against the fp32 floor
        flops = row["tflop"] * 1e12
        floor, fp32_floor = flops / (probes[own].effective() * 1e9), flops / (probes["fp32"].effective() * 1e9)
        row.update({"matmul_gflops": probes[own].effective(), "matmul_gflops_median": probes[own].effective("median"),
                    "probe_spread": probes[own].spread(), "floor_s": floor, "ratio_to_floor": row["seconds"] / floor,
                    "ratio_to_fp32_floor": row["seconds"] / fp32_floor,
                    "forward_ratio_to_fp32_floor": row["forward_only_s"] / fp32_floor if row["forward_only_s"] else None,
                    "old_matmul_gflops": legacy[own], "old_floor_s": flops / (legacy[own] * 1e9),
                    "old_ratio_to_floor": row["seconds"] / (flops / (legacy[own] * 1e9))})
        if row["precision"] == "int8":  # its products alone, and its layers whole, at the int8 probe's best
            gemm_gops, layer_gops = (int8_effective(int8_probe, gemms, k) for k in ("gemm", "layer"))
            row.update({"int8_gemm_gops": gemm_gops, "int8_layer_gops": layer_gops,
                        "int8_gemm_floor_s": flops / (gemm_gops * 1e9), "int8_layer_floor_s": flops / (layer_gops * 1e9)})
    for probe in probes.values():
        print(probe.describe())
    print("old probe (4096x384 @ 384x4096, fresh output): " + ", ".join(f"{p} {v:.1f} GFLOP/s" for p, v in legacy.items()))
    if int8_probe is not None:
        print("int8 probe (Int8Linear, best GOP/s): " + ", ".join(
            f"{g} product {r['gemm']:.0f} / layer {r['layer']:.0f}" for g, r in int8_probe.items()))
    print_table(rows, ["precision", "cpu_kernels", "device", "documents", "input_tokens", "tflop", "seconds", "floor_s",
                       "ratio_to_floor", "ratio_to_fp32_floor", "docs_per_s", "matmul_gflops", "probe_spread",
                       "old_floor_s", "old_ratio_to_floor", "old_matmul_gflops"])
    if int8_probe is not None:
        print_table([r for r in rows if r["precision"] == "int8"],
                    ["precision", "seconds", "floor_s", "ratio_to_fp32_floor", "int8_gemm_gops", "int8_gemm_floor_s",
                     "int8_layer_gops", "int8_layer_floor_s"])
    if args.stages:
        print_table(rows, ["precision", "cpu_kernels", "store_dir", "seconds", "first_s", "ratio_to_fp32_floor", "tokenize_s",
                           "forward_only_first_s", "forward_only_s",
                           "forward_ratio_to_fp32_floor", "disk_write_s", "disk_fsync_s"])
    if search_rows:
        print_table(search_rows, ["precision", "dim", "search_s", "run"])
    print("wrote", write_json(args.name, {"machine": machine(device), "rows": rows, "search": search_rows,
                                          "probes": {p: probe.summary() for p, probe in probes.items()},
                                          "old_probe_gflops": legacy, "int8_probe_gops": int8_probe,
                                          "args": {k: str(v) for k, v in vars(args).items()}}))


if __name__ == "__main__":
    main()
