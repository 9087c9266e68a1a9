"""The harness against its peers in one run: PyLate and a plain transformers loop, on the same
documents, queries and settings, one after another, with the ratios printed.

    python bench/peers.py [--limit 200] [--queries 32] [--venv DIR] [--skip-pylate]

What is timed, for each system, on the first ``--limit`` SciFact documents and ``--queries`` test
queries, with one ColBERT checkpoint (all-MiniLM-L6-v2 plus a seeded 128-dim projection, in
PyLate's format, built from the local MiniLM weights by ``tests/checkpoints.py::build_pylate``;
query_length 32, document_length 300, query expansion, PyLate's [Q]/[D] prefixes and punctuation
skiplist), the same torch thread count:

- encoding the documents: the harness's ``MultiVectorEncoder.encode_documents`` (into a float16
  token store, as ``harness run`` does), PyLate's ``models.ColBERT.encode(is_query=False)``, and
  a plain loop (batches of 32 in corpus order, padded to the longest, ``AutoModel`` + projection
  + L2 normalisation, padding dropped);
- encoding the queries (the same three);
- exhaustive MaxSim, every query against every document: the harness's ``maxsim_search``, PyLate's
  ``rank.rerank`` with every document as each query's candidate, and a plain loop (per query, one
  einsum over the padded documents, max, sum).

Each system's top-10 is compared with the harness's (overlap), to show they computed the same thing.

PyLate pins versions this project does not use (sentence-transformers, transformers), so it is
never a dependency: this script makes a throwaway virtualenv for it (``--venv``, default a
temporary folder, deleted at the end unless ``--keep-venv``) from the package index, installs
torch's CPU wheel first (this interpreter's torch version, ``+cpu``, with
https://download.pytorch.org/whl/cpu as an extra index: an unpinned torch from PyPI pulls
gigabytes of CUDA packages), then ``pylate==PYLATE_VERSION`` and its requirements but the two of
its PLAID index (they pin one torch build each, a CUDA one from PyPI), and runs PyLate there in a
child process. The harness and the plain loop run in this interpreter. Needs HF_HOME and
IR_DATASETS_HOME holding SciFact and all-MiniLM-L6-v2 (./run_all.sh seeds them from ../shared),
and the package index reachable for the virtualenv.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))
from common import machine, print_table, write_json  # noqa: E402
from encode import scifact_texts  # noqa: E402

PYLATE_VERSION = "1.6.0"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# pylate 1.6.0's requirements (its wheel's metadata) less fast-plaid and fastkmeans (see pylate_venv).
PYLATE_REQUIREMENTS = ["sentence-transformers==5.3.0", "transformers>=4.41.0,<=5.3.0", "datasets>=2.20.0",
                       "accelerate>=0.31.0", "pandas>=2.2.1", "ujson==5.12.0", "scipy"]
QUERY_LENGTH, DOCUMENT_LENGTH, DIM, BATCH = 32, 300, 128, 32

# Runs in PyLate's virtualenv: reads the job, writes timings and top-10 ids.
PYLATE_CHILD = r'''
import json, sys, time
import torch
job = json.load(open(sys.argv[1]))
torch.set_num_threads(job["threads"])
from pylate import models, rank
t = time.perf_counter()
model = models.ColBERT(model_name_or_path=job["checkpoint"], device="cpu")
load_s = time.perf_counter() - t
model.encode(job["documents"][:8], is_query=False, batch_size=job["batch"], show_progress_bar=False)  # warm-up
t = time.perf_counter()
docs = model.encode(job["documents"], is_query=False, batch_size=job["batch"], show_progress_bar=False)
encode_documents_s = time.perf_counter() - t
t = time.perf_counter()
queries = model.encode(job["queries"], is_query=True, batch_size=job["batch"], show_progress_bar=False)
encode_queries_s = time.perf_counter() - t
ids = [str(i) for i in range(len(docs))]
t = time.perf_counter()
ranked = rank.rerank(documents_ids=[ids] * len(queries), queries_embeddings=queries,
                     documents_embeddings=[docs] * len(queries))
maxsim_s = time.perf_counter() - t
import pylate
json.dump({"version": pylate.__version__, "torch": torch.__version__, "load_s": load_s,
           "encode_documents_s": encode_documents_s, "encode_queries_s": encode_queries_s, "maxsim_s": maxsim_s,
           "stored_tokens": int(sum(len(d) for d in docs)),
           "top10": [[int(r["id"]) for r in q[:10]] for q in ranked]}, open(sys.argv[2], "w"))
'''


def run(cmd: list[str], what: str) -> float:
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{what} failed (exit {done.returncode}): {' '.join(cmd)}\n{done.stdout[-2000:]}{done.stderr[-4000:]}")
    return time.perf_counter() - t


def pylate_venv(folder: Path) -> tuple[Path, dict]:
    """PyLate's throwaway virtualenv: made with this interpreter's ``venv``, torch's CPU wheel
    first, then PyLate from the package index. Reused when ``folder`` already has PyLate."""
    python = folder / "bin" / "python"
    ready = [str(python), "-c", "from pylate import models, rank"]
    if python.exists() and subprocess.run(ready, capture_output=True).returncode == 0:
        return python, {"venv": "reused"}
    print(f"making a throwaway virtualenv for PyLate {PYLATE_VERSION} in {folder} (package index, torch CPU wheel)",
          flush=True)
    steps = {"venv_s": run([sys.executable, "-m", "venv", str(folder)], "python -m venv")}
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    # This interpreter's torch version, CPU build: from torch's CPU index, or a local wheel folder
    # that pip is configured with (``find-links``) where that index cannot be reached.
    torch_cpu = f"torch=={torch.__version__.split('+')[0]}+cpu"
    steps["torch_s"] = run(pip + [torch_cpu, "--extra-index-url", TORCH_CPU_INDEX], f"installing {torch_cpu}")
    steps["pylate_s"] = run(pip + ["--no-deps", f"pylate=={PYLATE_VERSION}"], f"installing pylate=={PYLATE_VERSION}")
    # PyLate's requirements but its PLAID index's (fast-plaid, fastkmeans: builds for one torch
    # version each, which would replace the CPU torch with a CUDA one); the timed parts (models,
    # rank) do not import them. torch is named again so that pip keeps the CPU build (installed above,
    # so the CPU index is not asked again: where it is unreachable, pip retries it for every package).
    steps["pylate_deps_s"] = run(pip + [torch_cpu, *PYLATE_REQUIREMENTS], "installing PyLate's requirements")
    print("virtualenv ready: " + ", ".join(f"{k} {v:.0f}" for k, v in steps.items()), flush=True)
    return python, steps


def harness_times(checkpoint: Path, documents: list[str], queries: list[str], tmp: Path) -> dict:
    from harness.encoders.checkpoint import load_checkpoint
    from harness.encoders.multivector import MultiVectorEncoder
    from harness.index.token_store import TokenStoreWriter
    from harness.kernels.maxsim import maxsim_search

    t = time.perf_counter()
    encoder = MultiVectorEncoder(load_checkpoint(str(checkpoint), format="pylate"), device="cpu")
    load_s = time.perf_counter() - t
    encoder.encode_documents(documents[:8], lambda c, d: TokenStoreWriter(tmp / "warm", c, d))  # warm-up
    t = time.perf_counter()
    store = encoder.encode_documents(documents, lambda c, d: TokenStoreWriter(tmp / "store", c, d))
    encode_documents_s = time.perf_counter() - t
    t = time.perf_counter()
    q, mask = encoder.encode_queries(queries)
    encode_queries_s = time.perf_counter() - t
    t = time.perf_counter()
    _, top = maxsim_search(q, mask, store.vectors, store.offsets, 10)
    maxsim_s = time.perf_counter() - t
    return {"load_s": load_s, "encode_documents_s": encode_documents_s, "encode_queries_s": encode_queries_s,
            "maxsim_s": maxsim_s, "stored_tokens": int(store.n_tokens), "top10": top.tolist(),
            "version": f"cpu_kernels {encoder.cpu_kernels}"}


def plain_times(checkpoint: Path, documents: list[str], queries: list[str]) -> dict:
    """A plain transformers loop over the same checkpoint: no length sorting, no skiplist, no store."""
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    config = json.loads((checkpoint / "config_sentence_transformers.json").read_text())
    t = time.perf_counter()
    tokenizer, model = AutoTokenizer.from_pretrained(checkpoint), AutoModel.from_pretrained(checkpoint).eval()
    projection = load_file(str(checkpoint / "1_Dense" / "model.safetensors"))["linear.weight"]
    load_s = time.perf_counter() - t

    def encode(texts: list[str], prefix: str, length: int, expand: bool) -> list[torch.Tensor]:
        out = []
        with torch.inference_mode():
            for b in range(0, len(texts), BATCH):
                batch = tokenizer([prefix + x for x in texts[b:b + BATCH]], truncation=True, max_length=length,
                                  padding="max_length" if expand else True, return_tensors="pt")
                hidden = model(**batch).last_hidden_state @ projection.T
                hidden = torch.nn.functional.normalize(hidden, dim=-1)
                keep = torch.ones_like(batch["attention_mask"]) if expand else batch["attention_mask"]
                out += [h[k.bool()] for h, k in zip(hidden, keep)]
        return out

    encode(documents[:8], config["document_prefix"], DOCUMENT_LENGTH, False)  # warm-up
    t = time.perf_counter()
    docs = encode(documents, config["document_prefix"], DOCUMENT_LENGTH, False)
    encode_documents_s = time.perf_counter() - t
    t = time.perf_counter()
    qs = encode(queries, config["query_prefix"], QUERY_LENGTH, True)  # [MASK]-padded to query_length
    encode_queries_s = time.perf_counter() - t
    t = time.perf_counter()
    padded = torch.nn.utils.rnn.pad_sequence(docs, batch_first=True)  # (docs, length, dim), zero padding
    lengths = torch.tensor([len(d) for d in docs])
    pad = torch.arange(padded.shape[1])[None, :] >= lengths[:, None]
    top = []
    with torch.inference_mode():
        for q in qs:
            sim = torch.einsum("qd,nld->nql", q, padded).masked_fill(pad[:, None, :], float("-inf"))
            top.append(sim.amax(dim=2).sum(dim=1).topk(10).indices.tolist())
    maxsim_s = time.perf_counter() - t
    return {"load_s": load_s, "encode_documents_s": encode_documents_s, "encode_queries_s": encode_queries_s,
            "maxsim_s": maxsim_s, "stored_tokens": int(lengths.sum()), "top10": top}


def overlap(a: list[list[int]], b: list[list[int]]) -> float:
    return float(np.mean([len(set(x) & set(y)) / 10 for x, y in zip(a, b)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=200, help="the first N SciFact documents")
    parser.add_argument("--queries", type=int, default=32, help="the first N SciFact test queries")
    parser.add_argument("--venv", type=Path, default=None, help="PyLate's virtualenv (made if it lacks PyLate)")
    parser.add_argument("--keep-venv", action="store_true", help="keep the virtualenv made in a temporary folder")
    parser.add_argument("--skip-pylate", action="store_true", help="the harness and the plain loop only")
    parser.add_argument("--name", default="peers", help="name of the JSON written under bench/results")
    args = parser.parse_args()
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)

    from tests.checkpoints import build_pylate

    texts = scifact_texts()
    documents, queries = texts["documents"][: args.limit], texts["queries"][: args.queries]
    rows, setup = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        checkpoint = build_pylate(tmp / "colbert-minilm", dim=DIM, query_length=QUERY_LENGTH,
                                  document_length=DOCUMENT_LENGTH)
        if not args.skip_pylate:
            venv = args.venv or tmp / "pylate-venv"
            python, setup = pylate_venv(venv)
            job, result = tmp / "job.json", tmp / "pylate.json"
            job.write_text(json.dumps({"checkpoint": str(checkpoint), "documents": documents, "queries": queries,
                                       "threads": threads, "batch": BATCH}))
            child = tmp / "pylate_child.py"
            child.write_text(PYLATE_CHILD)
            run([str(python), str(child), str(job), str(result)], "PyLate's run")
            rows["pylate"] = json.loads(result.read_text())
            if args.keep_venv and args.venv is None:
                kept = Path(tempfile.gettempdir()) / "pylate-venv"
                shutil.move(str(venv), kept)
                print("kept the virtualenv in", kept)
        rows["harness"] = harness_times(checkpoint, documents, queries, tmp)
        rows["plain"] = plain_times(checkpoint, documents, queries)

    base = rows["harness"]
    table = []
    for system, r in rows.items():
        table.append({"system": system, "encode_docs_s": r["encode_documents_s"], "docs_x_harness":
                      r["encode_documents_s"] / base["encode_documents_s"], "encode_queries_s": r["encode_queries_s"],
                      "maxsim_s": r["maxsim_s"], "maxsim_x_harness": r["maxsim_s"] / base["maxsim_s"],
                      "stored_tokens": r["stored_tokens"], "top10_overlap": overlap(r["top10"], base["top10"]),
                      "version": r.get("version", "")})
    print(f"{len(documents)} documents, {len(queries)} queries, {threads} torch threads, dim {DIM}, "
          f"document_length {DOCUMENT_LENGTH}, query_length {QUERY_LENGTH}")
    print_table(table, ["system", "encode_docs_s", "docs_x_harness", "encode_queries_s", "maxsim_s",
                        "maxsim_x_harness", "stored_tokens", "top10_overlap", "version"])
    print("wrote", write_json(args.name, {"machine": machine(), "rows": table, "setup": setup,
                                          "args": {k: str(v) for k, v in vars(args).items()}}))


if __name__ == "__main__":
    main()
