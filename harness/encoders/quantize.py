"""``precision: int8``: int8 linear layers with per-token input scales, on a CPU.

The CPU's analogue of bf16 on a GPU, opt-in and never the default. Every ``nn.Linear`` of the
transformer (QKV, attention output, feed-forward up and down) becomes an ``Int8Linear``: int8
weights with one scale per output channel (symmetric, made once), and its input quantised at each
call with one scale per token (per row: the row's largest magnitude maps to 127) into two int8
pieces, the row at that scale (``high``) and what rounding it lost at 1/254 of that scale
(``low``), so x ~ scale * (high + low / 254). The product is two int8 x int8 GEMMs with exact
int32 sums, added, then scaled by the token's and the channel's scale, plus the bias. Attention
scores, softmax, GELU, LayerNorm, the residual adds and the projection stay float32.

Why, measured as token vectors' cosine to fp32's on six SciFact documents (doc_maxlen 128,
tests/encoders/test_int8.py) and SciFact's nDCG@10 minus fp32's at dims 384/256/128/64
(bench/README.md):

- one scale per tensor for a batch's inputs (torch's ``quantize_dynamic``, used first): 0.968 on
  average, 0.905 at worst; nDCG@10 +0.0032 / +0.0018 / +0.0047 / -0.0010. The feed-forward
  layers' inputs have outlier tokens and dimensions, and one scale leaves the rest few steps.
- one scale per token, one int8 piece: 0.9978 / 0.9949; nDCG@10 -0.0015 / -0.0006 / +0.0010 /
  +0.0035. Of the error left (12 documents at doc_maxlen 300: 1 - cosine 2.3e-3), the inputs'
  rounding was 70% (weights alone int8: 5.7e-4), spread over every kind of layer: keeping one
  kind in fp32 removed at most 44% (feed-forward down; Q, K and V 38%).
- one scale per token, two int8 pieces (this scheme): 0.9995 / 0.9982 (1 - cosine 5.7e-4 on
  the 12 documents, the int8 weights' own error: the inputs' rounding no longer shows); nDCG@10
  -0.0001 / +0.0017 / +0.0036 / +0.0036: still not within 0.003 at 128 and 64, so the deltas are
  not the vectors' error in proportion (four times smaller error, deltas no smaller there). It
  costs a second int8 product per layer; with the compiled quantiser it takes 0.8x fp32's time here
  (bench/README.md).

A token's scale depends on that token alone and int32 sums are exact, so a document's vectors do
not depend on the batch it was encoded in.

The products run on oneDNN's int8 linear (``torch.ops.onednn.qlinear_pointwise``, the kernel of
torch's own x86 int8 inference, on AMX or VNNI where the CPU has them), with an input scale of 1
(``high``) or 1/254 (``low``, added into the first by oneDNN's sum post-op) and the channel
scales, float32 out; the token scales and the bias are one ``addcmul`` after it (oneDNN's op takes
one input scale per tensor, not per row). Without those oneDNN ops (torch built without them) the
products are ``torch._int_mm`` (int32 out): the same integers. An attention block's Q, K and V
layers, called on one input, are one product over their stacked weights
(``SharedInputProjections``): that input is quantised once, not three times.

Being quantised, int8 is a protocol setting, measured by its nDCG: the protocol card carries
``precision`` and ``int8_scheme`` (``INT8_SCHEME``), and so does the document store's key, so
stores and results of an earlier scheme are never taken for this one's. A GPU device is refused
(these kernels are the CPU's).
"""

from __future__ import annotations

from harness.errors import ParameterError

# What int8 computes, in the protocol card and the document key beside ``precision: int8``.
INT8_SCHEME = {"weights": "int8, symmetric, one scale per output channel",
               "activations": ("two int8 pieces, symmetric, one scale per token, computed at each call: "
                               "the input at that scale and its rounding error at 1/254 of it"),
               "layers": "every linear layer of the transformer", "accumulation": "int32"}


def check_int8_device(device: str, asked: str | None = None) -> None:
    """Refuse int8 on anything but a CPU: ``device`` as a retriever names it (``auto`` passes, and
    is checked again once resolved), or as the encoder resolved ``asked``."""
    if device in ("cpu", "auto"):
        return
    chose = f"device {asked!r} chose {device!r}" if asked and asked != device else f"device is {device!r}"
    raise ParameterError(
        f"precision 'int8' quantises the encoder's linear layers for a CPU (its int8 kernels are "
        f"oneDNN's, which have no GPU version), but {chose}; set device: cpu for int8, or use precision: "
        f"bf16 (or fp32) on a GPU.", "precision")


_SHARED_INPUT = ("query", "key", "value")  # BERT-style attention: three layers of one input


def quantize_linear_layers(model, kernel: str | None = None, share_inputs: bool = True):
    """``model`` (on the CPU, float32) with every ``nn.Linear`` replaced by an ``Int8Linear``, in
    place. ``kernel``: ``onednn`` or ``int_mm`` (default: oneDNN's where torch has it). With
    ``share_inputs``, an attention block's query, key and value layers are one product
    (``SharedInputProjections``: their input quantised once; the same numbers)."""
    import torch

    from harness.encoders.cpu_kernels import replace_linear_layers
    from harness.encoders.int8_linear import Int8Linear, ProjectionPart, SharedInputProjections

    for block in list(model.modules()) if share_inputs else []:
        layers = [getattr(block, name, None) for name in _SHARED_INPUT]
        if all(type(m) is torch.nn.Linear for m in layers) and len({m.in_features for m in layers}) == 1:
            block.shared_input_int8 = SharedInputProjections(layers, kernel)
            for i, name in enumerate(_SHARED_INPUT):
                setattr(block, name, ProjectionPart(block.shared_input_int8, i))
    replace_linear_layers(model, lambda linear: Int8Linear(linear, kernel))
    return model
