"""Checkpoint merging: the weighted mean of checkpoints of one architecture, evaluated as a model."""

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from harness.encoders.checkpoint import load_checkpoint
from harness.encoders.multivector import MultiVectorEncoder
from harness.errors import UnknownNameError
from harness.retrievers.late_interaction import LateInteractionRetriever

from tests.checkpoints import MINILM_ID, build_stanford_colbert, projection_of

DOCS = ["Alterations of the architecture of cerebral white matter in the developing human brain.",
        "Hello, world!"]


def noisy_copy(dst, scale: float, seed: int):
    """all-MiniLM-L6-v2 with seeded Gaussian noise on every weight, saved as a plain checkpoint."""
    model = AutoModel.from_pretrained(MINILM_ID)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * scale)
    model.save_pretrained(dst)
    AutoTokenizer.from_pretrained(MINILM_ID).save_pretrained(dst)
    return dst


def doc_vectors(checkpoint):
    encoder = MultiVectorEncoder(checkpoint, threads=1)
    ids, keep = encoder.document_inputs(DOCS)
    return [encoder._forward([seq], [[1] * len(seq)])[0].numpy()[k] for seq, k in zip(ids, keep)]


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    return noisy_copy(tmp_path_factory.mktemp("noisy"), scale=0.01, seed=3)


def test_uniform_merge_is_the_mean_of_the_weights(offline, noisy):
    merged = load_checkpoint([MINILM_ID, str(noisy)], format="plain")
    _, model = merged.load_model()
    a = AutoModel.from_pretrained(MINILM_ID).state_dict()
    b = AutoModel.from_pretrained(noisy).state_dict()
    state = model.state_dict()
    for name in ("embeddings.word_embeddings.weight", "encoder.layer.3.output.dense.weight"):
        np.testing.assert_allclose(state[name].numpy(), ((a[name].double() + b[name].double()) / 2).float().numpy(),
                                   atol=1e-7)
    assert merged.identity["weights"] == [0.5, 0.5]
    assert [s["model"] for s in merged.identity["merge"]] == [MINILM_ID, str(noisy)]


def test_merged_token_vectors_match_an_independently_averaged_model(offline, noisy):
    merged = load_checkpoint([MINILM_ID, str(noisy)], format="plain", merge_weights=[3, 1])
    reference = AutoModel.from_pretrained(MINILM_ID).eval()
    b = AutoModel.from_pretrained(noisy).state_dict()
    reference.load_state_dict({k: 0.75 * v + 0.25 * b[k] for k, v in reference.state_dict().items()})
    tokenizer = AutoTokenizer.from_pretrained(MINILM_ID)
    got = doc_vectors(merged)
    for text, vectors in zip(DOCS, got):
        enc = tokenizer(text, truncation=True, max_length=300, return_tensors="pt")
        with torch.inference_mode():
            hidden = torch.nn.functional.normalize(reference(**enc).last_hidden_state[0], dim=-1).numpy()
        ids = enc["input_ids"][0].tolist()
        keep = [tokenizer.convert_ids_to_tokens(t) not in {",", "!", "."} for t in ids]
        np.testing.assert_allclose(vectors, hidden[keep], atol=1e-5)


def test_a_zero_weight_leaves_the_other_model_unchanged(offline, noisy):
    alone = doc_vectors(load_checkpoint(MINILM_ID, format="plain"))
    merged = doc_vectors(load_checkpoint([MINILM_ID, str(noisy)], format="plain", merge_weights=[1, 0]))
    for x, y in zip(alone, merged):
        np.testing.assert_allclose(x, y, atol=1e-6)


def test_stanford_projections_are_averaged_too(offline, tmp_path):
    a = build_stanford_colbert(tmp_path / "a", dim=64, seed=0)
    b = build_stanford_colbert(tmp_path / "b", dim=64, seed=1)
    merged = load_checkpoint([str(a), str(b)], merge_weights=[1, 3])
    expected = 0.25 * projection_of(a) + 0.75 * projection_of(b)
    np.testing.assert_allclose(merged.projection.layers[0].weight.numpy(), expected.numpy(), atol=1e-7)
    assert merged.settings.format == "stanford" and merged.identity["format"] == "stanford"


def test_unlike_checkpoints_are_refused_by_name(offline, tmp_path):
    a = build_stanford_colbert(tmp_path / "a", dim=64)
    wide = build_stanford_colbert(tmp_path / "wide", dim=128)
    long = build_stanford_colbert(tmp_path / "long", dim=64, doc_maxlen=300)
    with pytest.raises(UnknownNameError, match=r"not one architecture \(they differ in projection\)"):
        load_checkpoint([str(a), str(wide)])
    with pytest.raises(UnknownNameError, match=r"encoder settings differ in \['doc_maxlen'\]"):
        load_checkpoint([str(a), str(long)])
    with pytest.raises(UnknownNameError, match="one non-negative weight per checkpoint"):
        load_checkpoint([str(a), str(a)], merge_weights=[1, 2, 3])
    with pytest.raises(UnknownNameError, match="needs `model` to be a list"):
        load_checkpoint(str(a), merge_weights=[1])


def test_a_merge_is_a_retriever_of_its_own(offline, noisy):
    merged = LateInteractionRetriever(model=[MINILM_ID, str(noisy)], format="plain")
    single = LateInteractionRetriever(model=MINILM_ID, format="plain")
    assert merged.settings()["model"]["weights"] == [0.5, 0.5]
    key_m, key_s = merged.document_key(["d"], ["x"]), single.document_key(["d"], ["x"])
    assert key_m["model"] != key_s["model"]  # its own cache entry: the merge never reuses A's vectors
