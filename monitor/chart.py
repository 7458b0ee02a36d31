"""The timeline chart: `Timeline`s (from `monitor.store.queries`) -> a PNG, one row per proposal.

Each row has the proposal's status over time as coloured bands with a step line across the ladder, a
marker at each change (filled: confirmed, hollow: unconfirmed, cross: rejected, diamond: an analyst's
decision, triangle: withdrawal for review), and its reports per day as bars beneath. Draws with matplotlib's
Agg canvas directly (no pyplot, no screen, no global state); reads no database and no clock (`now` is where
the bands end).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from monitor.status import Ladder
from monitor.store.queries import Timeline

PALETTE = ("#c6dbef", "#fdd0a2", "#a1d99b", "#dadaeb", "#fcbba1", "#d9d9d9")  # lowest status first
LINE = ("#3182bd", "#e6550d", "#31a354", "#756bb1", "#de2d26", "#636363")
ROW_INCHES = 1.25


def _num(value: datetime | date) -> float:
    return float(mdates.date2num(value))  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class Drawn:
    """What was drawn: the proposals, one row each, top to bottom, and how many axes (two per row)."""

    path: Path
    rows: tuple[str, ...]
    axes: int


def draw_timelines(lines: Sequence[Timeline], ladder: Sequence[str], out: Path, now: datetime) -> Drawn:
    """Draw `lines` to `out`, as PNG, SVG or PDF by its extension."""
    ranks = Ladder.of(ladder)
    start, end = _span(lines, now)
    figure = Figure(figsize=(13, 1.0 + ROW_INCHES * len(lines)), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(2 * len(lines), 1, height_ratios=[1.0, 0.5] * len(lines))
    first = None
    for row, line in enumerate(lines):
        status_axes = figure.add_subplot(grid[2 * row], sharex=first)
        first = first or status_axes
        volume_axes = figure.add_subplot(grid[2 * row + 1], sharex=first)
        _draw_status(status_axes, line, ranks, start, end)
        _draw_volume(volume_axes, line, last=row == len(lines) - 1)
    assert first is not None
    first.set_xlim(start, end)
    figure.legend(handles=_legend(ranks), loc="outside upper center", ncol=len(ladder) + 5, fontsize=8, frameon=False)
    figure.savefig(out, format=out.suffix.lstrip(".").lower() or "png")
    return Drawn(out, tuple(line.proposal_id for line in lines), len(figure.axes))


def _span(lines: Sequence[Timeline], now: datetime) -> tuple[float, float]:
    times: list[datetime] = [now]
    for line in lines:
        times += [step for step, _ in line.steps] + [marker.at for marker in line.markers]
        times += [datetime.combine(day, time(), now.tzinfo) for day, _ in line.volume]
    earliest = min(times) - timedelta(days=2)
    return _num(earliest), _num(max(times) + timedelta(days=1))


def _colour(ladder: Ladder, status: str, palette: Sequence[str]) -> str:
    return palette[ladder.rank(status, default=0) % len(palette)]


def _draw_status(axes: Axes, line: Timeline, ladder: Ladder, start: float, end: float) -> None:
    edges = [start, *(_num(at) for at, _ in line.steps), end]
    statuses = [line.start_status, *(status for _, status in line.steps)]
    for left, right, status in zip(edges, edges[1:], statuses, strict=False):
        axes.axvspan(left, right, color=_colour(ladder, status, PALETTE), linewidth=0)
    levels = [ladder.rank(status, default=0) for status in statuses]
    axes.step(edges, [*levels, levels[-1]], where="post", color="#333333", linewidth=1.4)
    for marker in line.markers:
        x, y = _num(marker.at), ladder.rank(marker.to_status, default=0)
        colour = _colour(ladder, marker.to_status, LINE)
        if marker.kind == "withdrawal":
            axes.plot([x], [y], marker="v", markersize=8, color="#7b3294", linestyle="none")
        elif marker.state == "rejected":
            axes.plot([x], [y], marker="x", markersize=8, color="#555555", mew=2, linestyle="none")
        elif marker.kind == "analyst":
            axes.plot([x], [y], marker="D", markersize=7, color=colour, mec="black", linestyle="none")
        elif marker.state == "confirmed":
            axes.plot([x], [y], marker="o", markersize=7, color=colour, mec="black", linestyle="none")
        else:
            axes.plot([x], [y], marker="o", markersize=7, mfc="white", mec=colour, mew=2, linestyle="none")
    axes.set_ylim(-0.6, len(ladder) - 0.4)
    axes.set_yticks(range(len(ladder)), list(ladder), fontsize=7)
    axes.tick_params(labelbottom=False, length=0)
    axes.set_title(f"{line.proposal_id}: {line.status}", loc="left", fontsize=9, fontweight="bold", pad=2)
    axes.set_title(line.title[:110], loc="right", fontsize=7, color="#555555", pad=2)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)


def _draw_volume(axes: Axes, line: Timeline, last: bool) -> None:
    if line.volume:
        days = [_num(day) + 0.5 for day, _ in line.volume]
        axes.bar(days, [count for _, count in line.volume], width=0.9, color="#4d4d4d")
    top = max((count for _, count in line.volume), default=0)
    axes.set_ylim(0, max(top, 1) * 1.15)
    axes.set_yticks([0, max(top, 1)])
    axes.tick_params(axis="y", labelsize=6, length=2)
    axes.set_ylabel("reports", fontsize=6, rotation=0, ha="right", va="center")
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    if last:
        locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
        axes.tick_params(axis="x", labelsize=8)
    else:
        axes.tick_params(labelbottom=False)


def _legend(ladder: Ladder) -> list[Patch | Line2D]:
    handles: list[Patch | Line2D] = [Patch(color=_colour(ladder, status, PALETTE), label=status) for status in ladder]
    handles += [
        Line2D([], [], marker="o", color="#444444", mec="black", linestyle="none", label="confirmed change"),
        Line2D([], [], marker="o", mfc="white", mec="#444444", mew=2, linestyle="none", label="unconfirmed"),
        Line2D([], [], marker="D", color="#444444", mec="black", linestyle="none", label="analyst's decision"),
        Line2D([], [], marker="x", color="#555555", mew=2, linestyle="none", label="rejected"),
        Line2D([], [], marker="v", color="#7b3294", linestyle="none", label="withdrawal (review)"),
    ]
    return handles
