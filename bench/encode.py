"""Document encoding speed against its compute floor, on BEIR SciFact.

    python bench/encode.py [--limit N] [--doc-maxlen 300] [--precision fp32 bf16]

The floor is the forward pass's FLOPs over the matmul throughput measured here, in the same run:
per token and layer 24*h^2 (QKV, output, feed-forward) + 4*L*h (attention over the document's
true length L), plus 2*h*dim for a projection. Needs IR_DATASETS_HOME and HF_HOME holding
SciFact and all-MiniLM-L6-v2 (./run_all.sh seeds them from ../shared).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, matmul_gflops, print_table, write_json  # noqa: E402

from harness.data.load import load_dataset  # noqa: E402
from harness.encoders.checkpoint import load_checkpoint  # noqa: E402
from harness.encoders.multivector import MultiVectorEncoder  # noqa: E402
from harness.index.token_store import TokenStoreWriter  # noqa: E402
from harness.suite import load_suite  # noqa: E402


def forward_flops(lengths: list[int], layers: int, hidden: int, projection_dim: int | None) -> float:
    per_token = 24 * hidden * hidden * layers + (2 * hidden * projection_dim if projection_dim else 0)
    return float(sum(n * per_token + layers * 4 * n * n * hidden for n in lengths))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--limit", type=int, default=None, help="encode only the first N documents")
    parser.add_argument("--doc-maxlen", type=int, default=300)
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--batch-tokens", type=int, default=8192)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count())

    spec = load_suite(Path(__file__).resolve().parents[1] / "suites" / "beir.yaml").dataset("scifact")
    data = load_dataset(spec, "beir")
    texts = data.corpus.joined(spec.text.document_fields, spec.text.separator)[: args.limit]
    throughput = {"fp32": matmul_gflops(torch.float32), "bf16": matmul_gflops(torch.bfloat16)}
    rows = []
    for precision in args.precision:
        ckpt = load_checkpoint(args.model, overrides={"doc_maxlen": args.doc_maxlen})
        encoder = MultiVectorEncoder(ckpt, precision=precision, batch_tokens=args.batch_tokens)
        ids, _ = encoder.document_inputs(texts)
        config = encoder.model.config
        flops = forward_flops([len(s) for s in ids], config.num_hidden_layers, config.hidden_size,
                              encoder.dim if encoder.projection is not None else None)
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            store = encoder.encode_documents(texts, lambda c, d: TokenStoreWriter(Path(tmp) / "s", c, d))
            seconds = time.perf_counter() - t
            n_tokens = store.n_tokens
        floor = flops / (throughput[precision] * 1e9)
        rows.append({"precision": precision, "documents": len(texts), "input_tokens": int(sum(map(len, ids))),
                     "stored_tokens": n_tokens, "tflop": flops / 1e12, "seconds": seconds,
                     "floor_s": floor, "ratio_to_floor": seconds / floor, "docs_per_s": len(texts) / seconds,
                     "matmul_gflops": throughput[precision]})
    print_table(rows, ["precision", "documents", "input_tokens", "tflop", "seconds", "floor_s", "ratio_to_floor",
                       "docs_per_s", "matmul_gflops"])
    print("wrote", write_json("encode", {"machine": machine(), "rows": rows, "args": vars(args)}))


if __name__ == "__main__":
    main()
