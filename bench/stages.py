"""Where the time of a late-interaction evaluation goes, stage by stage, on BEIR SciFact.

    python bench/stages.py [--max-documents N] [--dim 128] [--model sentence-transformers/all-MiniLM-L6-v2]

Runs the steps of one (dataset, retriever) unit by hand, through the same public pieces the
pipeline uses, and times each: data loading (Parquet cache), tokenization, the encoder's forward
pass, token-store writing, query encoding, exact MaxSim, metrics, and writing the result folder.
The token store is built in a temporary folder, so nothing is reused from earlier runs. Needs
IR_DATASETS_HOME and HF_HOME holding SciFact and the model (./run_all.sh seeds them from ../shared).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, print_table, write_json  # noqa: E402

from harness.data.load import load_dataset  # noqa: E402
from harness.encoders.checkpoint import load_checkpoint  # noqa: E402
from harness.encoders.multivector import MultiVectorEncoder  # noqa: E402
from harness.index.token_store import TokenStoreWriter  # noqa: E402
from harness.kernels.maxsim import maxsim_search  # noqa: E402
from harness.metrics import evaluate  # noqa: E402
from harness.results import ResultRecord, ResultStore, now  # noqa: E402
from harness.runs import Run  # noqa: E402
from harness.suite import load_suite  # noqa: E402
from harness.suite_schema import Sample  # noqa: E402


class Clock:
    def __init__(self):
        self.rows: list[dict] = []

    def __call__(self, stage: str):
        clock = self

        class _Timer:
            def __enter__(self):
                self.t = time.perf_counter()

            def __exit__(self, *exc):
                clock.rows.append({"stage": stage, "seconds": time.perf_counter() - self.t})

        return _Timer()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--max-documents", type=int, default=None, help="sample the corpus (judged docs kept)")
    parser.add_argument("--dim", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count())
    clock = Clock()

    spec = load_suite(Path(__file__).resolve().parents[1] / "suites" / "beir.yaml").dataset("scifact")
    if args.max_documents:
        spec = spec.model_copy(update={"sample": Sample(documents=args.max_documents)})
    with clock("load data (Parquet cache)"):
        data = load_dataset(spec, "beir")
    texts = data.corpus.joined(spec.text.document_fields, spec.text.separator)
    with clock("load model"):
        ckpt = load_checkpoint(args.model, "plain", {"doc_maxlen": spec.max_length.document,
                                                    "query_maxlen": spec.max_length.query})
        encoder = MultiVectorEncoder(ckpt)
    with clock("tokenize documents"):
        ids, keep = encoder.document_inputs(texts)
    with tempfile.TemporaryDirectory() as tmp:
        with clock("encode documents (tokenize + forward + write)"):
            store = encoder.encode_documents(texts, lambda c, d: TokenStoreWriter(Path(tmp) / "s", c, d))
        with clock("encode queries"):
            q, mask = encoder.encode_queries(data.queries.texts)
        with clock(f"exact MaxSim, dim {args.dim}"):
            scores, idx = maxsim_search(q, mask, store.vectors, store.offsets, 1000, dim=args.dim)
        run = Run({qid: {data.corpus.ids[j]: float(s) for j, s in zip(idx[i], scores[i])}
                   for i, qid in enumerate(data.queries.ids)})
        with clock("metrics (ranx)"):
            evaluation = evaluate(data.qrels, run, spec.metrics)
        with clock("write result folder"):
            record = ResultRecord(key="bench", suite="bench", dataset="scifact", retriever={"name": "bench"},
                                  protocol={}, protocol_hash="-", card_hash="-", main_metric="ndcg@10",
                                  metrics=evaluation.mean, n_queries=len(evaluation.query_ids), timings={},
                                  environment={}, created=now())
            ResultStore(Path(tmp) / "results").write(record, evaluation, run)
        n_tokens = store.n_tokens
    encode = next(r for r in clock.rows if r["stage"].startswith("encode documents"))
    tokenize = next(r for r in clock.rows if r["stage"] == "tokenize documents")
    # The encode stage tokenizes again; split it so the table adds up to the wall time.
    encode["stage"] = "forward pass + store write"
    encode["seconds"] -= tokenize["seconds"]
    total = sum(r["seconds"] for r in clock.rows)
    for r in clock.rows:
        r["share"] = r["seconds"] / total
    print(f"SciFact: {len(texts)} documents, {n_tokens} stored tokens, {len(data.queries)} queries; "
          f"nDCG@10 {evaluation.mean['ndcg@10']:.4f} at dim {args.dim}")
    print_table(clock.rows, ["stage", "seconds", "share"])
    print("wrote", write_json("stages", {"machine": machine(), "args": vars(args), "documents": len(texts),
                                         "stored_tokens": int(n_tokens), "rows": clock.rows,
                                         "ndcg@10": evaluation.mean["ndcg@10"],
                                         "mean_tokens": float(np.mean([len(s) for s in ids]))}))


if __name__ == "__main__":
    main()
