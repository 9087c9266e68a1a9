"""The CPU forward pass on oneDNN's fused linear kernels, with freed pages kept for reuse.

Profiled on SciFact documents (torch.profiler, 4,096-token batches, 2 threads), the eager
transformers forward spent 15% of its time in ``aten::copy_``: ``addmm`` first copies the bias,
broadcast, into a freshly allocated output, and every fresh output above glibc's mmap threshold
page-faults on that first write. Two changes remove it, with the same model code and weights:

- ``fuse_linear_layers``: every ``nn.Linear`` runs as ``torch.ops.mkldnn._linear_pointwise``,
  oneDNN's linear with the bias as a post-op (no copy), and a BERT-style ``*Intermediate`` block
  (dense then exact GELU) as one such call with GELU as a second post-op: the fusion that
  inductor's ``freezing`` pass makes of these layers, without a compile. ``torch.compile``
  (inductor, freezing, dynamic shapes) was measured too: about as fast as this eager path, after
  80-100 s of compiling on two cores, and its vectors 1.4e-5 from eager's (bench/README.md).
  These stay within 1e-5 of the plain model's (tests/encoders/test_cpu_kernels.py).
- ``pages_kept``: while encoding, glibc serves activations (at most 4,096 x 1,536 floats, 24 MiB)
  from its heap and keeps freed memory instead of returning it to the system, so the next batch's
  tensors land on pages already mapped (``mallopt``: mmap threshold 32 MiB, the most glibc allows,
  and a 1 GiB trim threshold); afterwards the defaults are set back and the free memory returned
  (``malloc_trim``). With ``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_`` in the
  environment, or off glibc, nothing is changed.

``cpu_kernels="eager"`` on the encoder keeps the plain transformers forward and glibc's defaults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from contextlib import contextmanager

import torch

CPU_KERNELS = ("fused", "eager")

# mallopt parameters (malloc.h) and glibc's defaults.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_DEFAULT_THRESHOLD = 128 * 1024
_KEPT_MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc refuses more (HEAP_MAX_SIZE / 2 on 64-bit)
_KEPT_TRIM_THRESHOLD = 1 << 30


def fusable(model) -> bool:
    """Whether oneDNN's fused linear can run ``model``: float32 weights, on a CPU, with torch built
    with oneDNN."""
    params = list(model.parameters())
    return (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
            and bool(params) and all(p.device.type == "cpu" and p.dtype == torch.float32 for p in params))


def fuse_linear_layers(model):
    """``model`` with every ``nn.Linear`` on oneDNN's linear (bias fused), and each BERT-style
    intermediate block (dense, exact GELU) on one linear call with GELU fused; in place."""
    replace_linear_layers(model, FusedLinear.from_linear)
    for module in model.modules():
        if _is_dense_gelu_block(module):
            module.forward = _DenseGelu(module.dense)
    return model


def replace_linear_layers(model, make) -> None:
    """Every plain ``nn.Linear`` of ``model`` replaced by ``make(linear)``, in place (subclasses,
    such as layers already replaced, are left as they are)."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is torch.nn.Linear:
                setattr(parent, name, make(child))


class FusedLinear(torch.nn.Linear):
    """nn.Linear whose product, bias and (optionally) exact GELU are one oneDNN call."""

    @classmethod
    def from_linear(cls, linear: torch.nn.Linear) -> "FusedLinear":
        fused = cls.__new__(cls)
        fused.__dict__.update(linear.__dict__)  # the same parameters, not copies
        return fused

    def forward(self, x, activation: str = "none"):
        # The "none" algorithm makes the "gelu" post-op exact (erf), as nn.functional.gelu is.
        return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, activation, [],
                                                  "none" if activation == "gelu" else "")


class _DenseGelu:
    """An intermediate block's forward: dense and GELU as one fused linear call."""

    def __init__(self, dense: FusedLinear):
        self.dense = dense

    def __call__(self, hidden_states):
        return self.dense(hidden_states, activation="gelu")


def _is_dense_gelu_block(module) -> bool:
    """A transformers ``*Intermediate`` block (BERT, RoBERTa, XLM-R, ELECTRA...): only ``dense``
    then ``intermediate_act_fn``, the latter exact GELU (not the tanh approximation)."""
    act = getattr(module, "intermediate_act_fn", None)
    if not type(module).__name__.endswith("Intermediate") or not isinstance(getattr(module, "dense", None), FusedLinear):
        return False
    if set(dict(module.named_children())) - {"dense", "intermediate_act_fn"}:
        return False
    if isinstance(act, torch.nn.GELU):
        return act.approximate == "none"
    return type(act).__name__ == "GELUActivation" and getattr(act, "act", None) is torch.nn.functional.gelu


def _libc():
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") or os.environ.get("MALLOC_TRIM_THRESHOLD_"):
        return None  # the user chose glibc's settings
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


@contextmanager
def pages_kept():
    """Inside: glibc reuses freed heap pages for new tensors instead of mapping fresh ones. Yields
    whether the settings were changed (False off glibc or when the environment sets them)."""
    libc = _libc()
    changed = bool(libc and libc.mallopt(_M_MMAP_THRESHOLD, _KEPT_MMAP_THRESHOLD)
                   and libc.mallopt(_M_TRIM_THRESHOLD, _KEPT_TRIM_THRESHOLD))
    try:
        yield changed
    finally:
        if libc is not None:
            libc.mallopt(_M_MMAP_THRESHOLD, _DEFAULT_THRESHOLD)
            libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_THRESHOLD)
            libc.malloc_trim(0)
