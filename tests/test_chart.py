"""The timeline chart: a valid PNG with one row (a status axes and a volume axes) per proposal, every proposal
shown, drawn headless and without warnings."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from matplotlib.image import imread
from sqlalchemy.engine import Engine
from sqlmodel import Session

from monitor.chart import draw_timelines
from monitor.store import queries

from .conftest import DK_SIGNED_WIRE

LADDER = ("discussion", "proposal", "signed")
PNG = b"\x89PNG\r\n\x1a\n"


def test_chart_draws_every_proposal_one_row_each(corpus: Engine, tmp_path: Path) -> None:
    with Session(corpus) as session:
        lines = queries.timelines(session=session)
    out = tmp_path / "timeline.png"
    drawn = draw_timelines(lines, LADDER, out, datetime(2026, 8, 1, tzinfo=UTC))
    assert out.read_bytes()[:8] == PNG
    assert drawn.rows == tuple(sorted(line.proposal_id for line in lines)) and len(drawn.rows) == 16
    assert drawn.axes == 2 * len(drawn.rows)
    height, width = imread(out).shape[:2]
    assert width == 1300 and height >= 100 * 1.25 * 16


def test_chart_timeline_steps_and_markers(corpus: Engine) -> None:
    with Session(corpus) as session:
        (dk,) = queries.timelines(session=session, proposals=["dk-ua-2024"])
    assert (dk.start_status, [status for _, status in dk.steps], dk.status) == (
        "discussion",
        ["proposal", "signed"],
        "signed",
    )
    assert dk.steps[-1][0] == DK_SIGNED_WIRE[3], "when the signing was first reported, not when it was polled"
    assert [(m.to_status, m.state) for m in dk.markers] == [("proposal", "confirmed"), ("signed", "confirmed")]
    assert sum(count for _, count in dk.volume) == 3


def test_chart_of_chosen_proposals(corpus: Engine, tmp_path: Path) -> None:
    with Session(corpus) as session:
        lines = queries.timelines(session=session, proposals=["it-ua-2024", "us-security-backstop"])
    drawn = draw_timelines(lines, LADDER, tmp_path / "two.png", datetime(2026, 8, 1, tzinfo=UTC))
    assert drawn.rows == ("it-ua-2024", "us-security-backstop") and drawn.axes == 4
