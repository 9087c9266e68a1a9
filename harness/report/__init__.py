"""Reports from stored results: paper-style tables (``tables``), significance marks against a
baseline row (``marks``), Markdown/LaTeX/CSV text (``formats``), plots (``plots``), one static
HTML page (``html``); ``write_reports`` (``write``) runs them all for ``harness report``."""

from harness.report.formats import latex_escape, significance_csv, to_csv, to_latex, to_markdown
from harness.report.tables import AVG, MISMATCH_MARK, Part, Significance, Table, build_tables
from harness.report.write import FORMATS, write_reports

__all__ = ["AVG", "FORMATS", "MISMATCH_MARK", "Part", "Significance", "Table", "build_tables", "latex_escape",
           "significance_csv", "to_csv", "to_latex", "to_markdown", "write_reports"]
