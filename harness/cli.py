"""Command line: ``harness list | run | evaluate | import | report | compare | regress | export |
import-mteb`` (``compare`` and ``regress`` in ``harness.cli_compare``, the MTEB commands in
``harness.cli_mteb``; ``run``'s models and several suites in ``harness.cli_models``).

Commands stay thin: they parse options, call one public function, and print. Heavy libraries are
imported inside the commands that need them, so ``harness list`` starts fast.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness import interrupts, progress
from harness.errors import HarnessError
from harness.executors import EXECUTORS
from harness.interrupts import SigintWatch
from harness.runs import TIE_ORDERS

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Evaluate and benchmark late-interaction retrievers.")
console = Console()
err_console = Console(stderr=True)

def _probability(value: float) -> float:
    """A significance level: strictly between 0 and 1 (typer's ranges are closed)."""
    if not 0.0 < value < 1.0:
        raise typer.BadParameter(f"{value:g} is not a probability strictly between 0 and 1 (e.g. 0.05)")
    return value


SuiteArg = Annotated[Path, typer.Argument(help="Suite file, e.g. suites/beir.yaml")]
ResultsOpt = Annotated[Path, typer.Option("--results", help="Results folder")]
TieOrder = Enum("TieOrder", {order: order for order in TIE_ORDERS}, type=str)
ExecutorName = Enum("ExecutorName", {name: name for name in EXECUTORS}, type=str)
TiesOpt = Annotated[TieOrder, typer.Option("--ties", help="Order of tied scores: trec_eval (document id descending, "
                                           "as trec_eval) or rank (the file's rank column: the order its system gave)")]


@app.command("list")
def list_(suites_dir: Annotated[Path, typer.Option("--suites", help="Folder of suite files")] = Path("suites")):
    """Suites, their datasets, and the retrievers the harness knows."""
    from harness import retrievers
    from harness.suite import find_suites, load_suite

    for path in find_suites(suites_dir):
        suite = load_suite(path)
        specs = list(suite.datasets.values())
        unavailable = [s for s in specs if s.unavailable]
        groups = sorted({s.group for s in specs if s.group})
        counts = f"{len(specs) - len(unavailable)} datasets" + (f", {len(unavailable)} unavailable" if unavailable else "")
        counts += "".join(f", group {g} of {sum(s.group == g for s in specs)}" for g in groups)
        # A field with one value across the suite goes in the title, not in a column of repeats.
        fields = {"lang": lambda s: s.language, "split": lambda s: s.split, "mode": lambda s: s.mode,
                  "main metric": lambda s: s.main_metric}
        shared = {k: f(specs[0]) for k, f in fields.items() if len({f(s) for s in specs}) == 1}
        columns = [k for k in fields if k not in shared]
        title = f"suite {suite.name} ({path}): {counts}" + "".join(f"; {k} {v}" for k, v in shared.items())
        console.print(title, highlight=False)  # above the table, not its title: no wrapping to its width
        table = Table()
        # Names and ids never break across lines (they are copied into commands).
        for col in ("dataset", "source", *columns) + (("group",) if groups else ()):
            table.add_column(col, no_wrap=True)
        for spec in specs:
            source = f"{spec.source.kind}:{spec.source.id}" if spec.source else "unavailable, see below"
            row = [spec.name, source, *(fields[k](spec) for k in columns)] + ([spec.group or ""] if groups else [])
            table.add_row(*row, style="dim" if spec.unavailable else None)
        console.print(table)
        for spec in unavailable:
            console.print(f"  {spec.name} is unavailable: {spec.unavailable}", highlight=False)
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


CheckpointFormat = Enum("CheckpointFormat", {f: f for f in ("auto", "stanford", "pylate", "plain")}, type=str)


@app.command()
def run(
    suites: Annotated[list[Path], typer.Argument(help="Suite files, e.g. suites/beir.yaml (one or more)")],
    dataset: Annotated[Optional[list[str]], typer.Option("--dataset", "-d", help="Dataset name (repeatable); default: all")] = None,
    retriever: Annotated[Optional[list[str]], typer.Option("--retriever", "-r", help="Retriever name or module:Class (repeatable); default: the suite's")] = None,
    model: Annotated[Optional[list[str]], typer.Option("--model", help="Evaluate this checkpoint (hub id or folder) with the late-interaction retriever (repeatable)")] = None,
    fmt: Annotated[Optional[CheckpointFormat], typer.Option("--format", help="With --model: the checkpoint format (default: detected)")] = None,
    param: Annotated[Optional[list[str]], typer.Option("--param", help="With --model: a retriever setting, key=value (repeatable; e.g. dim=128, storage=int8)")] = None,
    name: Annotated[Optional[list[str]], typer.Option("--name", help="With --model: the result's row name, one per --model (default: from the model id)")] = None,
    systems: Annotated[Optional[Path], typer.Option("--retrievers", help="YAML file of retriever configurations (a suite's `retrievers:` section), run on every suite")] = None,
    results: ResultsOpt = Path("results"),
    force: Annotated[bool, typer.Option("--force", help="Redo units whose result already exists")] = False,
    max_queries: Annotated[Optional[int], typer.Option("--max-queries", min=1, help="Smoke run: this many judged queries (marked in the protocol card)")] = None,
    max_documents: Annotated[Optional[int], typer.Option("--max-documents", min=1, help="Smoke run: judged documents and re-ranking candidates of the queries, plus random others up to this many")] = None,
    latency_queries: Annotated[int, typer.Option("--latency-queries", min=0, help="Queries timed one at a time for latency percentiles (0: skip)")] = 50,
    device: Annotated[Optional[str], typer.Option("--device", help="Where encoders and MaxSim run: auto, cpu, cuda, cuda:<n> (default: each retriever's own, auto)")] = None,
    shard_tokens: Annotated[Optional[int], typer.Option("--shard-tokens", min=1, help="Most vectors per document shard of a token store: shard_tokens // doc_maxlen documents a shard (default: the retriever's, 2^24); results do not depend on it")] = None,
    trust_remote_code: Annotated[bool, typer.Option("--trust-remote-code", help="Let checkpoints that ship their own model code (config.json auto_map, e.g. Jina-ColBERT) run it; the protocol card records it")] = False,
    executor: Annotated[ExecutorName, typer.Option("--executor", help="local: one unit after another here; ray: units as Ray tasks, on a local Ray or a joined cluster (needs the [distributed] extra)")] = ExecutorName.local,
    workers: Annotated[Optional[int], typer.Option("--workers", min=1, help="With --executor ray: units at once (default: one per core, or the cluster's CPUs)")] = None,
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help="With --executor ray: join the running cluster at this address (HOST:PORT, or auto) instead of starting a local Ray")] = None,
    keep_going: Annotated[bool, typer.Option("--keep-going", help="A failing unit is reported and the others still run; the command ends with the failed units and exit status 1")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars (on a terminal) or progress lines (otherwise)")] = False,
):
    """Run every (dataset, retriever) unit of one or more suites; existing results are skipped."""
    from harness.cli_models import plan_suites
    from harness.executors import get_executor
    from harness.grid import failure_line, run_grid

    progress.set_quiet(quiet)
    smoke = (max_queries, max_documents) if (max_queries or max_documents) else None
    units, by_path = plan_suites(suites, dataset, retriever, model, fmt.value if fmt else None, param, name, systems,
                                 sample=smoke, latency_queries=latency_queries, device=device,
                                 trust_remote_code=trust_remote_code, shard_tokens=shard_tokens)
    if executor is ExecutorName.ray:  # workers may start elsewhere: paths must not depend on this folder
        by_path = {str(Path(p).resolve()): s for p, s in by_path.items()}
        units = [replace(u, suite_path=str(Path(u.suite_path).resolve())) for u in units]
        results = results.resolve()
    ended = 0

    def show(finished) -> None:
        nonlocal ended
        ended += 1
        unit = finished.item
        s = by_path[unit.suite_path]
        if finished.failed:
            console.print(f"{'failed':>7}  {unit.dataset:<16} {unit.retriever:<28} "
                          f"{escape(failure_line(finished, s.name).split(': ', 1)[1])}", soft_wrap=True)
            return
        outcome = finished.value.outcome
        console.print(f"{outcome.status:>7}  {unit.dataset:<16} {unit.retriever:<28} "
                      f"{outcome.main_metric}={outcome.metrics[outcome.main_metric]:.4f}  {outcome.folder}",
                      soft_wrap=True)
        if sigint.count:  # a library swallowed Ctrl-C; the unit finished anyway
            _stop(interrupts.message(_unit_name(s, unit), ended, len(units), ended, results, stopped=False))

    with SigintWatch() as sigint, get_executor(executor.value, workers, ray_address) as engine:
        try:
            report = run_grid(units, engine, results, force=force, keep_going=keep_going,
                              show=show)
        except KeyboardInterrupt:  # the unit that was running (local), or the first not ended (ray)
            unit = units[ended]
            _stop(interrupts.message(_unit_name(by_path[unit.suite_path], unit), ended + 1, len(units), ended,
                                     results, stopped=True))
    counts = report.cache_counts
    if counts:
        console.print(f"vector cache: {counts['misses']} encoded, {counts['hits']} reused")
    if report.shard_counts:
        console.print(f"document shards: {report.shard_counts['encoded']} encoded, "
                      f"{report.shard_counts['reused']} reused")
    if counts["compressed_misses"] or counts["compressed_hits"]:
        console.print(f"compressed stores: {counts['compressed_misses']} built, {counts['compressed_hits']} reused")
    if report.failures:
        console.print(f"{len(report.failures)} of {len(units)} units failed:", highlight=False)
        for finished in report.failures:
            console.print(f"  {escape(failure_line(finished, by_path[finished.item.suite_path].name))}",
                          highlight=False, soft_wrap=True)
        sys.exit(1)


def _unit_name(suite, unit) -> str:
    return f"{suite.name}/{unit.dataset}/{unit.retriever}"


def _stop(message: str) -> None:
    err_console.print(message, highlight=False, markup=False, soft_wrap=True)
    sys.exit(interrupts.EXIT_STATUS)


@app.command()
def evaluate(
    run_file: Annotated[Path, typer.Option("--run", help="TREC run file (.gz allowed)")],
    qrels: Annotated[Optional[Path], typer.Option("--qrels", help="TREC qrels file")] = None,
    suite: Annotated[Optional[Path], typer.Option("--suite", help="Take judgments and protocol from this suite")] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", "-d")] = None,
    metric: Annotated[Optional[list[str]], typer.Option("--metric", "-m", help="Metric (repeatable)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    ties: TiesOpt = TieOrder.trec_eval,
):
    """Evaluate a run file against a qrels file, or against a suite dataset's judgments and protocol."""
    from harness.data.model import Qrels
    from harness.metrics import DEFAULT_METRICS
    from harness.metrics import evaluate as score
    from harness.runs import Run

    run_ = Run.from_trec(run_file, ties=ties.value)
    main = None
    if qrels is not None:
        judgments, metrics = Qrels.from_trec(qrels), metric or DEFAULT_METRICS
    elif suite is not None and dataset is not None:
        from harness.data.load import load_dataset
        from harness.pipeline import apply_protocol
        from harness.suite import load_suite

        s = load_suite(suite)
        spec = s.dataset(dataset)
        judgments, metrics = load_dataset(spec, s.name).qrels, metric or spec.metrics
        main = spec.main_metric if spec.main_metric in [m.strip().lower() for m in metrics] else None
        run_ = apply_protocol(run_, spec)
    else:
        raise HarnessError("Give the judgments: --qrels FILE, or --suite FILE with --dataset NAME.")
    result = score(judgments, run_, metrics, main)
    if as_json:
        console.print_json(json.dumps({"metrics": result.mean, "n_queries": len(result.query_ids),
                                       "ties": {"order": ties.value, **result.ties.to_dict()},
                                       "unjudged_queries": result.unjudged_queries}))
        return
    # Above the table, not its title: a long path would wrap to the table's width.
    console.print(f"{run_file} ({len(result.query_ids)} judged queries)", highlight=False, soft_wrap=True)
    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in result.mean.items():
        table.add_row(name, f"{value:.4f}")
    console.print(table)
    _print_ties({"order": ties.value, **result.ties.to_dict()}, result.mean[result.ties.metric])
    _note_unjudged(result.unjudged_queries)


def _print_ties(ties: dict, value: float) -> None:
    """The tie report: counts, then the main metric's range over tie orders beside its value."""
    if not ties["tied_pairs"]:
        console.print(f"ties: none among {ties['pairs']} scored pairs", highlight=False)
        return
    groups, queries, mixed = ties["tied_groups"], ties["queries_with_ties"], ties["mixed_groups"]
    console.print(f"ties: {ties['tied_pairs']} of {ties['pairs']} scored pairs share their score with another "
                  f"document of their query, in {groups} group{'s' * (groups != 1)} over {queries} "
                  f"quer{'ies' if queries != 1 else 'y'}; {mixed} group{'s mix' if mixed != 1 else ' mixes'} grades",
                  highlight=False, soft_wrap=True)
    console.print(f"{ties['metric']} over tie orders: {value:.4f} in {ties['order']} order, optimistic "
                  f"{ties['optimistic']:.4f}, pessimistic {ties['pessimistic']:.4f}", highlight=False, soft_wrap=True)


def _note_unjudged(count: int) -> None:
    """Run queries without judgments are legal (another split's, a larger query set) but worth a line."""
    if count:
        console.print(f"note: {count} queries of the run have no judgments; they are not scored", highlight=False)


@app.command("import")
def import_(
    run_file: Annotated[Path, typer.Argument(help="TREC run file of another system")],
    suite: Annotated[Path, typer.Option("--suite", help="Suite file")],
    dataset: Annotated[str, typer.Option("--dataset", "-d")],
    name: Annotated[str, typer.Option("--name", help="Row label for this system")],
    results: ResultsOpt = Path("results"),
    force: Annotated[bool, typer.Option("--force")] = False,
    ties: TiesOpt = TieOrder.trec_eval,
):
    """Evaluate an external run under a suite's protocol and store it beside the harness's results."""
    from harness.pipeline import import_run

    outcome = import_run(run_file, suite, dataset, name, results, force=force, ties=ties.value)
    console.print(f"{outcome.status:>7}  {dataset} {name} {outcome.main_metric}="
                  f"{outcome.metrics[outcome.main_metric]:.4f}  {outcome.folder}")
    _print_ties(outcome.ties, outcome.metrics[outcome.main_metric])
    _note_unjudged(outcome.unjudged_queries)


@app.command()
def report(
    results: Annotated[Path, typer.Argument(help="Results folder")] = Path("results"),
    fmt: Annotated[Optional[list[str]], typer.Option("--format", "-f", help="markdown, latex, csv or html (repeatable; default: all)")] = None,
    out: Annotated[Path, typer.Option("--out", help="Output folder")] = Path("reports"),
    metric: Annotated[Optional[str], typer.Option("--metric", help="Tabulate this metric instead of each dataset's main one")] = None,
    force: Annotated[bool, typer.Option("--force", help="Tabulate results of different protocols, marked")] = False,
    baseline: Annotated[Optional[str], typer.Option("--baseline", help="Mark cells significantly better/worse than this row (paired randomization test, Holm per table)")] = None,
    alpha: Annotated[float, typer.Option("--alpha", callback=_probability, help="Family-wise error rate of the significance marks")] = 0.05,
    permutations: Annotated[int, typer.Option("--permutations", min=1, help="Randomization-test assignments per cell")] = 10_000,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Write the plots (always with html)")] = True,
):
    """Tables of retrievers x datasets, plots and one HTML page from stored results, under reports/."""
    from harness.extras import require

    require("matplotlib", "harness report")
    from harness.report import write_reports

    written = write_reports(results, out, fmt, metric=metric, force=force, baseline=baseline, plots=plots,
                            alpha=alpha, permutations=permutations)
    images = [p for p in written if p.suffix in (".png", ".svg")]
    for path in written:
        if path not in images:
            console.print(f"wrote {path}", markup=False, highlight=False)
    if images:
        console.print(f"wrote {len(images) // 2} plots (PNG and SVG) under {images[0].parent}")
    markdown = next((p for p in written if p.suffix == ".md"), None)
    if markdown is not None:
        console.print(markdown.read_text(encoding="utf-8"), markup=False, highlight=False, soft_wrap=True)


def _usage_error_classes() -> tuple[type[Exception], ...]:
    """The exceptions that mean "the command line is wrong". typer >= 0.2x vendors click and
    raises its own classes (derived from ``typer.TyperException``); older typer raises click's."""
    classes: list[type[Exception]] = []
    if hasattr(typer, "TyperException"):
        classes.append(typer.TyperException)
    try:
        import click
    except ImportError:  # typer that vendors click does not install it
        pass
    else:
        classes.append(click.ClickException)
    return tuple(classes)


def _usage_paragraph(error: Exception, argv: list[str]) -> str:
    """One paragraph: click's message and where the options of that command are listed."""
    message = error.format_message().strip().rstrip(".")
    ctx = getattr(error, "ctx", None)
    path = ctx.command_path if ctx is not None else None
    if path is None:  # an option's missing value is raised before the command's context exists
        commands = typer.main.get_command(app).commands
        path = "harness" + next((f" {a}" for a in argv if a in commands), "")
    what = "the commands" if path == "harness" else "its options and arguments"
    return f"{message}. `{path} --help` lists {what}."


def main(argv: list[str] | None = None) -> None:
    verbose = bool(os.environ.get("HARNESS_VERBOSE"))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not verbose:
        # ir_datasets and bm25s set their own loggers to INFO/DEBUG when they create them, so a
        # level set here would be overridden; warnings (such as counted drops) still show.
        logging.disable(logging.INFO)
    argv = sys.argv[1:] if argv is None else list(argv)
    progress.quiet_libraries()  # before ir_datasets, transformers or huggingface_hub start a bar of their own
    try:
        code = app(args=argv, prog_name="harness", standalone_mode=False)
    except HarnessError as e:
        err_console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except _usage_error_classes() as e:
        # Every mistake on the command line: one paragraph, no traceback, status 2 (as a
        # HarnessError). `harness` alone has already printed the help; it adds nothing.
        if e.format_message().strip():
            err_console.print(f"[bold red]error:[/] {escape(_usage_paragraph(e, argv))}", highlight=False,
                              soft_wrap=True)
        sys.exit(2)
    if code == interrupts.EXIT_STATUS:  # typer returns Ctrl-C as 130 when not standalone, not raised
        err_console.print("interrupted")
        sys.exit(code)
    if isinstance(code, int) and code:  # typer.Exit(code) raised inside a command
        sys.exit(code)


# Commands kept in their own modules register on ``app`` when imported; last, so that what they
# import from here is defined.
from harness import cli_compare, cli_mteb  # noqa: E402,F401
