"""How the sharded pipeline scales: encoding throughput on 1 and 2 workers, peak memory of the
driver and of an encoding worker at 1x, 4x and 16x a corpus, exact search time against its FLOP
floor, and a projection of wall time and storage for MIRACL and BEIR on 1, 8 and 64 GPUs.

    .venv/bin/python bench/scale.py [--sizes 1 4 16] [--layers 1] [--doc-maxlen 64] [--shard-tokens 131072]
                                    [--queries 100]   (0: encoding and memory only, no search)

The corpus at Nx is SciFact's documents N times under new ids (``<copy>:<id>``), written as a
Parquet table and read back in batches, as a dataset cache is. The encoder is all-MiniLM-L6-v2
cut to its first ``--layers`` layers (a real checkpoint folder, plain format): memory and scaling
are what is measured here, and a one-layer model lets 16x SciFact encode in minutes on two cores.
Each encoding runs in a fresh process (the driver) on a fresh local Ray of ``workers`` CPUs, each
worker one torch thread, so peak memory is the driver's own and the workers' (what the shard steps
report), with Ray's start-up left out of the timing. Search runs in the driver, shard by shard.
The ``--throughput-size`` corpus is encoded again on one worker right after its run on
``--workers`` (the two closest in time; ``--sizes 16 1 4`` runs the long pair first).
A last table times the driver's phases around the shard steps (its serial passes, and the
workers' time outside any step), which is what keeps 2 workers from 2x of 1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import gemm_probe, machine, maxsim_gemms, print_table, write_json  # noqa: E402
from projection import projection_rows  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def cut_model(layers: int, folder: Path) -> Path:
    """all-MiniLM-L6-v2 from the Hugging Face cache, its first ``layers`` layers, as a local folder."""
    import shutil

    from huggingface_hub import snapshot_download
    from safetensors.torch import load_file, save_file

    snapshot = Path(snapshot_download(MINILM, local_files_only=True))
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (snapshot / name).exists():
            shutil.copyfile(snapshot / name, folder / name)
    config = json.loads((snapshot / "config.json").read_text())
    config["num_hidden_layers"] = layers
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    weights = load_file(snapshot / "model.safetensors")
    keep = {k: v for k, v in weights.items() if ".layer." not in k or int(k.split(".layer.")[1].split(".")[0]) < layers}
    save_file(keep, folder / "model.safetensors")
    return folder


def scifact_rows() -> tuple[list[tuple[str, str, str]], list[str], list[str]]:
    from harness.data.load import load_dataset
    from harness.suite import load_suite

    spec = load_suite(REPO / "suites" / "beir.yaml").dataset("scifact")
    data = load_dataset(spec, "beir")
    rows = list(zip(data.corpus.ids, data.corpus.titles, data.corpus.texts))
    return rows, list(data.queries.ids), list(data.queries.texts)


def write_corpus(rows, copies: int, path: Path) -> Path:
    """SciFact's rows ``copies`` times under new ids, written as the dataset cache writes documents."""
    from harness.data.store import write_documents

    write_documents([(f"{c}:{r[0]}", r[1], r[2]) for c in range(copies) for r in rows], path)
    return path


def warm(_):
    """A worker's start-up (torch and transformers imported), before the clock."""
    import torch  # noqa: F401
    import transformers  # noqa: F401

    time.sleep(1)  # long enough that every worker takes one


def child(args) -> dict:
    """One encoding (then, if asked, one search) in this fresh process: the figures as JSON."""
    os.environ["HARNESS_HOME"] = args.home
    from harness.data.corpus import Corpus, DocumentTable
    from harness.environment import high_water_mark, reset_high_water_mark
    from harness.executors import running_steps
    from harness.retrievers.late_interaction import LateInteractionRetriever

    documents = Corpus(DocumentTable(Path(args.corpus))).documents(("title", "text"), " ")
    retriever = LateInteractionRetriever(args.model, format="plain", dim=args.dim, threads=1,
                                         shard_tokens=args.shard_tokens, device="cpu")
    retriever.set_max_length(32, args.doc_maxlen)
    from harness.index import shards

    with running_steps("ray", args.workers) as steps:
        list(steps.map(warm, range(args.workers)))  # the workers are up before the clock starts
        reset_high_water_mark()
        t, began = time.perf_counter(), time.time()
        # The driver's serial passes, timed apart (the retriever finds both done): the ids, and the
        # fingerprint that names the corpus in every key.
        documents.ids
        phases = {"ids_s": time.perf_counter() - t}
        documents.fingerprint()
        phases["fingerprint_s"] = time.perf_counter() - t - phases["ids_s"]
        retriever.index(documents)
        encode_s = time.perf_counter() - t
    cost = retriever.cost()
    steps = [{k: step[k] for k in ("pid", "seconds", "documents", "began")} for step in shards.STEPS]
    step_seconds = sum(step["seconds"] for step in steps)
    phases.update({k: shards.PHASES[k] for k in ("find_s", "steps_s", "open_s")})
    phases["rest_s"] = encode_s - sum(phases.values())  # key, tie ranks, storage figures
    # Within the steps phase: until the first step began, and workers' time outside any step.
    phases["first_step_after_s"] = min(step["began"] for step in steps) - began
    phases["workers_idle_s"] = phases["steps_s"] * args.workers - step_seconds
    out = {"steps": steps, "step_seconds": step_seconds, "phases": phases, "documents": len(documents),
           "tokens": cost["n_tokens"], "shards": cost["n_shards"], "workers": args.workers,
           "encode_s": encode_s, "documents_per_s": len(documents) / encode_s,
           "driver_peak_rss_bytes": high_water_mark(), "worker_peak_rss_bytes": cost.get("shard_worker_peak_rss_bytes")}
    if args.queries:
        queries = json.loads(Path(args.query_file).read_text())[: args.queries]
        vectors, mask = retriever.encode_queries(queries)
        reset_high_water_mark()
        retriever.search([str(i) for i in range(len(queries))], queries, 100)
        out.update({"search_s": retriever.cost()["search_s"], "query_tokens": int(mask.sum()),
                    "search_peak_rss_bytes": high_water_mark()})
    return out


def run_child(args, corpus: Path, home: Path, workers: int, queries: int, query_file: Path) -> dict:
    command = [sys.executable, __file__, "--child", "--corpus", str(corpus), "--home", str(home), "--model", args.model,
               "--workers", str(workers), "--queries", str(queries), "--query-file", str(query_file),
               "--shard-tokens", str(args.shard_tokens), "--doc-maxlen", str(args.doc_maxlen), "--dim", str(args.dim)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if done.returncode:
        raise SystemExit(f"child failed:\n{done.stderr[-4000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    # A line as each run ends: a bench cut short still shows what it measured.
    print(f"{corpus.name} on {workers} worker(s): {figures['documents']} documents in {figures['encode_s']:.1f} s, "
          f"driver peak {figures['driver_peak_rss_bytes'] / 2**20:.0f} MB, phases "
          + ", ".join(f"{k} {v:.1f}" for k, v in figures["phases"].items()), flush=True)
    return figures


def matmul_probe(dim: int) -> float:
    """GFLOP/s of the fastest MaxSim product at ``dim`` (``common.gemm_probe``: output preallocated,
    best over repeats), one thread, as the search runs."""
    import torch

    torch.set_num_threads(1)
    probe = gemm_probe(maxsim_gemms(dim))
    return max(probe.samples[probe.fastest().name])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--throughput-size", type=int, default=16,
                        help="corpus size (x SciFact, one of --sizes) timed on 1 worker against --workers")
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--doc-maxlen", type=int, default=64)
    parser.add_argument("--shard-tokens", type=int, default=1 << 17)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--dim", type=int, default=384, help="searched dim (384: the store's own, no cut)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--query-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return

    if args.throughput_size not in args.sizes:
        raise SystemExit(f"--throughput-size {args.throughput_size} is not one of --sizes {args.sizes}")
    rows, _, query_texts = scifact_rows()
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        tmp = Path(tmp)
        args.model = str(cut_model(args.layers, tmp / "model"))
        query_file = tmp / "queries.json"
        query_file.write_text(json.dumps(query_texts))
        gflops = matmul_probe(args.dim) if args.queries else None
        sizes, throughput = [], []
        for size in args.sizes:
            corpus = write_corpus(rows, size, tmp / f"corpus-{size}.parquet")
            figures = run_child(args, corpus, tmp / f"home-{size}", args.workers, args.queries, query_file)
            figures["size"] = f"{size}x"
            if args.queries:
                flops = 2 * args.dim * figures["query_tokens"] * figures["tokens"]
                figures.update({"search_floor_s": flops / (gflops * 1e9),
                                "search_vs_floor": figures["search_s"] / (flops / (gflops * 1e9))})
            sizes.append(figures)
            subprocess.run(["rm", "-rf", str(tmp / f"home-{size}")], check=True)  # disk: one corpus's stores at a time
            if size == args.throughput_size:  # the same corpus on one worker, right after: the closest in time
                one = run_child(args, corpus, tmp / "home-w1", 1, 0, query_file)
                throughput = [{**one, "size": f"{size}x"}, figures]
                subprocess.run(["rm", "-rf", str(tmp / "home-w1")], check=True)
        sizes.sort(key=lambda row: row["documents"])  # whatever order they ran in (--sizes 16 1 4: the longest first)
        base = sizes[0]
        for row in sizes:
            if args.queries:
                row["search_s_per_x"] = row["search_s"] / (row["documents"] / base["documents"])
            for k in ("driver_peak_rss_bytes", "worker_peak_rss_bytes", "search_peak_rss_bytes"):
                if row.get(k):
                    row[k.replace("_bytes", "_mb")] = row[k] / 2**20
        columns = ["size", "documents", "tokens", "shards", "encode_s", "documents_per_s", "driver_peak_rss_mb",
                   "worker_peak_rss_mb"]
        if args.queries:
            print(f"MaxSim GEMM probe (fastest shape, one thread, output preallocated): {gflops:.1f} GFLOP/s")
            columns += ["search_s", "search_s_per_x", "search_floor_s", "search_vs_floor", "search_peak_rss_mb"]
        print_table(sizes, columns)

        speedup = throughput[1]["documents_per_s"] / throughput[0]["documents_per_s"]
        print(f"\nencoding {args.throughput_size}x SciFact, one torch thread a worker: 2 workers = {speedup:.2f}x 1 worker")
        print_table(throughput, ["workers", "documents", "shards", "encode_s", "documents_per_s", "step_seconds"])
        print("\nthe driver's phases, seconds (first_step_after: from the clock's start to the first step's;"
              " workers_idle: workers x steps phase - the steps' own seconds)")
        phase_rows = [{"run": f"{row['size']} on {row['workers']}", **row["phases"]}
                      for row in [*sizes, throughput[0]]]
        print_table(phase_rows, ["run", "ids_s", "fingerprint_s", "find_s", "steps_s", "open_s", "rest_s",
                                 "first_step_after_s", "workers_idle_s"])

    one_worker = throughput[0]["documents_per_s"] * base["tokens"] / base["documents"]  # stored tokens/s
    projection = projection_rows(cpu_tokens_per_s=one_worker, cpu_layers=args.layers, doc_maxlen=args.doc_maxlen)
    print("\nprojection (see bench/projection.py for the assumptions)")
    print_table(projection, ["suite", "model", "gpus", "encode_h", "search_h", "io_h", "wall_h", "bound_by",
                             "store_fp16_tb", "store_residual2_tb"])
    path = write_json("scale", {"machine": machine(), "args": {k: v for k, v in vars(args).items() if k != "model"},
                                "matmul_gflops_1_thread": gflops, "sizes": sizes, "throughput": throughput,
                                "speedup_2_workers": speedup, "projection": projection})
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()
