"""``precision: int8``: dynamic int8 quantisation of an encoder's linear layers, on a CPU.

The CPU's analogue of bf16 on a GPU, opt-in and never the default: every ``nn.Linear`` of the
transformer (QKV, attention output, feed-forward) keeps int8 weights (one scale per output
channel) and quantises its input per call (one scale per tensor), so its products run on int8 GEMM
kernels (fbgemm); attention scores, softmax, GELU, LayerNorm and the projection stay float32.

It is not a rounding of fp32: on six SciFact documents the token vectors' cosine to fp32's is 0.968
on average and 0.905 at worst (per-tensor weight scales: 0.922 / 0.663; only the attention's
linear layers quantised: 0.997 / 0.992, but 0.88x of fp32's time instead of 0.60-0.65x). The
activations' per-tensor scale is what costs: the feed-forward layers' inputs have outlier
dimensions. So int8 is a protocol setting, measured by its nDCG (bench/README.md): the protocol
card and the document store's key carry ``precision``.

torch's dynamic quantisation (``torch.ao.quantization.quantize_dynamic``) has CPU kernels only, so
a GPU device is refused. torch 2.13 marks that API deprecated in favour of torchao (not installed
here); the warnings it raises are silenced in this one call.
"""

from __future__ import annotations

import warnings

from harness.errors import ParameterError


def check_int8_device(device: str, asked: str | None = None) -> None:
    """Refuse int8 on anything but a CPU: ``device`` as a retriever names it (``auto`` passes, and
    is checked again once resolved), or as the encoder resolved ``asked``."""
    if device in ("cpu", "auto"):
        return
    chose = f"device {asked!r} chose {device!r}" if asked and asked != device else f"device is {device!r}"
    raise ParameterError(
        f"precision 'int8' quantises the encoder's linear layers for a CPU (torch's dynamic int8 "
        f"quantisation has no GPU kernels), but {chose}; set device: cpu for int8, or use precision: "
        f"bf16 (or fp32) on a GPU.", "precision")


def quantize_linear_layers(model):
    """``model`` (on the CPU, float32) with every ``nn.Linear`` replaced by its dynamic int8 version."""
    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*(deprecated|torchao).*", category=UserWarning)
        return quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig})
