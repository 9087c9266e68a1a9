"""``precision: int8``: dynamic int8 linear layers on a CPU. Its vectors are near fp32's (cosine 0.97
on average) and not theirs (it is really quantised), it is a protocol setting, and a GPU is refused."""

import numpy as np
import pytest
import torch

from harness.errors import ParameterError

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def scifact_documents(n: int) -> list[str]:
    from harness.data.load import load_dataset
    from harness.suite import load_suite

    from tests.conftest import SCIFACT_SUITE

    spec = load_suite(SCIFACT_SUITE).dataset("scifact")
    return load_dataset(spec, "beir").corpus.joined(spec.text.document_fields, spec.text.separator)[:n]


def encode(tmp_path, precision: str, documents: list[str]):
    from harness.encoders.checkpoint import load_checkpoint
    from harness.encoders.multivector import MultiVectorEncoder
    from harness.index.token_store import TokenStoreWriter

    checkpoint = load_checkpoint(MODEL, format="plain", overrides={"query_maxlen": 32, "doc_maxlen": 128})
    encoder = MultiVectorEncoder(checkpoint, precision=precision, device="cpu")
    store = encoder.encode_documents(documents, lambda c, d: TokenStoreWriter(tmp_path / precision, c, d,
                                                                              dtype="float32"))
    return encoder, store


def test_int8_vectors_are_within_rounding_of_fp32_and_not_equal_to_them(offline, tmp_path):
    documents = scifact_documents(6)
    _, fp32 = encode(tmp_path, "fp32", documents)
    int8_encoder, int8 = encode(tmp_path, "int8", documents)
    linear = [m for m in int8_encoder.model.modules() if type(m) is torch.nn.Linear]
    quantised = [m for m in int8_encoder.model.modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)]
    assert not linear and len(quantised) >= 36  # 6 layers x (Q, K, V, output, up, down)
    assert np.array_equal(np.asarray(fp32.offsets), np.asarray(int8.offsets))  # the same tokens kept
    a, b = np.asarray(fp32.vectors, dtype=np.float64), np.asarray(int8.vectors, dtype=np.float64)
    cosine = (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    # 6 documents at doc_maxlen 128: 679 tokens; measured mean 0.968, worst 0.905 (quantize.py says why)
    assert a.shape[0] > 500 and cosine.mean() > 0.95 and cosine.min() > 0.85
    assert cosine.mean() < 0.995 and np.abs(a - b).max() > 1e-2  # really int8, not fp32 rounded


def test_int8_is_in_the_protocol_card_and_the_document_key(offline):
    from harness.retrievers.late_interaction import LateInteractionRetriever

    fp32, int8 = (LateInteractionRetriever(MODEL, format="plain", precision=p, device="cpu") for p in ("fp32", "int8"))
    assert int8.settings()["precision"] == "int8" and fp32.settings()["precision"] == "fp32"
    assert {k: v for k, v in int8.settings().items() if k != "precision"} == \
        {k: v for k, v in fp32.settings().items() if k != "precision"}
    assert int8.document_key(["d1"], ["a text"])["precision"] == "int8"
    assert int8.document_key(["d1"], ["a text"]) != fp32.document_key(["d1"], ["a text"])  # never fp32's store
    assert LateInteractionRetriever(MODEL, format="plain").precision == "fp32"  # never the default


def test_int8_on_a_gpu_is_refused_by_name():
    from harness.retrievers.late_interaction import LateInteractionRetriever

    expected = ("precision 'int8' quantises the encoder's linear layers for a CPU (torch's dynamic int8 "
                "quantisation has no GPU kernels), but device is 'cuda:0'; set device: cpu for int8, or use "
                "precision: bf16 (or fp32) on a GPU.")
    with pytest.raises(ParameterError) as err:
        LateInteractionRetriever(MODEL, format="plain", precision="int8", device="cuda:0")
    assert str(err.value) == expected and err.value.param == "precision"


def test_int8_with_auto_on_a_machine_with_a_gpu_is_refused_before_loading_the_model(monkeypatch):
    from harness.encoders.checkpoint import load_checkpoint
    from harness.encoders.multivector import MultiVectorEncoder

    checkpoint = load_checkpoint(MODEL, format="plain")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(ParameterError, match=r"but device 'auto' chose 'cuda'; set device: cpu for int8"):
        MultiVectorEncoder(checkpoint, precision="int8", device="auto")
