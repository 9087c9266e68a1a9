"""A projection, on paper, of wall time and storage for MIRACL's 18 dev sets and the BEIR 14 with a
ColBERT model of 110M or 560M parameters on 1, 8 and 64 GPUs (and on the 2-core CPU machine the
scaling bench ran on), from measured throughputs. Printed by bench/scale.py.

Measured (bench/README.md, one H200, all-MiniLM-L6-v2, full SciFact, 2026-11-27):
- fp32 forward passes 33.0 TFLOP in 0.97 s (34 TFLOP/s achieved); bf16 0.187 s (176 TFLOP/s).
- End to end (tokenise, forward, write) bf16 in memory 0.52 s for 1,386,294 tokens: the host side
  (tokenising on 16 cores, writing) caps a GPU at about 2.7M tokens/s whatever the model.
- Exact MaxSim at d128 on the GPU: 0.31 s for 300 queries x 32 tokens over 1,307,434 document
  tokens, 3.2 TFLOP: about 10 TFLOP/s through the harness's kernel (chunks read from the store).

Assumed, not measured (say so wherever these figures are quoted):
- Corpus and query counts as the BEIR (Thakur et al., 2021) and MIRACL (Zhang et al., 2023)
  papers give them, rounded; document tokens = 1.3 x the papers' mean words (+2 special tokens),
  cut at doc_maxlen 300; MIRACL passages 120 tokens on average.
- The models: 110M = BERT-base (12 layers, hidden 768), 560M = XLM-R-large-sized (24 layers,
  hidden 1024), forward FLOPs 24 h^2 L per token plus attention 4 n h L, at bf16 with the MiniLM
  run's achieved 176 TFLOP/s.
- Stores: dim 128, float16 (256 B a token) or residual 2-bit (32 B codes + 4 B centroid id +
  offsets: about 36 B a token). 8 GPUs a node, each node reading its disk at 3 GB/s.
- Exact search reads each store once for all of a dataset's queries (the kernel scores every query
  against a chunk while it is in memory), 32 query tokens.
"""

from __future__ import annotations

# name: (documents, queries, mean words a document)
BEIR14 = {
    "trec-covid": (171_332, 50, 160), "nfcorpus": (3_633, 323, 232), "nq": (2_681_468, 3_452, 79),
    "hotpotqa": (5_233_329, 7_405, 46), "fiqa": (57_638, 648, 132), "arguana": (8_674, 1_406, 167),
    "webis-touche2020": (382_545, 49, 292), "cqadupstack": (457_199, 13_145, 129), "quora": (522_931, 10_000, 11),
    "dbpedia-entity": (4_635_922, 400, 50), "scidocs": (25_657, 1_000, 176), "fever": (5_416_568, 6_666, 85),
    "climate-fever": (5_416_593, 1_535, 85), "scifact": (5_183, 300, 214),
}
# language: (passages, dev queries)
MIRACL18 = {
    "ar": (2_061_414, 2_896), "bn": (297_265, 411), "en": (32_893_221, 799), "es": (10_373_953, 648),
    "fa": (2_207_172, 632), "fi": (1_883_509, 1_271), "fr": (14_636_953, 343), "hi": (506_264, 350),
    "id": (1_446_315, 960), "ja": (6_953_614, 860), "ko": (1_486_752, 213), "ru": (9_543_918, 1_252),
    "sw": (131_924, 482), "te": (518_079, 828), "th": (542_166, 733), "zh": (4_934_368, 393),
    "de": (15_866_222, 305), "yo": (49_043, 119),
}
MODELS = {"110M": (12, 768), "560M": (24, 1024)}
GPU_BF16_FLOPS = 176e12
GPU_HOST_TOKENS_PER_S = 2.7e6
GPU_SEARCH_FLOPS = 10e12
NODE_READ_BYTES_PER_S = 3e9
GPUS_PER_NODE = 8
DIM, QUERY_TOKENS = 128, 32
FP16_BYTES, RESIDUAL2_BYTES = 256, 36


def _datasets(suite: str) -> list[tuple[int, int]]:
    """(document tokens, queries) per dataset."""
    if suite == "BEIR 14":
        return [(int(docs * min(300, 1.3 * words + 2)), queries) for docs, queries, words in BEIR14.values()]
    return [(docs * 120, queries) for docs, queries in MIRACL18.values()]


def flops_per_token(layers: int, hidden: int, length: int) -> float:
    return 24 * hidden * hidden * layers + 4 * length * hidden * layers


def projection_rows(cpu_tokens_per_s: float, cpu_layers: int, doc_maxlen: int) -> list[dict]:
    """Rows of the table; ``cpu_tokens_per_s``: stored tokens a second of one CPU worker on the
    scaling bench's model (MiniLM cut to ``cpu_layers`` layers, documents of ``doc_maxlen``)."""
    cpu_flops = cpu_tokens_per_s * flops_per_token(cpu_layers, 384, doc_maxlen)  # one worker's achieved FLOP/s
    rows = []
    for suite in ("MIRACL 18 dev", "BEIR 14"):
        sets = _datasets(suite)
        tokens = sum(t for t, _ in sets)
        search_flops = sum(2 * DIM * QUERY_TOKENS * q * t for t, q in sets)
        for model, (layers, hidden) in MODELS.items():
            encode_flops = tokens * flops_per_token(layers, hidden, 180)
            for gpus in (0, 1, 8, 64):
                if gpus == 0:  # this machine: 2 CPU workers at the measured rate
                    encode_s, search_s, nodes, label = encode_flops / (2 * cpu_flops), search_flops / (2 * cpu_flops), 1, "2 CPU"
                else:
                    per_gpu = min(GPU_BF16_FLOPS / flops_per_token(layers, hidden, 180), GPU_HOST_TOKENS_PER_S)
                    encode_s = tokens / (gpus * per_gpu)
                    search_s = search_flops / (gpus * GPU_SEARCH_FLOPS)
                    nodes, label = max(1, gpus // GPUS_PER_NODE), str(gpus)
                io_s = 2 * tokens * FP16_BYTES / (nodes * NODE_READ_BYTES_PER_S)  # written once, read once
                parts = {"encoding": encode_s, "search": search_s, "I/O": io_s}
                rows.append({"suite": suite, "model": model, "gpus": label, "encode_h": encode_s / 3600,
                             "search_h": search_s / 3600, "io_h": io_s / 3600,
                             "wall_h": max(encode_s, io_s / 2) / 3600 + max(search_s, io_s / 2) / 3600,
                             "bound_by": max(parts, key=parts.get), "store_fp16_tb": tokens * FP16_BYTES / 1e12,
                             "store_residual2_tb": tokens * RESIDUAL2_BYTES / 1e12})
    return rows
