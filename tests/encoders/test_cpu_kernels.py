"""The CPU encoder on oneDNN's fused linear kernels: the same vectors as the plain model, on real
SciFact documents of several lengths, and glibc's settings while encoding."""

import numpy as np
import pytest
import torch

from harness.encoders.cpu_kernels import FusedLinear, pages_kept
from harness.errors import UnknownNameError

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def scifact_documents() -> list[str]:
    from harness.data.load import load_dataset
    from harness.suite import load_suite

    from tests.conftest import SCIFACT_SUITE

    spec = load_suite(SCIFACT_SUITE).dataset("scifact")
    return load_dataset(spec, "beir").corpus.joined(spec.text.document_fields, spec.text.separator)


def encoder(**kwargs):
    from harness.encoders.checkpoint import load_checkpoint
    from harness.encoders.multivector import MultiVectorEncoder

    checkpoint = load_checkpoint(MODEL, format="plain", overrides={"query_maxlen": 32, "doc_maxlen": 300})
    return MultiVectorEncoder(checkpoint, device="cpu", **kwargs)


def test_fused_vectors_equal_the_plain_models_at_several_lengths(offline, tmp_path):
    from transformers import AutoModel, AutoTokenizer

    from harness.index.token_store import TokenStoreWriter

    texts = scifact_documents()[:400]
    by_length = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    words = texts[by_length[200]].split()
    # the first words of a document, the shortest documents, middling ones, ones cut at 300 tokens
    picked = [" ".join(words[:6]), " ".join(words[:40])] + [texts[i] for i in by_length[:2] + by_length[199:201] +
                                                            by_length[-2:]]
    fused, eager = encoder(), encoder(cpu_kernels="eager")
    assert (fused.cpu_kernels, eager.cpu_kernels) == ("fused", "eager")
    stores = {enc.cpu_kernels: enc.encode_documents(picked, lambda c, d, k=enc.cpu_kernels: TokenStoreWriter(
        tmp_path / k, c, d, dtype="float32")) for enc in (fused, eager)}

    tokenizer, model = AutoTokenizer.from_pretrained(MODEL), AutoModel.from_pretrained(MODEL).eval()
    lengths = []
    for i, text in enumerate(picked):
        batch = tokenizer(text, truncation=True, max_length=300, return_tensors="pt")
        with torch.inference_mode():  # one document alone: no padding, no batch
            hidden = torch.nn.functional.normalize(model(**batch).last_hidden_state[0], dim=-1).numpy()
        keep = [t not in fused.skip_ids for t in batch["input_ids"][0].tolist()]
        lengths.append(len(keep))
        np.testing.assert_allclose(stores["fused"].doc(i), hidden[keep], atol=1e-5, rtol=0)
        np.testing.assert_allclose(stores["fused"].doc(i), stores["eager"].doc(i), atol=1e-5, rtol=0)
    assert lengths[0] < 30 < lengths[1] < 100 <= lengths[2] < lengths[4] < 300 == lengths[-1]  # 21, 59, 102, 265, 300


def test_fused_kernels_replace_every_linear_layer_for_fp32_on_a_cpu_only(offline):
    fused = encoder()
    layers = [m for m in fused.model.modules() if isinstance(m, torch.nn.Linear)]
    # 6 layers x (Q, K, V, out, up, down), and the pooler
    assert len(layers) == 37 and all(type(m) is FusedLinear for m in layers)
    intermediate = fused.model.encoder.layer[0].intermediate
    assert intermediate.forward.dense is intermediate.dense  # dense + GELU in one call
    # int8's linear layers are its own (encoders/int8_linear.py); "fused" keeps its pages, as fp32's
    for kwargs, kernels in (({"cpu_kernels": "eager"}, "eager"), ({"precision": "int8"}, "fused"),
                            ({"precision": "int8", "cpu_kernels": "eager"}, "eager")):
        other = encoder(**kwargs)
        assert other.cpu_kernels == kernels and not any(type(m) is FusedLinear for m in other.model.modules())
    with pytest.raises(UnknownNameError, match="Unknown cpu_kernels 'compiled'; choose fused or eager."):
        encoder(cpu_kernels="compiled")


def test_glibc_settings_are_changed_inside_and_left_alone_when_the_user_set_them(monkeypatch):
    # Whether glibc then reuses a freed activation's pages depends on the heap's history: a
    # standalone check (fill 24 MiB, free it, fill again) counted 6,144 fresh page faults inside as
    # outside, so only the settings are asserted here.
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    with pages_kept() as changed:
        assert changed
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "0")
    with pages_kept() as changed:  # the user's own glibc settings are left alone
        assert not changed
