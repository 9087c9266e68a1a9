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
from collections.abc import Callable
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError

from harness.errors import ParameterError, UnknownNameError

_STRICT = ConfigDict(strict=True)


def check_params(cls: type, params: dict[str, Any], where: Callable[[str | None], str]) -> None:
    """Refuse ``params`` that ``cls(**params)`` cannot mean. ``where(name)`` is the place a message
    names for a parameter (``suites/x.yaml:12: field `retrievers.bm25.params.k1```), ``where(None)``
    that of the whole configuration; it is called only to report an error."""
    signature = inspect.signature(cls.__init__)
    accepted = {n: p for n, p in list(signature.parameters.items())[1:]
                if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    takes_more = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    name = cls.__qualname__
    if not takes_more:
        for param in params:
            if param not in accepted:
                raise UnknownNameError(f"{where(param)}: {name} takes no parameter {param!r}; "
                                       f"its parameters are {', '.join(accepted) or '(none)'}.")
    missing = [n for n, p in accepted.items() if p.default is p.empty and n not in params]
    if missing:
        raise ParameterError(f"{where(None)}: {name} needs {', '.join(f'`{m}`' for m in missing)} in its params.")
    hints = _hints(cls)
    for param, value in params.items():
        hint = hints.get(param)
        if param not in accepted or hint is None or hint is Any:
            continue
        try:
            TypeAdapter(hint, config=_STRICT).validate_python(value)
        except ValidationError as e:
            raise ParameterError(
                f"{where(param)}: `{param}` is {value!r}, but {name} takes {_type_name(hint)} "
                f"({e.errors()[0]['msg'].lower()}).") from None


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls.__init__)
    except Exception:  # annotations that do not resolve (a plug-in's forward references): unchecked
        return {}


def _type_name(hint: Any) -> str:
    text = getattr(hint, "__name__", None) if not typing.get_args(hint) else None
    if text:
        return f"{'an' if text[0] in 'aeiou' else 'a'} {text}"
    return f"`{hint}`".replace("typing.", "")
