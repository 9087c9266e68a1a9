"""Where encoding and search run: ``auto`` takes a GPU only when torch sees one, and a device that
is asked for but absent is refused by name (CI has no GPU; the GPU path itself is measured by
bench/encode.py on a GPU machine)."""

import pytest
import torch

from harness.encoders.multivector import resolve_device
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
