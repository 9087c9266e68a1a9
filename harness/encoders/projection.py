"""The layers between an encoder's hidden states and its token vectors (normalisation comes after).

- Stanford ColBERT: one ``linear`` without bias (colbert/modeling/hf_colbert.py).
- PyLate: its ``Dense`` modules in ``modules.json`` order, each ``activation(linear(x))``, plus ``x``
  (or ``residual(x)`` when the sizes differ) with ``use_residual`` (pylate/models/Dense.py).

A ``Projection`` holds the tensors and names; ``module()`` makes the torch module that runs them.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
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

    def module(self):
        """A torch module computing the layers in order, float32 on the CPU until moved."""
        import torch

        return torch.nn.Sequential(*[_layer_module(layer) for layer in self.layers]).eval()

    @staticmethod
    def average(parts: list[Projection], weights: list[float]) -> Projection:
        """The weighted mean of projections of one signature, in float64, cast back."""
        import torch

        layers = []
        for i, first in enumerate(parts[0].layers):
            mean = {name: sum(w * p.layers[i].tensors()[name].to(torch.float64) for p, w in zip(parts, weights))
                    .to(tensor.dtype) for name, tensor in first.tensors().items()}
            layers.append(DenseLayer(mean["weight"], mean.get("bias"), first.activation, first.residual,
                                     mean.get("residual_weight")))
        return Projection(tuple(layers))


def activation_module(path: str):
    """An instance of the torch.nn module class that ``path`` names (PyLate's import_from_string)."""
    module_name, _, class_name = path.rpartition(".")
    return getattr(importlib.import_module(module_name), class_name)()


def _layer_module(layer: DenseLayer):
    import torch

    out_features, in_features = layer.weight.shape
    linear = torch.nn.Linear(in_features, out_features, bias=layer.bias is not None)
    with torch.no_grad():
        linear.weight.copy_(layer.weight)
        if layer.bias is not None:
            linear.bias.copy_(layer.bias)
    main = torch.nn.Sequential(linear, activation_module(layer.activation))
    if not layer.residual:
        return main
    side = torch.nn.Identity()
    if layer.residual_weight is not None:
        side = torch.nn.Linear(in_features, out_features, bias=False)
        with torch.no_grad():
            side.weight.copy_(layer.residual_weight)
    return _residual_class()(main, side)


@functools.cache
def _residual_class():
    import torch

    class Residual(torch.nn.Module):
        """``main(x) + side(x)``: PyLate's Dense with ``use_residual``."""

        def __init__(self, main, side):
            super().__init__()
            self.main, self.side = main, side

        def forward(self, x):
            return self.main(x) + self.side(x)

    return Residual
