"""Maintenance windows: nodes out of service from one moment to another, announced ahead.

The rule every policy keeps: a job may start on a node only if, by its *time limit*, it ends
before the node's next window begins — the scheduler cannot know it would end sooner, so it
uses what the user promised, as Slurm's maintenance reservations do. A job that fits before a
window is backfilled up to it; a longer one waits until the window is over. Jobs already
running when a window is created are not touched: the operator sees them (`affected`) and
decides. Windows are facts in the snapshot; the policies turn them into hard blocks on their
plan of the nodes (scheduler.profile) or into nodes excluded from a placement.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Window:
    nodes: frozenset[str]
    begins_at: float
    ends_at: float
    reason: str = ""
    window_id: int = 0

    def clashes(self, start: float, limit: float) -> bool:
        """Would a job started at `start` and running up to `limit` seconds meet this window?"""
        return start < self.ends_at and start + limit > self.begins_at

    def active(self, now: float) -> bool:
        return self.begins_at <= now < self.ends_at


def barred(windows: Sequence[Window], start: float, limit: float) -> frozenset[str]:
    """The nodes on which a job of `limit` seconds may not start at `start`."""
    if not windows:
        return frozenset()
    out: set[str] = set()
    for window in windows:
        if window.clashes(start, limit):
            out.update(window.nodes)
    return frozenset(out)


Spans = list[tuple[float, float]]  # a node's windows: (begin, end), sorted, not overlapping


def by_node(windows: Iterable[Window], nodes: Iterable[str]) -> dict[str, Spans]:
    """Each node's windows as sorted, merged (begin, end) spans: overlapping or touching
    windows on one node become one, so a plan can treat them as non-overlapping blocks."""
    wanted = set(nodes)
    spans: dict[str, Spans] = {}
    for window in windows:
        if window.ends_at <= window.begins_at:
            continue
        for node_id in window.nodes & wanted:
            spans.setdefault(node_id, []).append((window.begins_at, window.ends_at))
    return {node_id: _merged(sorted(found)) for node_id, found in spans.items()}


def _merged(spans: Spans) -> Spans:
    out: Spans = []
    for begin, end in spans:
        if out and begin <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((begin, end))
    return out


def next_begin(spans: Spans, after: float) -> float:
    """The start of the first of a node's merged spans that is not over at `after` (∞: none)."""
    ends = [end for _, end in spans]
    found = bisect.bisect_right(ends, after)
    return spans[found][0] if found < len(spans) else float("inf")


def ends_after(windows: Sequence[Window], now: float) -> list[float]:
    """When windows not yet over end, in order: the moments held-back work may start."""
    return sorted({w.ends_at for w in windows if w.ends_at > now})
