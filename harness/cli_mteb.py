"""The ``export`` and ``import-mteb`` commands: MTEB's result files, written and read
(``harness.mteb_results``). Registered on ``harness.cli``'s app, which imports this module once it
is defined."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from harness.cli import app, console

ExportFormat = Enum("ExportFormat", {"mteb": "mteb"}, type=str)
SuitesOpt = Annotated[Path, typer.Option("--suites", help="Folder of suite files, whose `mteb:` fields map datasets to MTEB tasks")]


@app.command()
def export(
    results: Annotated[Path, typer.Argument(help="Results folder")] = Path("results"),
    fmt: Annotated[ExportFormat, typer.Option("--format", help="mteb: MTEB's result layout, <org>__<model>/<revision>/<Task>.json")] = ExportFormat.mteb,
    to: Annotated[Path, typer.Option("--to", help="Folder to write into")] = Path("mteb-results"),
    suites: SuitesOpt = Path("suites"),
):
    """Write stored results in another tool's format (MTEB's), for every dataset that maps to its tasks."""
    from harness.mteb_results import export_mteb

    exported = export_mteb(results, to, suites)
    for path in exported.written:
        console.print(f"wrote {path}", markup=False, highlight=False)
    for note in exported.notes:
        console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
    if not exported.written:
        console.print(f"nothing exported: no result under {results} maps to an MTEB task", highlight=False)


@app.command("import-mteb")
def import_mteb(
    path: Annotated[Path, typer.Argument(help="An MTEB result file, or a folder of them (e.g. MTEB's results repository)")],
    results: Annotated[Path, typer.Option("--results", help="Results folder")] = Path("results"),
    suites: SuitesOpt = Path("suites"),
):
    """Store MTEB's reported numbers as reference rows (no per-query scores, so no significance marks) that reports show beside the harness's."""
    from harness.mteb_results import import_mteb as read

    written, notes = read(path, results, suites)
    for folder in written:
        console.print(f"reported  {folder}", markup=False, highlight=False)
    for note in notes:
        console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
