"""Marks for differences that tied scores alone could explain.

A record's tie report bounds its main metric over the orders of tied documents (relevant first:
optimistic; last: pessimistic). A cell below its column's best is marked when its optimistic
value reaches the best's pessimistic one: some order of ties would close the gap, so the table
should not be read as ranking the two. Only dataset columns are marked (a mean's bounds would
need every member's), and only where both records bound the column's metric.
"""

from __future__ import annotations

TIE_MARK = "‡"
NOTE = (f"{TIE_MARK} below the column's best by no more than the order of tied scores could explain "
        "(its value with relevant documents first among ties reaches the best's with them last).")


def tie_marks(rows: list[str], columns: list[str], value, bounds: dict[tuple[str, str], tuple[float, float]]
              ) -> dict[tuple[str, str], str]:
    """``value(row, column)``; ``bounds[(row, column)]`` = (pessimistic, optimistic)."""
    marks = {}
    for column in columns:
        scored = [(row, value(row, column)) for row in rows if value(row, column) is not None]
        if not scored:
            continue
        best_row, best = max(scored, key=lambda item: item[1])
        if (best_row, column) not in bounds:
            continue
        best_low = bounds[(best_row, column)][0]
        for row, v in scored:
            if v < best and (row, column) in bounds and bounds[(row, column)][1] >= best_low:
                marks[(row, column)] = TIE_MARK
    return marks
