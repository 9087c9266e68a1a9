"""Where encoders and MaxSim run: device names checked without torch, resolved with it.

The device is a cost fact, never part of the protocol: a name is checked when a retriever is
built (so a typo fails before any work) and resolved at first use (so a cached re-run that skips
its unit never imports torch).
"""

from __future__ import annotations

import re

from harness.errors import UnknownNameError


def check_device_name(device: str) -> str:
    """A device name's form, checked without importing torch (where it is, is checked at use)."""
    if not isinstance(device, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps|xpu(:\d+)?", device):
        raise UnknownNameError(f"Unknown device {device!r}; use auto, cpu, cuda or cuda:<n>.")
    return device


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; a named device must exist."""
    import torch

    check_device_name(device)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UnknownNameError(f"device {device!r} was asked for, but torch {torch.__version__} sees no CUDA GPU "
                               "(a CPU-only build, or no driver); use device: cpu or auto.")
    try:
        torch.device(device)
    except RuntimeError as e:
        raise UnknownNameError(f"Unknown device {device!r}; use auto, cpu, cuda or cuda:<n>.") from e
    return device
