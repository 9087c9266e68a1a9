"""Command line: ``harness list | run | evaluate | import | report``.

Commands stay thin: they parse options, call one public function, and print. Heavy libraries are
imported inside the commands that need them, so ``harness list`` starts fast.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import click
import typer
from rich.console import Console
from rich.table import Table

from harness.errors import HarnessError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Evaluate and benchmark late-interaction retrievers.")
console = Console()
err_console = Console(stderr=True)

SuiteArg = Annotated[Path, typer.Argument(help="Suite file, e.g. suites/beir.yaml")]
ResultsOpt = Annotated[Path, typer.Option("--results", help="Results folder")]


@app.command("list")
def list_(suites_dir: Annotated[Path, typer.Option("--suites", help="Folder of suite files")] = Path("suites")):
    """Suites, their datasets, and the retrievers the harness knows."""
    from harness import retrievers
    from harness.suite import find_suites, load_suite

    for path in find_suites(suites_dir):
        suite = load_suite(path)
        table = Table(title=f"suite {suite.name} ({path})", title_justify="left")
        for col in ("dataset", "source", "language", "split", "mode", "main metric"):
            table.add_column(col)
        for spec in suite.datasets.values():
            table.add_row(spec.name, f"{spec.source.kind}:{spec.source.id}", spec.language, spec.split,
                          spec.mode, spec.main_metric)
        console.print(table)
        configs = suite.retriever_configs()
        if configs:
            table = Table(title=f"suite {suite.name}: retriever configurations (--retriever NAME)", title_justify="left")
            for col in ("name", "class", "params"):
                table.add_column(col)
            for name, rspec in configs.items():
                table.add_row(name, rspec.class_, json.dumps(rspec.params, sort_keys=True))
            console.print(table)
    table = Table(title="registered retriever classes", title_justify="left")
    table.add_column("name")
    table.add_column("class")
    for name, path in sorted(retrievers.available().items()):
        table.add_row(name, path)
    console.print(table)


@app.command()
def run(
    suite: SuiteArg,
    dataset: Annotated[Optional[list[str]], typer.Option("--dataset", "-d", help="Dataset name (repeatable); default: all")] = None,
    retriever: Annotated[Optional[list[str]], typer.Option("--retriever", "-r", help="Retriever name or module:Class (repeatable); default: the suite's")] = None,
    results: ResultsOpt = Path("results"),
    force: Annotated[bool, typer.Option("--force", help="Redo units whose result already exists")] = False,
    max_queries: Annotated[Optional[int], typer.Option("--max-queries", help="Smoke run: this many judged queries (marked in the protocol card)")] = None,
    max_documents: Annotated[Optional[int], typer.Option("--max-documents", help="Smoke run: judged documents plus random others up to this many")] = None,
):
    """Run every (dataset, retriever) unit of a suite; existing results are skipped."""
    from harness.pipeline import execute, plan
    from harness.suite import load_suite

    from harness.index import cache

    s = load_suite(suite)
    smoke = (max_queries, max_documents) if (max_queries or max_documents) else None
    units = plan(s, dataset, _expand_names(s, retriever), sample=smoke)
    for unit in units:
        outcome = execute(unit, results, force=force)
        score = outcome.metrics[outcome.main_metric]
        console.print(f"{outcome.status:>7}  {unit.dataset:<16} {unit.retriever:<28} "
                      f"{outcome.main_metric}={score:.4f}  {outcome.folder}", soft_wrap=True)
    if cache.STATS:
        console.print(f"vector cache: {cache.STATS['misses']} encoded, {cache.STATS['hits']} reused")


def _expand_names(suite, names: list[str] | None) -> list[str] | None:
    """A sweep's base name on the command line means all of its points."""
    if not names:
        return None
    configs = suite.retriever_configs()
    out = []
    for name in names:
        points = [label for label in configs if label.split("@")[0] == name and "@" in label]
        out.extend(points or [name])
    return out


@app.command()
def evaluate(
    run_file: Annotated[Path, typer.Option("--run", help="TREC run file (.gz allowed)")],
    qrels: Annotated[Optional[Path], typer.Option("--qrels", help="TREC qrels file")] = None,
    suite: Annotated[Optional[Path], typer.Option("--suite", help="Take judgments and protocol from this suite")] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", "-d")] = None,
    metric: Annotated[Optional[list[str]], typer.Option("--metric", "-m", help="Metric (repeatable)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
):
    """Evaluate a run file against a qrels file, or against a suite dataset's judgments and protocol."""
    from harness.data.model import Qrels
    from harness.metrics import DEFAULT_METRICS
    from harness.metrics import evaluate as score
    from harness.runs import Run

    run_ = Run.from_trec(run_file)
    if qrels is not None:
        judgments, metrics = Qrels.from_trec(qrels), metric or DEFAULT_METRICS
    elif suite is not None and dataset is not None:
        from harness.data.load import load_dataset
        from harness.pipeline import apply_protocol
        from harness.suite import load_suite

        s = load_suite(suite)
        spec = s.dataset(dataset)
        judgments, metrics = load_dataset(spec, s.name).qrels, metric or spec.metrics
        run_ = apply_protocol(run_, spec)
    else:
        raise HarnessError("Give the judgments: --qrels FILE, or --suite FILE with --dataset NAME.")
    result = score(judgments, run_, metrics)
    if as_json:
        console.print_json(json.dumps({"metrics": result.mean, "n_queries": len(result.query_ids)}))
        return
    table = Table(title=f"{run_file} ({len(result.query_ids)} judged queries)", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in result.mean.items():
        table.add_row(name, f"{value:.4f}")
    console.print(table)


@app.command("import")
def import_(
    run_file: Annotated[Path, typer.Argument(help="TREC run file of another system")],
    suite: Annotated[Path, typer.Option("--suite", help="Suite file")],
    dataset: Annotated[str, typer.Option("--dataset", "-d")],
    name: Annotated[str, typer.Option("--name", help="Row label for this system")],
    results: ResultsOpt = Path("results"),
    force: Annotated[bool, typer.Option("--force")] = False,
):
    """Evaluate an external run under a suite's protocol and store it beside the harness's results."""
    from harness.pipeline import import_run

    outcome = import_run(run_file, suite, dataset, name, results, force=force)
    console.print(f"{outcome.status:>7}  {dataset} {name} {outcome.main_metric}="
                  f"{outcome.metrics[outcome.main_metric]:.4f}  {outcome.folder}")


@app.command()
def report(
    results: Annotated[Path, typer.Argument(help="Results folder")] = Path("results"),
    fmt: Annotated[Optional[list[str]], typer.Option("--format", "-f", help="markdown, latex or csv (repeatable)")] = None,
    out: Annotated[Path, typer.Option("--out", help="Output folder")] = Path("reports"),
    metric: Annotated[Optional[str], typer.Option("--metric", help="Tabulate this metric instead of each dataset's main one")] = None,
    force: Annotated[bool, typer.Option("--force", help="Tabulate results of different protocols, marked")] = False,
):
    """Tables of retrievers x datasets from stored results, written under reports/."""
    from harness.report import FORMATS, write_reports

    formats = fmt or ["markdown"]
    for f in formats:
        if f not in FORMATS:
            raise HarnessError(f"Unknown report format {f!r}; choose from {', '.join(FORMATS)}.")
    for path in write_reports(results, out, formats, metric=metric, force=force):
        console.print(f"wrote {path}")
    if "markdown" in formats:
        console.print((out / ("results.md" if metric is None else f"results-{metric.replace('@', '_at_')}.md")).read_text())


def main(argv: list[str] | None = None) -> None:
    verbose = bool(os.environ.get("HARNESS_VERBOSE"))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not verbose:
        # ir_datasets and bm25s set their own loggers to INFO/DEBUG when they create them, so a
        # level set here would be overridden; warnings (such as counted drops) still show.
        logging.disable(logging.INFO)
    try:
        app(args=argv, standalone_mode=False)
    except HarnessError as e:
        err_console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
