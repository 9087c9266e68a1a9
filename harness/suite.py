"""Suite files (``suites/*.yaml``): which datasets to evaluate, and under which protocol.

A suite is a YAML mapping::

    name: beir
    defaults: {...}          # fields every dataset entry starts from (a shallow merge)
    datasets:
      scifact: {source: {kind: ir_datasets, id: beir/scifact/test}, ...}
    retrievers:
      bm25: {class: bm25, params: {k1: 0.9}}

Every error names the file, the line and the field, and nothing is run before the whole file
validates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from harness.errors import SuiteError
from harness.suite_schema import SOURCE_KINDS, DatasetSpec, RetrieverSpec, Suite


def _without_source_tag(loc: tuple) -> tuple:
    """An error location without the kind pydantic inserts after `source`
    (`source.huggingface.revision` -> `source.revision`), so that it names the file's own fields."""
    return tuple(p for i, p in enumerate(loc) if not (i and loc[i - 1] == "source" and p in SOURCE_KINDS))


_TOP_LEVEL = {"name", "description", "defaults", "datasets", "retrievers"}


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys silently; a suite file must not."""


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first defined on line {seen[key]})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line + 1
    return yaml.SafeLoader.construct_mapping(loader, node, deep=True)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def _line_of(root: yaml.Node | None, loc: tuple) -> int | None:
    """The line of the deepest node along ``loc`` that exists in the file."""
    node, line = root, None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == str(part):
                    node, line = value_node, key_node.start_mark.line + 1
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def field_location(path: str | Path, loc: tuple) -> str:
    """``file:line: field `a.b``` for a message about a value the suite file holds (read again:
    values are checked against code, e.g. a retriever's constructor, after the file loads)."""
    try:
        line = _line_of(yaml.compose(Path(path).read_text(encoding="utf-8"), Loader=yaml.SafeLoader), loc)
    except (OSError, yaml.YAMLError):
        line = None
    return f"{path}:{line}: field `{'.'.join(map(str, loc))}`" if line else f"{path}: field `{'.'.join(map(str, loc))}`"


def load_suite(path: str | Path) -> Suite:
    path = Path(path)
    if path.is_dir():
        raise SuiteError(f"{path} is a folder; give a suite file inside it, e.g. {path}/beir.yaml (`harness list` shows them).")
    if not path.is_file():
        raise SuiteError(f"Suite file {path} does not exist. Suites live in suites/*.yaml; `harness list` shows them.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        line = path.read_bytes()[:e.start].count(b"\n") + 1
        raise SuiteError(f"{path}:{line}: not UTF-8 text (byte 0x{e.object[e.start]:02x}). "
                         "Save the suite file as UTF-8.") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(e, "problem", None) or str(e)
        raise SuiteError(f"{where}: not a valid suite file: {problem}. Fix the YAML at that position.") from None

    def fail(loc: tuple, message: str, fallback: tuple = ()) -> SuiteError:
        line = _line_of(root, loc) or _line_of(root, fallback)
        where = f"{path}:{line}" if line else str(path)
        field = ".".join(str(p) for p in loc) or "(top level)"
        return SuiteError(f"{where}: field `{field}`: {message}")

    if not isinstance(data, dict):
        raise fail((), "a suite file is a YAML mapping with `name` and `datasets`.")
    unknown = set(data) - _TOP_LEVEL
    if unknown:
        key = sorted(unknown)[0]
        raise fail((key,), f"unknown top-level field; allowed fields are {', '.join(sorted(_TOP_LEVEL))}.")
    for key, kind in (("name", str), ("datasets", dict)):
        if not isinstance(data.get(key), kind):
            raise fail((key,), f"required, and must be a {'string' if kind is str else 'mapping of dataset names to entries'}.")
    if not data["datasets"]:
        raise fail(("datasets",), "lists no datasets; a suite needs at least one dataset entry.")
    if not isinstance(data.get("retrievers") or {}, dict):
        raise fail(("retrievers",), "must be a mapping of configuration names to entries "
                                    "(`bm25: {class: bm25, params: {...}}`), not a list.")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise fail(("defaults",), "must be a mapping of dataset fields.")

    datasets, problems = {}, []
    for name, entry in data["datasets"].items():
        if not isinstance(entry, dict):
            problems.append(fail(("datasets", name), "a dataset entry is a mapping of fields."))
            continue
        merged = _local_paths({**defaults, **entry, "name": str(name)}, path.parent)
        try:
            datasets[str(name)] = DatasetSpec.model_validate(merged)
        except ValidationError as e:
            for err in e.errors():
                loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-after")))
                loc = _without_source_tag(loc)
                in_entry = loc and loc[0] in entry
                base = ("datasets", name) if (in_entry or not loc or loc[0] not in defaults) else ("defaults",)
                problems.append(fail(base + loc, _message(err), fallback=("datasets", name)))

    retrievers = {}
    for name, entry in (data.get("retrievers") or {}).items():
        try:
            retrievers[str(name)] = RetrieverSpec.model_validate(entry if isinstance(entry, dict) else {"class": entry})
        except ValidationError as e:
            for err in e.errors():
                problems.append(fail(("retrievers", name) + tuple(err["loc"]), _message(err, _RETRIEVER_FIELDS)))
    if problems:
        raise SuiteError("\n".join(str(p) for p in problems))
    return Suite(name=data["name"], path=path, description=data.get("description", ""), datasets=datasets, retrievers=retrievers)


def load_retrievers(path: str | Path) -> dict[str, RetrieverSpec]:
    """A retrievers file (``harness run --retrievers systems.yaml``): a suite's ``retrievers:``
    section on its own, as a top-level mapping or under a ``retrievers:`` key; errors name the
    file, line and field as a suite's do."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.load(text, Loader=_UniqueKeyLoader)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except OSError as e:
        raise SuiteError(f"Retrievers file {path} cannot be read ({e.strerror}). Give a YAML file of "
                         "retriever configurations, as a suite's `retrievers:` section.") from None
    except (UnicodeDecodeError, yaml.YAMLError) as e:
        raise SuiteError(f"{path}: not a valid retrievers file ({getattr(e, 'problem', None) or e}). Fix the YAML: a "
                         "mapping of names to `{class: ..., params: {...}}`.") from None
    prefix: tuple = ()
    if isinstance(data, dict) and set(data) == {"retrievers"}:
        data, prefix = data["retrievers"], ("retrievers",)
    if not isinstance(data, dict) or not data:
        raise SuiteError(f"{path}: a retrievers file is a mapping of configuration names to entries "
                         "(`bm25: {class: bm25, params: {k1: 0.9}}`), as a suite's `retrievers:` section.")
    out, problems = {}, []
    for name, entry in data.items():
        try:
            out[str(name)] = RetrieverSpec.model_validate(entry if isinstance(entry, dict) else {"class": entry})
        except ValidationError as e:
            for err in e.errors():
                loc = prefix + (name,) + tuple(err["loc"])
                line = _line_of(root, loc)
                message = _message(err, _RETRIEVER_FIELDS)
                problems.append(f"{path}:{line}: field `{'.'.join(map(str, loc))}`: {message}" if line
                                else f"{path}: field `{'.'.join(map(str, loc))}`: {message}")
    if problems:
        raise SuiteError("\n".join(problems))
    return out


def _local_paths(entry: dict, folder: Path) -> dict:
    """A local source's folder is relative to the suite file's (so the suite runs from any working
    directory, and on workers); a BEIR folder's judgments, and an MTEB task's split, are those of the
    dataset's split."""
    source = entry.get("source")
    if isinstance(source, dict) and source.get("kind") == "mteb" and "split" not in source and "split" in entry:
        return {**entry, "source": {**source, "split": entry["split"]}}  # MTEB's split is the dataset's
    if not (isinstance(source, dict) and source.get("kind") == "local" and isinstance(source.get("path"), str)):
        return entry
    source = {**source, "path": str((folder / Path(source["path"]).expanduser()).resolve())}
    if source.get("format") == "beir" and "judgments" not in source and isinstance(entry.get("split"), str):
        source["judgments"] = f"qrels/{entry['split']}.tsv"
    return {**entry, "source": source}


_DATASET_FIELDS = "See the dataset fields in README.md."
_RETRIEVER_FIELDS = "A retriever takes `class`, `params` and `sweep`: see \"Retrievers\" in README.md."


def _message(err: dict, fields: str = _DATASET_FIELDS) -> str:
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        return "unknown field (a typo?). " + fields
    if err["type"] == "missing":
        return "required field is missing."
    return msg + "."


def find_suites(root: str | Path = "suites") -> list[Path]:
    return sorted(Path(root).glob("*.yaml"))
