"""The regression gate: does a candidate lose more than a tolerance on some dataset, for sure?

For each paired dataset, with delta = mean over queries of (candidate - baseline) on the gated
metric, the gate tests

    H0: delta >= -tolerance   (the candidate is at most `tolerance` worse)
    H1: delta <  -tolerance   (it is worse by more than the tolerance)

with a one-sided paired bootstrap over queries (the same resamples as the confidence interval; p is
the share of resampled deltas at or above -tolerance). The p-values of all datasets are adjusted
with Holm-Bonferroni, and a dataset fails when its adjusted p is at most alpha. So a failure means
"the drop exceeds the tolerance, with family-wise error at most alpha"; a point estimate beyond the
tolerance on a few noisy queries passes (and says so). This is stricter than "the drop is
significantly non-zero and the point estimate is beyond the tolerance", which fails candidates whose
true drop may well be inside the tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness import significance
from harness.compare import MISMATCH_MARK, TIE, DatasetComparison, procedure
from harness.comparison_tables import fmt_ci, fmt_delta, fmt_p, marked_label
from harness.errors import HarnessError


@dataclass(frozen=True)
class Verdict:
    comparison: DatasetComparison
    p_value: float  # one-sided bootstrap, H0: delta >= -tolerance
    p_adjusted: float  # Holm-Bonferroni over the datasets gated
    regression: bool
    reason: str

    @property
    def label(self) -> str:
        return self.comparison.label


@dataclass(frozen=True)
class GateReport:
    verdicts: list[Verdict]
    tolerance: float
    alpha: float
    resamples: int
    seed: int
    notes: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.regression]

    @property
    def passed(self) -> bool:
        return not self.failures

    def procedure_text(self) -> str:
        return (f"Gate per dataset: H0 delta >= -{self.tolerance:g} against H1 delta < -{self.tolerance:g} "
                f"(one-sided paired bootstrap over queries, {self.resamples} resamples, seed {self.seed}); "
                f"p-values adjusted with Holm-Bonferroni over {len(self.verdicts)} "
                f"dataset{'s' if len(self.verdicts) != 1 else ''}; a dataset fails when its adjusted p <= "
                f"alpha = {self.alpha:g}.")

    def summary(self) -> str:
        if self.passed:
            return (f"PASS: no dataset dropped by more than {self.tolerance:g} with significance "
                    f"({len(self.verdicts)} gated).")
        return "FAIL: regression on " + "; ".join(failure_message(v, self) for v in self.failures)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": "pass" if self.passed else "fail",
            "failing": [v.label for v in self.failures],
            "procedure": {
                **procedure(self.resamples, self.seed),
                "null_hypothesis": f"delta >= -{self.tolerance:g}",
                "p_value": "one-sided paired bootstrap: share of resampled deltas >= -tolerance, (count + 1) / "
                           "(resamples + 1)",
                "correction": "holm-bonferroni",
                "tolerance": self.tolerance, "alpha": self.alpha, "resamples": self.resamples, "seed": self.seed,
                "text": self.procedure_text(),
            },
            "datasets": [{**v.comparison.to_dict(), "p_value": v.p_value, "p_adjusted": v.p_adjusted,
                          "verdict": "fail" if v.regression else "pass", "reason": v.reason} for v in self.verdicts],
            "notes": self.notes,
        }


def gate(comparisons: list[DatasetComparison], tolerance: float = 0.005, alpha: float = 0.05,
         notes: list[str] | None = None) -> GateReport:
    if not comparisons:
        raise HarnessError("Nothing to gate: the baseline and the candidate share no dataset.")
    if tolerance < 0:
        raise HarnessError(f"--tolerance {tolerance:g}: the tolerance is the largest acceptable drop of the "
                           "metric, 0 or more (e.g. 0.005 nDCG@10).")
    if not 0 < alpha < 1:
        raise HarnessError(f"--alpha {alpha:g}: the significance level is between 0 and 1 (e.g. 0.05).")
    resamples = comparisons[0].bootstrap.distribution.size
    seed = comparisons[0].bootstrap.seed
    # With B resamples the smallest p is 1/(B+1); Holm multiplies it by the number of datasets.
    if len(comparisons) / (resamples + 1) > alpha:
        raise HarnessError(f"With {resamples} resamples and {len(comparisons)} datasets no adjusted p-value can "
                           f"reach alpha = {alpha:g}, so the gate could never fail. Raise --resamples.")
    p_values = [c.bootstrap.p_below(-tolerance) for c in comparisons]
    adjusted = significance.holm(p_values)
    verdicts = []
    for comp, p, p_adj in zip(comparisons, p_values, adjusted):
        # With alpha < 0.5, p <= alpha all but implies a point estimate below -tolerance; required all the same.
        regression = bool(p_adj <= alpha and comp.delta < -tolerance)
        if regression:
            reason = f"drop beyond {tolerance:g}, significant"
        elif comp.delta >= -TIE:
            reason = "no drop"
        elif comp.delta >= -tolerance:
            reason = "drop within tolerance"
        else:
            reason = "drop beyond tolerance, not significant"
        verdicts.append(Verdict(comp, float(p), float(p_adj), regression, reason))
    return GateReport(verdicts, tolerance, alpha, resamples, seed, list(notes or []))


def failure_message(v: Verdict, report: GateReport) -> str:
    c = v.comparison
    return (f"{v.label} ({c.metric} {c.baseline_mean:.4f} -> {c.candidate_mean:.4f}, delta {fmt_delta(c.delta)}, "
            f"{c.bootstrap.confidence:.0%} CI {fmt_ci(c.bootstrap)}, p {fmt_p(v.p_value)}, Holm-adjusted p "
            f"{fmt_p(v.p_adjusted)} <= alpha {report.alpha:g}, tolerance {report.tolerance:g})"
            + (f" {MISMATCH_MARK} protocols differ in {', '.join(c.pair.protocol_differences())} (forced)"
               if c.pair.protocol_differences() else ""))


def verdict_table(report: GateReport):
    from rich.table import Table

    table = Table(title=f"regression gate: tolerance {report.tolerance:g}, alpha {report.alpha:g} (Holm-Bonferroni)",
                  title_justify="left")
    for col, justify in (("dataset", "left"), ("metric", "left"), ("baseline", "right"), ("candidate", "right"),
                         ("delta", "right"), ("95% CI", "right"), ("p", "right"), ("adj. p", "right"),
                         ("verdict", "left")):
        # Narrow terminals fold the names rather than cut them.
        table.add_column(col, justify=justify, overflow="fold")
    for v in report.verdicts:
        c = v.comparison
        verdict = f"[bold red]FAIL[/]: {v.reason}" if v.regression else f"pass: {v.reason}"
        table.add_row(marked_label(c), c.metric, f"{c.baseline_mean:.4f}", f"{c.candidate_mean:.4f}",
                      fmt_delta(c.delta), fmt_ci(c.bootstrap), fmt_p(v.p_value), fmt_p(v.p_adjusted), verdict)
    return table


def to_junit(report: GateReport) -> str:
    """JUnit XML as CI systems read it: one <testsuite>, one <testcase> per dataset, a <failure>
    for each regression."""
    import xml.etree.ElementTree as ET

    counts = {"tests": str(len(report.verdicts)), "failures": str(len(report.failures)), "errors": "0",
              "skipped": "0", "time": "0"}
    root = ET.Element("testsuites", {"name": "harness regress", **counts})
    suite = ET.SubElement(root, "testsuite", {"name": "harness regress", **counts})
    properties = ET.SubElement(suite, "properties")
    for name, value in (("tolerance", f"{report.tolerance:g}"), ("alpha", f"{report.alpha:g}"),
                        ("correction", "holm-bonferroni"), ("resamples", str(report.resamples)),
                        ("seed", str(report.seed)), ("procedure", report.procedure_text())):
        ET.SubElement(properties, "property", {"name": name, "value": value})
    for v in report.verdicts:
        c = v.comparison
        case = ET.SubElement(suite, "testcase", {"name": v.label, "classname": f"harness.regress.{c.pair.suite}",
                                                 "time": "0"})
        if v.regression:
            failure = ET.SubElement(case, "failure", {"type": "regression",
                                                      "message": f"regression on {failure_message(v, report)}"})
            failure.text = "\n".join(
                f"{q.query_id}: {q.baseline:.4f} -> {q.candidate:.4f} ({fmt_delta(q.delta)})" for q in c.changed)
        else:
            ET.SubElement(case, "system-out").text = (
                f"{c.metric} {c.baseline_mean:.4f} -> {c.candidate_mean:.4f}, delta {fmt_delta(c.delta)}, "
                f"CI {fmt_ci(c.bootstrap)}, p {fmt_p(v.p_value)}, adjusted p {fmt_p(v.p_adjusted)}: {v.reason}"
                + (f" {MISMATCH_MARK} protocols differ (forced)" if c.pair.protocol_differences() else ""))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
