"""Late interaction end to end on the real MiniLM weights: exact scores, one encoding per
corpus whatever the dimension or query settings, and a sweep through the CLI."""

import json

import numpy as np
import pytest

from harness.errors import ParameterError
from harness.index import cache
from harness.results import ResultStore
from harness.retrievers.late_interaction import LateInteractionRetriever

from tests.checkpoints import local_minilm
from tests.conftest import SCIFACT_SUITE, run_cli
from tests.helpers import scifact_suite

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
IDS = ["bone", "cold", "protein", "brain"]
DOCS = ["Vitamin D deficiency lowers bone density in elderly patients.",
        "Vitamin C does not prevent the common cold.",
        "Deep learning predicts protein folding.",
        "White matter of the developing human brain."]
QUERIES = ["vitamin D and bone density", "protein structure prediction"]


def retriever(**params):
    r = LateInteractionRetriever(MODEL, format="plain", **params)
    r.set_max_length(32, 64)
    return r


def naive(q: np.ndarray, mask: np.ndarray, docs: list[np.ndarray]) -> np.ndarray:
    return np.array([(q[mask] @ d.T).max(axis=1).sum() for d in docs])


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    cache.STATS.clear()


def test_search_scores_are_exact_maxsim_and_rank_the_matching_document_first():
    r = retriever()
    r.index(IDS, DOCS)
    run = r.search(["q1", "q2"], QUERIES, k=10)
    assert [d for d, _ in run["q1"]][0] == "bone" and [d for d, _ in run["q2"]][0] == "protein"
    q, mask = r._encoder_().encode_queries(QUERIES)
    docs = [np.asarray(r._store.doc(i), dtype=np.float32) for i in range(4)]
    for i, qid in enumerate(["q1", "q2"]):
        expected = naive(q[i], mask[i], docs)
        got = dict(run[qid])
        for j, doc_id in enumerate(IDS):
            assert got[doc_id] == pytest.approx(expected[j], abs=1e-4)


def test_the_device_is_recorded_with_the_cost_and_stays_out_of_the_protocol():
    r = retriever(device="cpu")
    r.index(IDS, DOCS)
    assert r.cost()["device"] == "cpu" and r._encoder_().device.type == "cpu"
    assert r.settings() == retriever().settings()  # device auto: the same protocol on any device
    assert "device" not in repr(r.settings()) and "device" not in repr(r.document_key(IDS, DOCS))


def test_dimensions_and_query_settings_reuse_one_document_encoding():
    full = retriever()
    full.index(IDS, DOCS)
    small = retriever(dim=64)
    small.index(IDS, DOCS)
    longer_queries = retriever(query_maxlen=48, query_expansion=True)
    longer_queries.index(IDS, DOCS)
    # the 64-dim vectors are cut once into a float32 store of their own (harness/index/truncated.py)
    assert dict(cache.STATS) == {"misses": 1, "hits": 2, "truncated_misses": 1}
    assert full.cost()["document_cache"] == "miss" and small.cost()["document_cache"] == "hit"
    assert small.cost()["truncated_cache"] == "miss" and "truncated_cache" not in full.cost()
    n_tokens = full.cost()["n_tokens"]
    assert full.cost()["index_bytes"] == n_tokens * 384 * 2 + 5 * 8
    assert small.cost()["index_bytes"] == n_tokens * 64 * 2 + 5 * 8
    # truncation: the 64-dim scores are MaxSim over re-normalised 64-dim prefixes
    run = small.search(["q1"], QUERIES[:1], k=4)
    q, mask = small._encoder_().encode_queries(QUERIES[:1])
    cut = lambda x: x[..., :64] / np.maximum(np.linalg.norm(x[..., :64], axis=-1, keepdims=True), 1e-12)
    docs = [cut(np.asarray(small._store.doc(i), dtype=np.float32)) for i in range(4)]
    expected = naive(cut(q[0]), mask[0], docs)
    assert [s for _, s in run["q1"]] == pytest.approx(sorted(expected, reverse=True), abs=1e-4)
    # the same bits as the kernel's own cut of the full-width store
    from harness.kernels.maxsim import maxsim_search

    scores, _ = maxsim_search(q[:1], mask[:1], small._store.vectors, small._store.offsets, 4, dim=64)
    assert [s for _, s in run["q1"]] == scores[0].tolist()


def test_a_document_side_change_encodes_again():
    retriever().index(IDS, DOCS)
    r = retriever(doc_maxlen=8)
    r.index(IDS, DOCS)
    assert dict(cache.STATS) == {"misses": 2}
    assert r.cost()["n_tokens"] < 4 * 8 + 1


def test_everything_the_document_key_holds_is_in_the_settings():
    # What shapes the stored vectors shapes the scores: a result key without it would find stale results.
    r = retriever()
    key, settings = r.document_key(IDS, DOCS), r.settings()
    assert settings["skiplist_rule"] == key["skiplist_rule"] == "single-piece"
    as_setting = {"model": "model", "skiplist_rule": "skiplist_rule", "precision": "precision", "dtype": "storage_dtype"}
    for field, setting in as_setting.items():
        assert key[field] == settings[setting], field
    assert key["encoder"].items() <= settings["encoder"].items()
    assert set(key) == set(as_setting) | {"encoder", "role", "corpus"}  # the role and the texts are not settings


def test_a_local_checkpoint_folder_edited_in_place_is_another_model_and_another_store(tmp_path):
    model = local_minilm(tmp_path / "model")

    def keys():
        r = LateInteractionRetriever(str(model), format="plain")
        return r.settings()["model"], cache.store_path(r.document_key(IDS, DOCS))

    first = keys()
    assert keys() == first and set(first[0]) == {"model", "format", "files_sha256"}
    vocab = (model / "vocab.txt").read_text(encoding="utf-8").replace("[unused5]", "[unused5-edited]")
    tokenizer = json.loads((model / "tokenizer.json").read_text(encoding="utf-8"))
    tokenizer["normalizer"]["lowercase"] = False
    config = {**json.loads((model / "config.json").read_text()), "layer_norm_eps": 1e-6}
    edits = {"vocab.txt": lambda p: p.write_text(vocab, encoding="utf-8"),
             "tokenizer.json": lambda p: p.write_text(json.dumps(tokenizer), encoding="utf-8"),
             "config.json": lambda p: p.write_text(json.dumps(config)),
             "model.safetensors": lambda p: p.write_bytes(p.read_bytes()[:-1] + b"\x01")}  # the last weight
    seen = [first]
    for name, change in edits.items():
        change(model / name)
        seen.append(keys())
        assert seen[-1][0] != seen[-2][0] and seen[-1][1] != seen[-2][1], name
    assert len({path for _, path in seen}) == len(edits) + 1


def test_rerank_scores_only_the_candidates():
    r = retriever()
    r.index(IDS, DOCS)
    run = r.rerank(["q1"], QUERIES[:1], {"q1": ["cold", "brain", "missing"]})
    full = dict(r.search(["q1"], QUERIES[:1], k=4)["q1"])
    assert dict(run["q1"]) == pytest.approx({"cold": full["cold"], "brain": full["brain"]}, abs=1e-5)


def test_sweep_through_the_cli_encodes_once(offline, tmp_path):
    results = tmp_path / "results"
    done = run_cli("run", str(SCIFACT_SUITE), "-d", "scifact", "-r", "minilm-maxsim", "--max-queries", "15",
                   "--max-documents", "150", "--results", str(results))
    assert done.returncode == 0, done.stderr
    assert "vector cache: 1 encoded, 3 reused" in done.stdout
    records = {r.retriever["name"]: r for _, r in ResultStore(results).records()}
    assert sorted(records) == [f"minilm-maxsim@dim={d}" for d in (128, 256, 384, 64)]
    assert len({r.protocol_hash for r in records.values()}) == 1  # one protocol: comparable
    assert len({r.card_hash for r in records.values()}) == 4  # four systems
    sample = records["minilm-maxsim@dim=384"].protocol["filters"]["sample"]
    assert sample == {"queries": 15, "documents": 150, "seed": 0}
    n_tokens = records["minilm-maxsim@dim=64"].cost["n_tokens"]
    for d in (384, 256, 128, 64):
        assert records[f"minilm-maxsim@dim={d}"].cost["index_bytes"] == n_tokens * d * 2 + 151 * 8
    assert records["minilm-maxsim@dim=384"].metrics["ndcg@10"] > 0.4


def test_the_cli_device_option_moves_the_work_not_the_result(offline, tmp_path):
    results = tmp_path / "results"
    args = ["run", str(SCIFACT_SUITE), "-d", "scifact", "-r", "bm25", "-r", "minilm-maxsim@dim=64",
            "--max-queries", "10", "--max-documents", "100", "--latency-queries", "0", "--results", str(results)]
    missing = run_cli(*args, "--device", "cuda")
    assert missing.returncode == 2 and "device 'cuda' was asked for, but torch" in missing.stderr + missing.stdout
    assert not results.exists() or not any(results.rglob("record.json"))  # refused before any unit
    done = run_cli(*args, "--device", "cpu")
    assert done.returncode == 0, done.stderr
    records = {r.retriever["name"]: r for _, r in ResultStore(results).records()}
    assert records["minilm-maxsim@dim=64"].cost["device"] == "cpu"
    assert "device" not in records["minilm-maxsim@dim=64"].retriever["params"]
    # Without --device (auto, the CPU here) the same units already exist: nothing is redone.
    again = run_cli(*args)
    assert again.returncode == 0 and again.stdout.count("skipped") == 2, again.stdout


# ---------------------------------------------------------------------------------------------
# Storage kinds (harness/index/compression.py): fp32, fp16, int8, residual-1/2/4


def files_on_disk(folder) -> int:
    return sum(f.stat().st_size for f in folder.iterdir() if f.name != "manifest.json")


def cut(x: np.ndarray, dim: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)[..., :dim]
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def test_storage_kinds_derive_from_one_document_encoding_with_exact_bytes():
    fp16 = retriever(dim=128)
    fp16.index(IDS, DOCS)
    int8 = retriever(dim=128, storage="int8")
    int8.index(IDS, DOCS)
    residual = retriever(dim=128, storage="residual-2")
    residual.index(IDS, DOCS)
    assert dict(cache.STATS) == {"misses": 1, "hits": 2, "compressed_misses": 2, "truncated_misses": 1}
    again = retriever(dim=128, storage="int8")
    again.index(IDS, DOCS)
    assert cache.STATS["compressed_hits"] == 1 and again.cost()["compressed_cache"] == "hit"

    n = fp16.cost()["n_tokens"]
    fp16_bytes = n * 128 * 2 + 5 * 8  # float16 vectors at dim 128 + int64 offsets
    assert fp16.cost()["index_bytes"] == fp16_bytes and fp16.cost()["compression_ratio"] == 1.0
    assert fp16.cost()["storage"] == "fp16" and "storage_codec" not in fp16.settings()
    cost = int8.cost()
    assert cost["index_bytes"] == n * (128 + 4) + 5 * 8 == files_on_disk(int8._compressed.path)
    assert cost["bytes_per_document"] == cost["index_bytes"] / 4
    assert cost["compression_ratio"] == fp16_bytes / cost["index_bytes"]
    assert cost["storage"] == "int8" and cost["codec_build_s"] > 0 and int8.settings()["storage"] == "int8"
    cost = residual.cost()
    k = cost["n_centroids"]  # 2 ** floor(log2(16 sqrt(n))) = 64 wants more vectors than 4 documents have
    assert k == 2 ** int(np.log2(n - max(1, int(0.05 * n))))
    # per token: uint16 centroid id + 128 x 2 bits; once: float16 centroids, 3 cutoffs, 4 weights
    assert cost["index_bytes"] == n * (2 + 32) + k * 128 * 2 + 3 * 4 + 4 * 4 + 5 * 8
    assert cost["index_bytes"] == files_on_disk(residual._compressed.path)
    assert residual.settings()["storage_codec"] == {"kind": "residual", "nbits": 2, "n_centroids": None, "seed": 0,
                                                    "kmeans_iters": 4, "points_per_centroid": 32,
                                                    "kmeans": "faiss", "sample": "colbert-ai documents"}


@pytest.mark.parametrize("storage", ["int8", "residual-4"])
def test_compressed_search_and_rerank_are_exact_maxsim_over_the_decompressed_fp16_store(storage):
    r = retriever(dim=128, storage=storage)
    r.index(IDS, DOCS)
    # the index is the codec's reconstruction of the float16 store cut to 128 dimensions
    codec = r._compressed.codec
    np.testing.assert_array_equal(r._compressed.vectors[0:r._store.n_tokens],
                                  codec.decompress(codec.compress(cut(r._store.vectors, 128))))
    run = r.search(["q1", "q2"], QUERIES, k=10)
    assert [d for d, _ in run["q1"]][0] == "bone" and [d for d, _ in run["q2"]][0] == "protein"
    q, mask = r._encoder_().encode_queries(QUERIES)
    docs = [r._compressed.doc(i) for i in range(4)]
    for i, qid in enumerate(["q1", "q2"]):
        expected = naive(cut(q[i], 128), mask[i], docs)
        assert dict(run[qid]) == pytest.approx(dict(zip(IDS, expected)), abs=1e-4)
    reranked = r.rerank(["q1"], QUERIES[:1], {"q1": ["brain", "cold"]})
    assert dict(reranked["q1"]) == pytest.approx({d: dict(run["q1"])[d] for d in ("brain", "cold")}, abs=1e-5)


def test_fp32_storage_is_its_own_float32_encoding():
    fp16 = retriever()
    fp16.index(IDS, DOCS)
    fp32 = retriever(storage="fp32")
    fp32.index(IDS, DOCS)
    assert dict(cache.STATS) == {"misses": 2}  # float16 cannot give back the bits it dropped
    n = fp32.cost()["n_tokens"]
    assert fp32._store.vectors.dtype == np.float32
    assert fp32.cost()["index_bytes"] == n * 384 * 4 + 5 * 8
    assert fp32.cost()["compression_ratio"] == (n * 384 * 2 + 5 * 8) / (n * 384 * 4 + 5 * 8)
    # float16 rounds each unit vector by at most 2**-11 relative (||d16 - d32|| <= 2**-11), so each
    # similarity, each max and hence each score moves by at most 2**-11 per scoring query token.
    a, b = fp16.search(["q1"], QUERIES[:1], k=4), fp32.search(["q1"], QUERIES[:1], k=4)
    _, mask = fp32._encoder_().encode_queries(QUERIES[:1])
    assert dict(b["q1"]) == pytest.approx(dict(a["q1"]), abs=mask.sum() * 2.0**-11)
    assert dict(b["q1"]) != dict(a["q1"])


def test_unknown_storage_is_refused():
    with pytest.raises(ParameterError, match="storage 'int4' is unknown; choose one of fp32, fp16, int8, residual-1"):
        retriever(storage="int4")


STORAGE_SUITE = scifact_suite("storage-check", "storage kinds of one encoding, on a SciFact sample", """\
  minilm:
    class: late_interaction
    params: {model: sentence-transformers/all-MiniLM-L6-v2, format: plain, dim: 128}
    sweep: {storage: [fp16, int8, residual-4, residual-2, residual-1]}
""", document_length=128)


def test_storage_quality_on_a_scifact_sample(tmp_path):
    """nDCG@10 of every storage kind over one encoding of 400 SciFact documents (50 queries, 128
    document tokens, dim 128). Measured: fp16 0.8346, int8 0.8346, residual-4 0.8314, residual-2
    0.8271, residual-1 0.8092; top-10 agreement with fp16 0.998, 0.958, 0.900, 0.818."""
    from harness import pipeline
    from harness.runs import Run
    from harness.suite import load_suite

    (tmp_path / "suite.yaml").write_text(STORAGE_SUITE)
    units = pipeline.plan(load_suite(tmp_path / "suite.yaml"), ["scifact"], sample=(50, 400), latency_queries=0)
    ndcg, runs = {}, {}
    for unit in units:
        outcome = pipeline.execute(unit, tmp_path / "results")
        kind = unit.retriever.split("=")[1]
        ndcg[kind] = outcome.metrics["ndcg@10"]
        runs[kind] = Run.from_trec(outcome.folder / "run.trec.gz")
    assert dict(cache.STATS) == {"misses": 1, "hits": 4, "compressed_misses": 4, "truncated_misses": 1}  # one encoding
    # int8 keeps each coordinate within 1/254 of the token's largest one: rankings barely move.
    assert abs(ndcg["fp16"] - ndcg["int8"]) < 0.01
    # residual-2 loses 0.0075 here; the bound (about 2.7x that) leaves room for another BLAS build
    # breaking k-means ties differently, not for a broken codec: residual-1 loses 0.025.
    assert ndcg["fp16"] - ndcg["residual-2"] < 0.02
    # Ordering, up to about one swap: a query's only relevant document dropping from rank 1 to 2
    # moves the 50-query mean by (1 - 1/log2(3)) / 50 = 0.0074.
    assert ndcg["int8"] >= ndcg["residual-4"] - 0.01
    assert ndcg["residual-4"] >= ndcg["residual-2"] - 0.01 and ndcg["residual-2"] >= ndcg["residual-1"] - 0.01
    assert ndcg["fp16"] - ndcg["residual-1"] > 0.01
    # Agreement with fp16's top 10 is far less noisy than nDCG: it falls strictly with every bit dropped.
    top = {k: {q: {d for d, _ in run[q][:10]} for q in run} for k, run in runs.items()}
    agree = {k: np.mean([len(top[k][q] & top["fp16"][q]) / 10 for q in top["fp16"]]) for k in top}
    assert agree["int8"] >= 0.99 and agree["int8"] > agree["residual-4"] > agree["residual-2"] > agree["residual-1"]


def test_a_storage_sweep_through_the_cli_encodes_once_and_builds_each_compressed_store(offline, tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: beir\ndefaults: {language: en, split: test, max_length: {query: 32, document: 64}}\n"
        "datasets:\n  scifact:\n    source: {kind: ir_datasets, id: beir/scifact/test}\n"
        "retrievers:\n  li:\n    class: late_interaction\n"
        "    params: {model: sentence-transformers/all-MiniLM-L6-v2, format: plain, dim: 64}\n"
        "    sweep: {storage: [fp16, int8]}\n")
    done = run_cli("run", str(suite), "-d", "scifact", "--max-queries", "5", "--max-documents", "40",
                   "--latency-queries", "0", "--results", str(tmp_path / "results"))
    assert done.returncode == 0, done.stderr
    assert "vector cache: 1 encoded, 1 reused" in done.stdout
    assert "compressed stores: 1 built, 0 reused" in done.stdout


def test_the_cli_runs_a_checkpoints_own_model_code_only_when_asked(tmp_path):
    from tests.checkpoints import build_jina_style_colbert

    model = build_jina_style_colbert(tmp_path / "jina", dim=64, seed=2)
    suite = tmp_path / "suite.yaml"
    suite.write_text(SCIFACT_SUITE.read_text().split("\nretrievers:")[0]
                     + f"\nretrievers:\n  jina-style:\n    class: late_interaction\n    params: {{model: {model}}}\n")
    results = tmp_path / "results"
    args = ["run", str(suite), "-d", "scifact", "--max-queries", "5", "--max-documents", "40",
            "--latency-queries", "0", "--results", str(results)]
    refused = run_cli(*args)
    assert refused.returncode == 2 and "set `trust_remote_code: true`" in refused.stderr + refused.stdout
    assert not any(results.rglob("record.json"))
    done = run_cli(*args, "--trust-remote-code")
    assert done.returncode == 0, done.stderr
    [(_, record)] = list(ResultStore(results).records())
    assert record.protocol["system"]["model"]["trust_remote_code"] is True
    assert record.protocol["system"]["encoder"]["query_marker"] == "[QueryMarker]"
    assert "trust_remote_code" not in record.retriever["params"]


@pytest.mark.parametrize("storage", ["fp16", "int8"])
def test_ties_at_the_depth_cut_fall_in_trec_eval_order(storage):
    from tests.retrievers.test_bm25 import tied_corpus

    ids, texts = tied_corpus()
    r = retriever(storage=storage, **({"dim": 128} if storage != "fp16" else {}))
    r.index(ids, texts)
    queries = ["vitamin and bones", "protein"]
    full = r.search(["q1", "q2"], queries, k=1000)
    # Copies of one text have the same token vectors: 15 documents tie on the first group's score.
    assert [s for _, s in full["q1"][:16]].count(full["q1"][0][1]) == 15
    for k in (7, 15, 22):
        cut = r.search(["q1", "q2"], queries, k=k)
        assert cut["q1"] == full["q1"][:k] and cut["q2"] == full["q2"][:k], k


def test_an_empty_document_is_encoded_as_an_empty_text():
    r = retriever()
    r.index(["a", "b", "c"], ["vitamin d and bone density", "", "the common cold"])
    assert r._store.n_docs == 3 and r._store.offsets[2] > r._store.offsets[1]  # its special tokens
    run = r.search(["q"], ["bone density"], k=10)
    assert [d for d, _ in run["q"]][0] == "a" and len(run["q"]) == 3
