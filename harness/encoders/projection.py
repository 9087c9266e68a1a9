"""The layers between an encoder's hidden states and its token vectors (normalisation comes after).

- Stanford ColBERT: one ``linear`` without bias (colbert/modeling/hf_colbert.py).
- PyLate: its ``Dense`` modules in ``modules.json`` order, each ``activation(linear(x))``, plus ``x``
  (or ``residual(x)`` when the sizes differ) with ``use_residual`` (pylate/models/Dense.py).

A ``Projection`` holds the tensors and names, and applies them to a tensor of hidden states.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass, replace
from typing import Any

IDENTITY = "torch.nn.modules.linear.Identity"


@dataclass(frozen=True)
class DenseLayer:
    weight: Any  # torch.Tensor (out_features, in_features)
    bias: Any = None  # torch.Tensor (out_features,) or None
    activation: str = IDENTITY  # import path of a torch.nn module class, as PyLate's config names it
    residual: bool = False  # add the input back: as is, or through ``residual_weight`` when sizes differ
    residual_weight: Any = None  # torch.Tensor (out_features, in_features) or None

    def describe(self) -> dict[str, Any]:
        out, inp = self.weight.shape
        return {"in": int(inp), "out": int(out), "bias": self.bias is not None,
                "activation": self.activation.rsplit(".", 1)[-1], "residual": self.residual}

    def tensors(self) -> dict[str, Any]:
        named = {"weight": self.weight, "bias": self.bias, "residual_weight": self.residual_weight}
        return {k: v for k, v in named.items() if v is not None}


@dataclass(frozen=True)
class Projection:
    layers: tuple[DenseLayer, ...]

    @property
    def dim(self) -> int:
        return int(self.layers[-1].weight.shape[0])

    def describe(self) -> list[dict[str, Any]]:
        """What the protocol card records: each layer's sizes, bias, activation and residual."""
        return [layer.describe() for layer in self.layers]

    def signature(self) -> tuple:
        """What must agree for two projections to be averaged."""
        return tuple((tuple(sorted((k, tuple(v.shape)) for k, v in layer.tensors().items())),
                      layer.activation, layer.residual) for layer in self.layers)

    def to(self, device=None, dtype=None) -> Projection:
        """The same layers with their tensors on ``device`` in ``dtype``."""
        return Projection(tuple(replace(layer, **{name: t.to(device=device, dtype=dtype)
                                                  for name, t in layer.tensors().items()})
                                for layer in self.layers))

    def __call__(self, x):
        """``x`` (..., in_features) through every layer, as PyLate's ``Dense.forward`` computes it."""
        from torch.nn.functional import linear

        for layer in self.layers:
            y = activation_module(layer.activation)(linear(x, layer.weight, layer.bias))
            if layer.residual:
                y = y + (x if layer.residual_weight is None else linear(x, layer.residual_weight))
            x = y
        return x

    @staticmethod
    def average(parts: list[Projection], weights: list[float]) -> Projection:
        """The weighted mean of projections of one signature, in float64, cast back."""
        import torch

        layers = []
        for i, first in enumerate(parts[0].layers):
            mean = {name: sum(w * p.layers[i].tensors()[name].to(torch.float64) for p, w in zip(parts, weights))
                    .to(tensor.dtype) for name, tensor in first.tensors().items()}
            layers.append(replace(first, **mean))
        return Projection(tuple(layers))


@functools.cache
def activation_module(path: str):
    """An instance of the torch.nn module class that ``path`` names (PyLate's import_from_string);
    one per path, since activations hold no state."""
    module_name, _, class_name = path.rpartition(".")
    return getattr(importlib.import_module(module_name), class_name)()
