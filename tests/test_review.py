"""Review actions on the corpus database: confirm and reject open changes, set a status up or down. Each is a
recorded state change or a new row, with who, when and why, in the history and in the event outbox."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from monitor.digest import EventView, render_digest, select_content
from monitor.store import models, queries, review

from .conftest import IT_SIGNED

LADDER = ("discussion", "proposal", "signed")
NOW = datetime(2026, 8, 1, 9, 30, tzinfo=UTC)


def _open_change(engine: Engine, proposal_id: str) -> int:
    with Session(engine) as session:
        rows = queries.review_queue(0.9, session=session).records()
    (change_id,) = [row["id"] for row in rows if row["kind"] == "change" and row["proposal_id"] == proposal_id]
    return int(change_id)


def _status(engine: Engine, proposal_id: str) -> str:
    with Session(engine) as session:
        row = session.get(models.Proposal, proposal_id)
        assert row is not None
        return row.status


def _events(engine: Engine, change_id: int) -> list[models.Event]:
    with Session(engine) as session:
        return list(session.exec(select(models.Event).where(models.Event.change_id == change_id)))


def test_review_queue_lists_open_changes_and_low_scores(corpus: Engine) -> None:
    with Session(corpus) as session:
        rows = queries.review_queue(0.9, session=session).records()
    changes = {(r["proposal_id"], r["what"], r["state"]) for r in rows if r["kind"] == "change"}
    assert changes == {
        ("it-ua-2024", "discussion->signed", "unconfirmed"),
        ("fr-ua-2024", "discussion->signed", "unconfirmed"),
    }
    low = {(r["proposal_id"], r["title"]): r["score"] for r in rows if r["kind"] == "match"}
    # the misspelt report, and a report that describes membership without naming it (a concept match)
    assert low[("reassurance-force", "Leaders discuss a reassurence forse for Ukraine")] < 0.9
    assert all(score < 0.9 for score in low.values())


def test_review_confirm_moves_the_status_up_with_who_when_and_why(corpus: Engine) -> None:
    change_id = _open_change(corpus, "it-ua-2024")
    with Session(corpus) as session:
        review.confirm_change(change_id, "Text published by Palazzo Chigi", "alice", LADDER, NOW, session=session)
        session.commit()
    assert _status(corpus, "it-ua-2024") == "signed"
    with Session(corpus) as session:
        (row,) = queries.status_history(session=session, proposal="it-ua-2024").records()
        current = queries.current_status(session=session, proposals=["it-ua-2024"]).records()[0]
    assert (row["state"], row["decided_by"], row["note"], row["decided_at"], row["confirmed_at"]) == (
        "confirmed",
        "alice",
        "Text published by Palazzo Chigi",
        NOW,
        NOW,
    )
    # since: when the reported signing happened, not when the analyst confirmed it
    assert (current["since"], current["latest_state"], current["evidence"]) == (IT_SIGNED[3], "confirmed", 1)
    (event,) = [e for e in _events(corpus, change_id) if e.kind == "confirmed"]
    detail = json.loads(event.detail or "{}")
    assert (detail["to_status"], detail["decided_by"], detail["note"], detail["confirmed"]) == (
        "signed",
        "alice",
        "Text published by Palazzo Chigi",
        True,
    )
    with Session(corpus) as session, pytest.raises(review.ReviewError, match="already confirmed by alice"):
        review.reject_change(change_id, "changed my mind", "bob", NOW, session=session)


def test_review_reject_keeps_the_change_marked_rejected(corpus: Engine) -> None:
    change_id = _open_change(corpus, "fr-ua-2024")
    with Session(corpus) as session:
        review.reject_change(change_id, "A blog misreading the 2024 agreement", "bob", NOW, session=session)
        session.commit()
    assert _status(corpus, "fr-ua-2024") == "discussion"
    with Session(corpus) as session:
        (row,) = queries.status_history(session=session, proposal="fr-ua-2024").records()
        assert "fr-ua-2024" not in {r["proposal_id"] for r in queries.review_queue(0.9, session=session).records()}
    assert (row["state"], row["decided_by"], row["note"], row["decided_at"]) == (
        "rejected",
        "bob",
        "A blog misreading the 2024 agreement",
        NOW,
    )
    assert row["source_id"] == "blog"  # its evidence is kept
    assert [e.kind for e in _events(corpus, change_id)][-1] == "rejected"


def test_review_set_status_up_then_down_appends_analyst_changes_and_tells_subscribers(corpus: Engine) -> None:
    proposal = "it-article5-guarantee"
    later = datetime(2026, 8, 2, tzinfo=UTC)
    with Session(corpus) as session:
        up = review.set_status(proposal, "proposal", "Tabled at the summit", "carol", LADDER, NOW, session=session)
        down = review.set_status(
            proposal, "discussion", "Withdrawn from the agenda", "carol", LADDER, later, session=session
        )
        session.commit()
        ids = (up.id, down.id)
    assert _status(corpus, proposal) == "discussion"
    with Session(corpus) as session:
        rows = queries.status_history(session=session, proposal=proposal).records()
        stages = queries.stage_durations(session=session, proposal=proposal).records()
        events = list(session.exec(select(models.Event).where(col(models.Event.change_id).in_(ids))))
    assert [(r["kind"], r["from_status"], r["to_status"], r["state"], r["decided_by"], r["note"]) for r in rows] == [
        ("analyst", "discussion", "proposal", "confirmed", "carol", "Tabled at the summit"),
        ("analyst", "proposal", "discussion", "confirmed", "carol", "Withdrawn from the agenda"),
    ]
    assert [(s["stage"], s["days"]) for s in stages] == [("proposal", pytest.approx(14.5 / 24)), ("discussion", None)]
    views = [EventView(e.id or 0, e.kind, e.proposal_id, json.loads(e.detail or "{}"), e.created_at) for e in events]
    content = select_content(views, {proposal: "NATO-light"}, LADDER)
    assert [(c.from_status, c.to_status, c.confirmed) for c in content.changes] == [
        ("discussion", "proposal", True),
        ("proposal", "discussion", True),
    ]
    assert "analyst carol" in render_digest(content)[0]


@pytest.mark.parametrize(
    ("proposal", "status", "note", "message"),
    [
        ("it-article5-guarantee", "ratified", "why", "not on the ladder"),
        ("nope", "signed", "why", "no proposal 'nope'"),
        ("ca-ua-2024", "signed", "  ", "a note is required"),
        ("ca-ua-2024", "discussion", "why", "already at discussion"),
    ],
)
def test_review_set_status_refuses_what_it_cannot_record(
    corpus: Engine, proposal: str, status: str, note: str, message: str
) -> None:
    with Session(corpus) as session, pytest.raises(review.ReviewError, match=message):
        review.set_status(proposal, status, note, "dave", LADDER, NOW, session=session)


def test_review_unknown_change_is_a_clear_error(corpus: Engine) -> None:
    with Session(corpus) as session, pytest.raises(review.ReviewError, match="no status change 99999"):
        review.confirm_change(99999, "why", "erin", LADDER, NOW, session=session)
