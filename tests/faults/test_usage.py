"""Mistakes on the command line: one paragraph, no traceback, exit status 2, nothing written.

typer vendors click in recent versions and raises its own exception classes; these cases fail if
the CLI catches only click's. Messages come from click (or typer's copy), so they are matched on
their stable start.
"""

from __future__ import annotations

import re

import pytest
import typer

from harness.cli import app
from tests.conftest import SCIFACT_SUITE, run_cli
from tests.faults.expect import expect_refusal, first_line, seeded_results

COMMANDS = sorted(typer.main.get_command(app).commands)
SUITE = str(SCIFACT_SUITE)


@pytest.fixture
def results(tmp_path):
    """A results folder with a result in it, in the folder the commands run from (so that their
    default output folders, results/ and reports/, are under the snapshot too)."""
    seeded_results(tmp_path)
    return tmp_path


def test_the_cli_registers_the_documented_commands():
    assert COMMANDS == ["compare", "evaluate", "export", "import", "import-mteb", "list", "regress", "report", "run"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_refuses_an_unknown_option(command, results):
    result = expect_refusal(command, "--no-such-option", first="error: No such option: --no-such-option",
                            results=results, cwd=results)
    # One paragraph: the message and where the command's options are listed, on one line.
    assert result.stderr.strip().count("\n") == 0
    assert f"`harness {command} --help`" in result.stderr


def test_a_misspelt_option_is_named_with_the_right_one(results):
    result = expect_refusal("run", SUITE, "--datset", "scifact", first="error: No such option: --datset",
                            results=results, cwd=results)
    assert "--dataset" in first_line(result.stderr)


def test_an_unknown_command(results):
    expect_refusal("frob", first="error: No such command 'frob'.", results=results, cwd=results)


def test_a_missing_argument(results):
    expect_refusal("run", first=re.compile(r"error: Missing argument '(suites|SUITES\.\.\.)'\."), results=results,
                   cwd=results)


def test_a_missing_required_option(results):
    run = results / "theirs.trec"
    run.write_text("q1 Q0 d1 1 1.0 x\n")
    expect_refusal("import", str(run), "--suite", SUITE, "--dataset", "scifact",
                   first="error: Missing option '--name'", results=results, cwd=results)


def test_an_option_without_its_value(results):
    result = expect_refusal("evaluate", "--run", first="error: Option '--run' requires an argument.",
                            results=results, cwd=results)
    assert "`harness evaluate --help`" in result.stderr


def test_a_word_where_an_integer_is_expected(results):
    expect_refusal("run", SUITE, "--max-queries", "abc", first="error: Invalid value for '--max-queries'",
                   results=results, cwd=results)


def test_a_word_where_a_number_is_expected(results):
    expect_refusal("regress", "--baseline", "a", "--candidate", "b", "--tolerance", "small",
                   first="error: Invalid value for '--tolerance'", results=results, cwd=results)


# A smoke run of no queries used to run the whole dataset (0 was taken for "not given").
@pytest.mark.parametrize("option,value", [("--max-queries", "0"), ("--max-queries", "-5"),
                                          ("--max-documents", "0"), ("--latency-queries", "-1")])
def test_run_counts_out_of_range(option, value, results):
    result = expect_refusal("run", SUITE, "-d", "scifact", option, value, first=f"error: Invalid value for '{option}'",
                            results=results, cwd=results)
    lowest = "0" if option == "--latency-queries" else "1"
    assert re.search(rf"(>=|greater than or equal to) ?{lowest}\b", first_line(result.stderr))


@pytest.mark.parametrize("command,extra", [("report", ()), ("regress", ("--baseline", "a", "--candidate", "b"))])
@pytest.mark.parametrize("alpha", ["7", "0", "1", "-0.05"])
def test_alpha_is_a_probability(command, extra, alpha, results):
    expect_refusal(command, *extra, "--alpha", alpha,
                   first=f"error: Invalid value for '--alpha': {float(alpha):g} is not a probability strictly "
                         "between 0 and 1",
                   results=results, cwd=results)


@pytest.mark.parametrize("args,option", [
    (("report", "--permutations", "0"), "--permutations"),
    (("compare", "a", "b", "--resamples", "0"), "--resamples"),
    (("compare", "a", "b", "--top", "-1"), "--top"),
    (("regress", "--baseline", "a", "--candidate", "b", "--tolerance", "-0.01"), "--tolerance"),
])
def test_other_counts_and_tolerances_out_of_range(args, option, results):
    expect_refusal(*args, first=f"error: Invalid value for '{option}'", results=results, cwd=results)


def test_no_command_shows_the_help_without_a_traceback(results):
    result = run_cli(cwd=results)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "Usage: harness [OPTIONS] COMMAND" in result.stdout + result.stderr
