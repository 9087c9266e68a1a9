"""The Pareto frontier of (cost, quality) points: lower cost and higher quality are better."""

from __future__ import annotations


def pareto_frontier(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points that no other point dominates (costs no more and scores at least as
    well, one of them strictly), ordered by cost. Of identical points the first is kept."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1], i))
    frontier: list[int] = []
    for i in order:
        if not frontier or points[i][1] > points[frontier[-1]][1]:
            frontier.append(i)
    return frontier
