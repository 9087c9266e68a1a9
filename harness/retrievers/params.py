"""A retriever's parameters against its class's constructor: names it does not take, required ones
missing, values of the wrong type. Checked when a grid is planned, before any unit runs; a
mistake found by the constructor itself after minutes of loading data is what this prevents.

Types come from the constructor's annotations, checked by pydantic in strict mode: YAML's ``1``
is a valid float, but ``"fast"`` is not a float and ``1`` is not a bool. Parameters without an
annotation (or annotated ``Any``), and those a ``**kwargs`` takes, are the class's to check.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError

from harness.errors import ParameterError, UnknownNameError

_STRICT = ConfigDict(strict=True)


def check_params(cls: type, params: dict[str, Any], where: dict[str, str]) -> None:
    """Refuse ``params`` that ``cls(**params)`` cannot mean. ``where`` maps a parameter name to the
    place a message names (``suites/x.yaml:12: field `retrievers.bm25.params.k1```); the key ``""``
    is the place of the whole configuration."""
    signature = inspect.signature(cls.__init__)
    accepted = {n: p for n, p in list(signature.parameters.items())[1:]
                if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    takes_more = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    name = cls.__qualname__
    if not takes_more:
        for param in params:
            if param not in accepted:
                raise UnknownNameError(f"{where.get(param, where[''])}: {name} takes no parameter {param!r}; "
                                       f"its parameters are {', '.join(accepted) or '(none)'}.")
    missing = [n for n, p in accepted.items() if p.default is p.empty and n not in params]
    if missing:
        raise ParameterError(f"{where['']}: {name} needs {', '.join(f'`{m}`' for m in missing)} in its params.")
    hints = _hints(cls)
    for param, value in params.items():
        hint = hints.get(param)
        if param not in accepted or hint is None or hint is Any:
            continue
        try:
            TypeAdapter(hint, config=_STRICT).validate_python(value)
        except ValidationError as e:
            raise ParameterError(
                f"{where.get(param, where[''])}: `{param}` is {value!r}, but {name} takes {_type_name(hint)} "
                f"({e.errors()[0]['msg'].lower()}).") from None


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls.__init__)
    except Exception:  # annotations that do not resolve (a plug-in's forward references): unchecked
        return {}


def _type_name(hint: Any) -> str:
    text = getattr(hint, "__name__", None) if not typing.get_args(hint) else None
    return f"a {text}" if text else f"`{hint}`".replace("typing.", "")
