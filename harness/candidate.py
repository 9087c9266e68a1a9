"""A checkpoint as a regression-gate candidate: re-run the baseline's configurations with it.

Each baseline result that came from a retriever with a ``model`` parameter is re-run with the same
class and parameters, ``model`` replaced, on the same suite dataset (and the same smoke-run sample,
if the baseline was one). Records do not store the suite file, so the suite is found by its name in
a suites folder (or given). The configurations go into a copy of that suite, written beside the
candidate's results as ``<suite>.candidate.yaml``: it records what was run, and lets the ordinary
pipeline run it, resumable like any grid. Whether the suite's entry still matches the baseline's
protocol is checked afterwards, by the protocol hashes, like any comparison.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import yaml

from harness.compare import Result, load_results
from harness.errors import HarnessError, SuiteError
from harness.suite import find_suites, load_suite


def rerunnable(baseline: list[Result]) -> tuple[list[Result], list[str]]:
    """The baseline results a checkpoint can replace, and notes on the others."""
    chosen, notes = [], []
    for r in baseline:
        where = f"{r.record.suite}/{r.record.dataset} {r.record.label}"
        if r.record.origin != "retriever":
            notes.append(f"{where}: {r.record.origin} result, not re-run with the candidate model; not gated.")
        elif "model" not in (r.record.retriever.get("params") or {}):
            notes.append(f"{where}: its retriever has no `model` parameter; not re-run, not gated.")
        else:
            chosen.append(r)
    if not chosen:
        raise HarnessError("No baseline result has a retriever with a `model` parameter, so there is nothing to re-run "
                           "with --candidate-model. Gate a candidate's stored results with --candidate instead.")
    return chosen, notes


def find_suite(name: str, suite_file: Path | None, suites_dir: Path) -> Path:
    if suite_file is not None:
        found = load_suite(suite_file).name
        if found != name:
            raise HarnessError(f"--suite {suite_file} is suite {found!r}, but the baseline results are of suite "
                               f"{name!r}. Pass the file of suite {name!r}.")
        return suite_file
    for path in find_suites(suites_dir):
        try:
            if load_suite(path).name == name:
                return path
        except SuiteError:
            continue  # another, broken suite file is not this command's business
    raise HarnessError(f"No suite named {name!r} in {suites_dir}/ (the baseline results are of that suite). Pass its "
                       "file with --suite FILE, or the folder holding it with --suites DIR.")


def write_candidate_suite(suite_path: Path, results: list[Result], model: str, out: Path) -> Path:
    """The suite with the baseline's configurations, ``model`` replaced, under their own names (an
    entry a sweep or name of the suite already gives is replaced; the others, e.g. a re-ranking's
    first stage, stay), and each dataset's smoke-run sample as the baseline had it."""
    data = yaml.safe_load(suite_path.read_text(encoding="utf-8"))
    suite = load_suite(suite_path)
    names = {r.record.label for r in results}
    kept = {name: entry for name, entry in (data.get("retrievers") or {}).items()
            if str(name) not in names and not names & set(suite.retrievers[str(name)].expand(str(name)))}
    configs = {r.record.label: {"class": r.record.retriever["class"],
                                "params": {**r.record.retriever["params"], "model": model}} for r in results}
    data["retrievers"] = {**kept, **configs}
    for r in results:
        sample = (r.record.protocol.get("filters") or {}).get("sample")
        entry = data["datasets"].get(r.record.dataset)
        if sample and isinstance(entry, dict):
            entry["sample"] = sample
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{suite.name}.candidate.yaml"
    header = (f"# Written by `harness regress --candidate-model`: the baseline's configurations of suite "
              f"{suite.name!r} with model {model!r}.\n")
    path.write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def rerun_with_model(baseline: list[Result], model: str, out: Path, suite_file: Path | None = None,
                     suites_dir: Path = Path("suites"), on_outcome=None) -> tuple[list[Result], list[Result], list[str]]:
    """(baseline results re-run, their candidate results, notes). Existing candidate results are
    reused, so an interrupted gate resumes."""
    from harness.pipeline import Unit, execute

    if any(out.resolve() == r.folder.resolve() or out.resolve() in r.folder.resolve().parents for r in baseline):
        raise HarnessError(f"--candidate-results {out} holds the baseline's results; the candidate's go to a folder of "
                           "their own, e.g. results-candidate/.")
    chosen, notes = rerunnable(baseline)
    by_suite: dict[str, list[Result]] = defaultdict(list)
    for r in chosen:
        by_suite[r.record.suite].append(r)
    folders = []
    for suite_name, results in sorted(by_suite.items()):
        suite_path = write_candidate_suite(find_suite(suite_name, suite_file, suites_dir), results, model, out)
        for r in results:
            outcome = execute(Unit(str(suite_path), r.record.dataset, r.record.label), out)
            if on_outcome is not None:
                on_outcome(outcome)
            folders.append(outcome.folder)
    candidates = [r for r in load_results(out, "candidate") if r.folder in set(folders)]
    return chosen, candidates, notes
