"""The ``compare`` and ``regress`` commands: two sets of results, paired query by query.

Registered on ``harness.cli``'s app, which imports this module once it is defined.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from harness.cli import _probability, app, console
from harness.errors import HarnessError

ResamplesOpt = Annotated[int, typer.Option("--resamples", min=1, help="Bootstrap resamples and randomization assignments")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the resampling")]


@app.command()
def compare(
    baseline: Annotated[Path, typer.Argument(help="Baseline: a result folder or a results root")],
    candidate: Annotated[Path, typer.Argument(help="Candidate: a result folder or a results root")],
    metric: Annotated[Optional[str], typer.Option("--metric", help="Compare this metric instead of each dataset's main one")] = None,
    top: Annotated[int, typer.Option("--top", min=0, help="How many of the most changed queries to list per dataset")] = 10,
    resamples: ResamplesOpt = 10_000,
    seed: SeedOpt = 0,
    force: Annotated[bool, typer.Option("--force", help="Compare results of different protocols, marked")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
):
    """Per-dataset deltas of B against A with bootstrap CIs, p-values, wins/losses and the queries that changed most."""
    from harness.compare import compare_results, comparison_json
    from harness.comparison_tables import comparison_tables

    comparisons, notes = compare_results(baseline, candidate, metric=metric, force=force, resamples=resamples,
                                         seed=seed, top=top)
    if as_json:
        sys.stdout.write(json.dumps(comparison_json(comparisons, notes, resamples, seed), indent=2) + "\n")
        return
    for item in comparison_tables(comparisons, resamples, seed):
        console.print(item, soft_wrap=isinstance(item, str))
    for note in notes:
        console.print(f"note: {note}", soft_wrap=True)


@app.command()
def regress(
    baseline: Annotated[Path, typer.Option("--baseline", help="Baseline results: a result folder or a results root")],
    candidate: Annotated[Optional[Path], typer.Option("--candidate", help="Candidate results: a result folder or a results root")] = None,
    candidate_model: Annotated[Optional[str], typer.Option("--candidate-model", help="Re-run the baseline's configurations with this model (path or id) and gate that")] = None,
    candidate_results: Annotated[Path, typer.Option("--candidate-results", help="With --candidate-model: where its results go")] = Path("results-candidate"),
    suite: Annotated[Optional[Path], typer.Option("--suite", help="With --candidate-model: the baseline's suite file (default: found by name under --suites)")] = None,
    suites_dir: Annotated[Path, typer.Option("--suites", help="Folder of suite files")] = Path("suites"),
    tolerance: Annotated[float, typer.Option("--tolerance", min=0.0, help="Largest acceptable drop of the metric (absolute)")] = 0.005,
    alpha: Annotated[float, typer.Option("--alpha", callback=_probability, help="Family-wise significance level (Holm-Bonferroni over datasets)")] = 0.05,
    metric: Annotated[Optional[str], typer.Option("--metric", help="Gate this metric instead of each dataset's main one")] = None,
    resamples: ResamplesOpt = 10_000,
    seed: SeedOpt = 0,
    force: Annotated[bool, typer.Option("--force", help="Gate results of different protocols, marked")] = False,
    json_file: Annotated[Optional[Path], typer.Option("--json", help="Write the verdicts as JSON to this file")] = None,
    junit_file: Annotated[Optional[Path], typer.Option("--junit", help="Write JUnit XML (one testcase per dataset) to this file")] = None,
):
    """Exit 1 when a dataset's metric drops by more than the tolerance, significantly (Holm-corrected); else 0."""
    from harness.compare import compare_results, load_results
    from harness.gate import gate, to_junit, verdict_table

    if (candidate is None) == (candidate_model is None):
        raise HarnessError("Give the candidate: --candidate RESULTS (stored results) or --candidate-model PATH_OR_ID "
                           "(re-run the baseline's configurations with that model), not both.")
    base = load_results(baseline, "baseline")
    notes: list[str] = []
    if candidate_model is not None:
        from harness.candidate import rerun_with_model

        def show(outcome):
            console.print(f"{outcome.status:>7}  {outcome.unit.dataset:<16} {outcome.unit.retriever:<28} "
                          f"{outcome.main_metric}={outcome.metrics[outcome.main_metric]:.4f}  {outcome.folder}",
                          soft_wrap=True)

        base, cand, notes = rerun_with_model(base, candidate_model, candidate_results, suite, suites_dir, show)
    else:
        cand = load_results(candidate, "candidate")
    comparisons, more = compare_results(base, cand, metric=metric, force=force, require_all=True,
                                        resamples=resamples, seed=seed)
    report = gate(comparisons, tolerance=tolerance, alpha=alpha, notes=notes + more)
    console.print(verdict_table(report))
    console.print(report.procedure_text(), soft_wrap=True)
    for note in report.notes:
        console.print(f"note: {note}", soft_wrap=True)
    for path, text in ((json_file, lambda: json.dumps(report.to_dict(), indent=2) + "\n"),
                       (junit_file, lambda: to_junit(report))):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text(), encoding="utf-8")
    console.print(report.summary(), soft_wrap=True, highlight=False)
    if not report.passed:
        sys.exit(1)  # main() discards typer's return code, so exit here: 1 means "regressed"
