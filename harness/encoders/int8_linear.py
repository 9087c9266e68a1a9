"""``Int8Linear``: the int8 linear layer of ``precision: int8`` (quantize.py says what and why).

An ``nn.Linear``'s weights as int8 with one scale per output channel, made once; its input
quantised at each call with one scale per token (row); the product an int8 GEMM with exact int32
sums, on oneDNN's int8 linear (``torch.ops.onednn.qlinear_pointwise``, AMX or VNNI where the CPU
has them) or, where torch lacks those ops, ``torch._int_mm``: the same integers either way.
"""

from __future__ import annotations

import numba  # only int8 imports this module (quantize.py, lazily): numba's start-up is paid there
import numpy as np
import torch

from harness.kernels.jit import compiled

_TINY = 1e-12  # a row or channel of zeros gets this scale, and quantises to zeros


def onednn_int8_available() -> bool:
    return hasattr(torch.ops.onednn, "qlinear_pointwise") and hasattr(torch.ops.onednn, "qlinear_prepack")


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(M, K) float32 -> two (M, K) int8 pieces and (M, 1) float32 scales, with row i ~
    scale[i] * (high[i] + low[i] / 254): ``high`` is the row at one scale per token (its largest
    magnitude at 127), ``low`` what ``high`` rounded off, at 254 times finer steps.

    One compiled pass over the rows (numba, as many threads as torch's): in eager torch the same
    took eight memory-bound passes (a norm, a multiply, two roundings, a subtraction, conversions),
    38% of an int8 encoding's time (bench/README.md). The integers are torch's: x times the scale's
    reciprocal in float32, rounded half to even (``torch.quantize_per_channel``'s,
    tests/encoders/test_int8.py)."""
    rows = x.detach().float().contiguous()
    m, k = rows.shape
    high = torch.empty((m, k), dtype=torch.int8)
    low = torch.empty((m, k), dtype=torch.int8)
    scale = torch.empty((m, 1), dtype=torch.float32)
    if m:
        threads = min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)
        numba.set_num_threads(threads)
        _quantize_rows(rows.numpy(), high.numpy(), low.numpy(), scale.numpy()[:, 0])
    return high, low, scale


@compiled(parallel=True)
def _quantize_rows(x, high, low, scale):
    tiny, top, steps_low = np.float32(_TINY), np.float32(127.0), np.float32(LOW_STEPS)
    for i in numba.prange(x.shape[0]):
        peak = np.float32(0.0)
        for j in range(x.shape[1]):
            peak = max(peak, abs(x[i, j]))
        s = max(peak, tiny) / top
        inverse = np.float32(1.0) / s
        for j in range(x.shape[1]):
            steps = x[i, j] * inverse  # |steps| <= 127 up to one rounding: no clamp needed
            h = np.rint(steps)
            high[i, j] = np.int8(h)
            low[i, j] = np.int8(np.rint((steps - h) * steps_low))  # (steps - h) is within [-0.5, 0.5]
        scale[i] = s


LOW_STEPS = 254.0  # the low piece's steps per step of the high piece: |low| <= 127


class Int8Linear(torch.nn.Module):
    """An ``nn.Linear`` as int8 weights (per output channel) times its input in two int8 pieces
    (per token): two int8 products, added, then scaled per token and channel."""

    def __init__(self, linear: torch.nn.Linear, kernel: str | None = None):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = linear.weight.detach().float()
        scale = weight.abs().amax(dim=1).clamp_min(_TINY) / 127.0
        self.register_buffer("weight_int8", torch.round(weight / scale[:, None]).clamp_(-127, 127).to(torch.int8))
        self.register_buffer("weight_scale", scale)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().float().clone())
        self.kernel = kernel or ("onednn" if onednn_int8_available() else "int_mm")
        if self.kernel == "onednn":
            self._packed = torch.ops.onednn.qlinear_prepack(self.weight_int8, None)
            self._zero_points = torch.zeros(self.out_features, dtype=torch.int64)
        elif self.kernel == "int_mm":
            self._weight_t = self.weight_int8.t()  # (K, N), as _int_mm takes it
        else:
            raise ValueError(f"unknown int8 kernel {kernel!r}; choose onednn or int_mm")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, kernel={self.kernel}"

    def product(self, high: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        """(high + low / 254) @ weight_int8.T x channel scales, float32 (M, N)."""
        if self.kernel == "onednn":
            # float32 out: int32 sums x channel scales (x input scale 1); the low piece's product,
            # at input scale 1/254, is added into it by oneDNN's sum post-op (in place).
            y = torch.ops.onednn.qlinear_pointwise(high, 1.0, 0, self._packed, self.weight_scale, self._zero_points,
                                                   None, 1.0, 0, torch.float32, "none", [], "")
            return torch.ops.onednn.qlinear_pointwise.binary(low, 1.0 / LOW_STEPS, 0, self._packed, self.weight_scale,
                                                             self._zero_points, y, None, 1.0, 0, torch.float32, 1.0,
                                                             0, "sum", 1.0, "none", [], "")
        y = torch._int_mm(high, self._weight_t).float().mul_(self.weight_scale)
        return y.add_(torch._int_mm(low, self._weight_t).float().mul_(self.weight_scale / LOW_STEPS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features).float()
        high, low, row_scale = quantize_rows(rows)
        y = self.product(high, low)
        # in place on the product's output: a fresh tensor's pages fault in on every call
        y = y.mul_(row_scale) if self.bias is None else torch.addcmul(self.bias, y, row_scale, out=y)
        return y.reshape(*x.shape[:-1], self.out_features)


class SharedInputProjections(torch.nn.Module):
    """Linear layers called one after another on the same input (an attention block's Q, K and V)
    as one ``Int8Linear`` over their stacked weights: the input is quantised once and multiplied
    once (the same integers and scales as each layer alone, so the same numbers). The first part's
    call computes every part; the others take their columns while the input is the same tensor,
    and compute afresh for any other input."""

    def __init__(self, layers: list[torch.nn.Linear], kernel: str | None = None):
        super().__init__()
        joint = torch.nn.Linear(layers[0].in_features, sum(m.out_features for m in layers),
                                bias=all(m.bias is not None for m in layers))
        with torch.no_grad():
            joint.weight.copy_(torch.cat([m.weight for m in layers]))
            if joint.bias is not None:
                joint.bias.copy_(torch.cat([m.bias for m in layers]))
        self.joint = Int8Linear(joint, kernel)
        self.starts = [0, *torch.tensor([m.out_features for m in layers]).cumsum(0).tolist()]
        self._input = self._output = None
        self._taken = 0

    def part(self, x: torch.Tensor, i: int) -> torch.Tensor:
        if x is not self._input:
            self._input, self._output, self._taken = x, self.joint(x), 0
        y = self._output[..., self.starts[i]:self.starts[i + 1]]
        self._taken += 1
        if self._taken == len(self.starts) - 1:  # every part taken: let the tensors go
            self._input = self._output = None
        return y


class ProjectionPart(torch.nn.Module):
    """One layer of a ``SharedInputProjections``, in the place of the ``nn.Linear`` it was."""

    def __init__(self, shared: SharedInputProjections, index: int):
        super().__init__()
        object.__setattr__(self, "shared", shared)  # not a child: the block holds it once
        self.index = index
        self.in_features = shared.joint.in_features
        self.out_features = shared.starts[index + 1] - shared.starts[index]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shared.part(x, self.index)
