"""Retriever registry: built-in names, installed plug-ins (entry point group
``harness.retrievers``), or any class by dotted path (``pkg.module:Class``)."""

from __future__ import annotations

import importlib
import inspect
from importlib import metadata
from typing import Any

from harness.errors import ParameterError, UnknownNameError
from harness.extras import missing_extra, require_installed
from harness.retrievers.base import Retriever

ENTRY_POINT_GROUP = "harness.retrievers"
BUILTIN = {
    "bm25": "harness.retrievers.bm25:BM25Retriever",
    "dense": "harness.retrievers.dense:DenseRetriever",
    "late_interaction": "harness.retrievers.late_interaction:LateInteractionRetriever",
}

# What the built-in neural retrievers import when they encode (the neural extra): checked when the
# class is resolved, so a missing one is named before any unit runs, not deep inside the first.
NEEDS = {"dense": ("torch", "transformers", "sentence_transformers"),
         "late_interaction": ("torch", "transformers", "safetensors")}

__all__ = ["Retriever", "available", "resolve", "build", "class_path"]


def available() -> dict[str, str]:
    """Registered names and the classes they point to."""
    names = dict(BUILTIN)
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        names.setdefault(ep.name, ep.value)
    return names


def _import(path: str) -> type:
    module, sep, attr = path.partition(":")
    if not sep:
        module, _, attr = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except ImportError as e:
        named = missing_extra(e, f"Retriever {path!r}")
        if named is not None:
            raise named from None
        raise UnknownNameError(
            f"Cannot import retriever class {path!r} ({type(e).__name__}: {e}). Give `module:Class` of an "
            "importable module (installed, or on PYTHONPATH)."
        ) from None
    except (AttributeError, ValueError) as e:
        raise UnknownNameError(
            f"Cannot import retriever class {path!r} ({type(e).__name__}: {e}). Give `module:Class` of an "
            "importable module (installed, or on PYTHONPATH)."
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, Retriever)):
        raise UnknownNameError(f"{path!r} is not a subclass of harness.retrievers.Retriever.")
    return cls


def resolve(ref: str) -> type:
    """A registry name or a dotted path -> the retriever class."""
    names = available()
    if ref in names:
        require_installed(NEEDS.get(ref, ()), f"Retriever {ref!r}")
        return _import(names[ref])
    if ":" in ref or "." in ref:
        return _import(ref)
    raise UnknownNameError(
        f"Unknown retriever {ref!r}. Registered retrievers: {', '.join(sorted(names))}. A class of your own "
        "is named by dotted path (`class: mypackage.module:MyRetriever` in the suite) or registered under the "
        f"entry point group {ENTRY_POINT_GROUP!r}."
    )


def class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def with_run_options(ref: str, params: dict[str, Any] | None, device: str | None = None,
                     trust_remote_code: bool = False, shard_tokens: int | None = None) -> dict[str, Any]:
    """``params`` with the command line's run options set, where the class takes them: ``device``
    (where it runs) and ``trust_remote_code`` (leave to run a checkpoint's own model code). Callers
    keep the suite's params as the retriever's identity; what the options change shows in its settings."""
    params = dict(params or {})
    accepted = inspect.signature(resolve(ref)).parameters
    if device is not None and "device" in accepted:
        params["device"] = device
    if trust_remote_code and "trust_remote_code" in accepted:
        params["trust_remote_code"] = True
    if shard_tokens is not None and "shard_tokens" in accepted:  # how the store is cut, not what it holds
        params["shard_tokens"] = shard_tokens
    return params


def build(ref: str, params: dict[str, Any] | None = None) -> Retriever:
    cls = resolve(ref)
    try:
        return cls(**(params or {}))
    except TypeError as e:
        raise UnknownNameError(f"Retriever {ref!r} ({class_path(cls)}) rejected its parameters: {e}.") from None
    except ValueError as e:  # a value the class's own checks refuse
        raise ParameterError(f"Retriever {ref!r} ({class_path(cls)}) rejected a parameter's value: {e}.") from None
