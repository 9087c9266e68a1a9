"""Where encoding and search run: ``auto`` takes a GPU only when torch sees one, and a device that
is asked for but absent is refused by name (CI has no GPU; the GPU path itself is measured by
bench/encode.py on a GPU machine)."""

import numpy as np
import pytest
import torch

from harness.devices import resolve_device
from harness.errors import UnknownNameError


def test_auto_is_the_cpu_without_a_gpu_and_a_missing_gpu_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(UnknownNameError, match=r"device 'cuda:1' was asked for, but torch .* sees no CUDA GPU"):
        resolve_device("cuda:1")


def test_auto_takes_the_gpu_when_torch_sees_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"
    assert resolve_device("cuda:0") == "cuda:0"


def test_an_unknown_device_name_is_refused():
    with pytest.raises(UnknownNameError, match="Unknown device 'gpu0'; use auto, cpu, cuda or cuda:<n>"):
        resolve_device("gpu0")


def test_a_retriever_checks_the_device_name_at_once_and_resolves_it_at_first_use(monkeypatch):
    from harness.retrievers.late_interaction import LateInteractionRetriever

    with pytest.raises(UnknownNameError, match="Unknown device 'gpu0'"):
        LateInteractionRetriever("sentence-transformers/all-MiniLM-L6-v2", format="plain", device="gpu0")
    r = LateInteractionRetriever("sentence-transformers/all-MiniLM-L6-v2", format="plain", device="cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UnknownNameError, match="sees no CUDA GPU"):
        r.device


def _encode(tmp_path, device: str, precision: str):
    from harness.encoders.checkpoint import load_checkpoint
    from harness.encoders.multivector import MultiVectorEncoder
    from harness.index.token_store import TokenStoreWriter

    docs = ["Alterations of the architecture of cerebral white matter.", "Hello, world!",
            "A much longer document " * 40] * 5
    checkpoint = load_checkpoint("sentence-transformers/all-MiniLM-L6-v2",
                                 overrides={"query_maxlen": 32, "doc_maxlen": 64})
    enc = MultiVectorEncoder(checkpoint, precision=precision, device=device, batch_tokens=256,
                             chunk_tokens=256)  # 4 documents a chunk
    store = enc.encode_documents(docs, lambda c, d: TokenStoreWriter(tmp_path / f"{device}-{precision}", c, d,
                                                                     dtype="float32"))
    return enc, store


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_gpu_encodes_the_store_a_cpu_encodes(tmp_path):
    # The GPU path: chunks tokenised ahead, rows gathered on the device and copied back through
    # pinned memory, no cuDNN attention. In fp32 both devices compute the same products.
    _, cpu = _encode(tmp_path, "cpu", "fp32")
    gpu_encoder, gpu = _encode(tmp_path, "cuda", "fp32")
    _, bf16 = _encode(tmp_path, "cuda", "bf16")
    assert gpu_encoder.tokenize_ahead
    assert gpu.offsets.tolist() == cpu.offsets.tolist() == bf16.offsets.tolist()
    np.testing.assert_allclose(gpu.vectors, cpu.vectors, atol=1e-4)
    # bf16: every vector within bf16 rounding of its fp32 counterpart (both unit length)
    assert np.sum(bf16.vectors * cpu.vectors, axis=1).min() > 0.99
