"""``harness run``'s systems from the command line: ``--model`` (a checkpoint evaluated with the
late-interaction retriever, ``--format`` and ``--param key=value`` as its settings, ``--name`` its
row), ``--retrievers systems.yaml`` (configurations for every suite), over several suites at once.

Units name their suite by file and their retriever by name (they travel to workers), so the
command's configurations go into a copy of each suite, written under the harness's cache as
``suites/<suite>-<hash>.yaml`` (content-addressed: the same command writes the same file), which
the ordinary pipeline runs and resumes like any suite.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from harness import retrievers
from harness.errors import HarnessError, ParameterError, UnknownNameError
from harness.hashing import sha256
from harness.paths import harness_home
from harness.retrievers.params import check_params
from harness.suite import load_retrievers, load_suite
from harness.suite_schema import Suite

MODEL_RETRIEVER = "late_interaction"


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """``key=value`` pairs; values read as YAML (``128`` a number, ``fp16`` a string, ``[a, b]`` a list)."""
    params: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ParameterError(f"--param {item!r} is not key=value; write e.g. --param dim=128 or "
                                 "--param storage=int8.")
        try:
            params[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            params[key.strip()] = value
    return params


def model_label(model: str, params: dict[str, Any]) -> str:
    """The row name of a checkpoint: its last path part (``org/name`` -> ``name``), with the
    ``--param``s as a sweep point names them (``name@dim=128``)."""
    base = Path(model.rstrip("/")).name or model
    return base + ("@" + ",".join(f"{k}={v}" for k, v in params.items()) if params else "")


def model_configs(models: list[str], fmt: str | None, params: dict[str, Any],
                  names: list[str] | None) -> dict[str, dict[str, Any]]:
    """One late-interaction configuration per ``--model``, by its row name."""
    if names and len(names) != len(models):
        raise ParameterError(f"{len(names)} --name for {len(models)} --model: give one --name per --model, in "
                             "the same order, or none (each row is then named after its model).")
    configs: dict[str, dict[str, Any]] = {}
    if not models:
        return configs
    cls = retrievers.resolve(MODEL_RETRIEVER)
    for i, model in enumerate(models):
        config = {"model": model, **({"format": fmt} if fmt else {}), **params}
        check_params(cls, config, lambda p: f"--param {p}" if p else f"--model {model}")
        label = names[i] if names else model_label(model, params)
        if label in configs:
            raise ParameterError(f"--model {configs[label]['params']['model']} and --model {model} would both be "
                                 f"named {label!r}; name them apart with one --name per --model.")
        configs[label] = {"class": MODEL_RETRIEVER, "params": config}
    return configs


def expand_names(suite: Suite, names: list[str] | None) -> list[str] | None:
    """A sweep's base name on the command line means all of its points."""
    if not names:
        return None
    configs = suite.retriever_configs()
    out = []
    for name in names:
        points = [label for label in configs if label.split("@")[0] == name and "@" in label]
        out.extend(points or [name])
    return out


def with_retrievers(suite: Suite, configs: dict[str, dict[str, Any]]) -> Path:
    """A copy of the suite whose ``retrievers`` also hold ``configs`` (replacing entries of the same
    name), its local sources' folders made absolute; returns its path."""
    data = yaml.safe_load(suite.path.read_text(encoding="utf-8"))
    data["retrievers"] = {**(data.get("retrievers") or {}), **configs}
    folder = suite.path.resolve().parent
    for entry in [data.get("defaults") or {}, *(data.get("datasets") or {}).values()]:
        source = entry.get("source") if isinstance(entry, dict) else None
        if isinstance(source, dict) and source.get("kind") == "local" and isinstance(source.get("path"), str):
            source["path"] = str((folder / Path(source["path"]).expanduser()).resolve())
    text = (f"# Written by `harness run`: suite {suite.name!r} ({suite.path}) with the command line's retrievers.\n"
            + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    path = harness_home() / "suites" / f"{suite.name}-{sha256(text)[:12]}.yaml"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    return path


def plan_suites(suite_paths: list[Path], datasets: list[str] | None, retriever_names: list[str] | None,
                models: list[str] | None = None, fmt: str | None = None, params: list[str] | None = None,
                names: list[str] | None = None, systems: Path | None = None, **plan_options) -> tuple[list, dict[str, Suite]]:
    """Units of every suite (each asked-for dataset in the suites that hold it), and the suites by
    the path their units name."""
    from harness.pipeline import plan

    settings = parse_params(params)
    if (fmt or settings or names) and not models:
        raise ParameterError("--format, --param and --name set up a --model; give --model ID_OR_PATH (a hub id "
                             "or a checkpoint folder), or configure the retriever in the suite or --retrievers FILE.")
    configs: dict[str, dict[str, Any]] = {}
    if systems is not None:
        configs.update({n: spec.model_dump(by_alias=True, exclude_defaults=True) for n, spec in load_retrievers(systems).items()})
    configs.update(model_configs(models or [], fmt, settings, names))
    run_names = (list(retriever_names or []) + list(configs)) or None
    suites = [load_suite(p) for p in suite_paths]
    for name in datasets or []:
        if not any(name in s.datasets for s in suites):
            if len(suites) == 1:
                suites[0].dataset(name)  # its own message, listing the datasets
            raise UnknownNameError(f"No suite given has a dataset {name!r} ({', '.join(map(str, suite_paths))}); "
                                   "`harness list` shows each suite's datasets.")
    units, by_path = [], {}
    for suite in suites:
        chosen = [d for d in datasets if d in suite.datasets] if datasets else None
        if datasets and not chosen:
            continue
        if configs:
            suite = load_suite(with_retrievers(suite, configs))
        units += plan(suite, chosen, expand_names(suite, run_names), **plan_options)
        by_path[str(suite.path)] = suite
    if not units:
        raise HarnessError("Nothing to run: the suites given hold none of the datasets asked for.")
    return units, by_path
