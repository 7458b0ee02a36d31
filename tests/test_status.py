"""The history policy (pure): upgrades, corroboration, no silent downgrade, withdrawals for review."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from monitor.config import CorroborationSettings
from monitor.status import (
    Decision,
    Ladder,
    Observation,
    Pending,
    ProposalState,
    corroborated,
    decide,
    raises_status,
)

LADDER = ("discussion", "proposal", "signed")
POLICY = {"signed": CorroborationSettings(sources=2, window=7 * 86400, official_suffices=True)}
T0 = datetime(2024, 2, 16, 12, tzinfo=UTC)


def _obs(status: str, source: str = "a", tier: str = "media", days: float = 0, withdrawn: bool = False) -> Observation:
    return Observation("p", status, source, tier, T0 + timedelta(days=days), 0.9, withdrawn)


def _kinds(decisions: list[Decision]) -> list[tuple[str, str, bool]]:
    return [(d.kind, d.to_status, d.confirmed) for d in decisions]


@pytest.mark.parametrize(
    ("current", "observation", "expected"),
    [
        ("discussion", _obs("proposal"), [("upgrade", "proposal", True)]),
        ("discussion", _obs("signed"), [("upgrade", "signed", False)]),
        ("discussion", _obs("signed", tier="official"), [("upgrade", "signed", True)]),
        ("proposal", _obs("signed", tier="wire"), [("upgrade", "signed", False)]),
        ("proposal", _obs("proposal"), [("evidence", "proposal", True)]),
        ("signed", _obs("discussion"), [("report", "discussion", True)]),
        ("signed", _obs("proposal", tier="official"), [("report", "proposal", True)]),
        (
            "signed",
            _obs("discussion", withdrawn=True),
            [("withdrawal", "signed", False), ("report", "discussion", True)],
        ),
        (
            "proposal",
            _obs("proposal", withdrawn=True),
            [("withdrawal", "proposal", False), ("evidence", "proposal", True)],
        ),
    ],
)
def test_decide_table(current: str, observation: Observation, expected: list[tuple[str, str, bool]]) -> None:
    assert _kinds(decide(ProposalState("p", current), observation, LADDER, POLICY)) == expected


def test_decide_never_downgrades() -> None:
    for current in LADDER:
        for reported in LADDER:
            for decision in decide(ProposalState("p", current), _obs(reported), LADDER, POLICY):
                assert LADDER.index(decision.to_status) >= LADDER.index(current) or decision.kind == "report"
                if decision.kind == "report":
                    assert LADDER.index(reported) < LADDER.index(current)


def test_decide_second_independent_source_confirms() -> None:
    first = _obs("signed", source="a")
    pending = Pending(7, "signed", (first,))
    state = ProposalState("p", "proposal", pending={"signed": pending})
    same_source = decide(state, _obs("signed", source="a", days=1), LADDER, POLICY)
    assert _kinds(same_source) == [("corroborate", "signed", False)]
    other = decide(state, _obs("signed", source="b", days=2), LADDER, POLICY)
    assert _kinds(other) == [("corroborate", "signed", True)]
    assert other[0].change_id == 7
    assert other[0].confidence > same_source[0].confidence


def test_decide_corroboration_outside_the_window_does_not_confirm() -> None:
    state = ProposalState("p", "proposal", pending={"signed": Pending(7, "signed", (_obs("signed", source="a"),))})
    late = decide(state, _obs("signed", source="b", days=8), LADDER, POLICY)
    assert _kinds(late) == [("corroborate", "signed", False)]


def test_decide_an_official_source_confirms_a_pending_change() -> None:
    state = ProposalState("p", "proposal", pending={"signed": Pending(7, "signed", (_obs("signed", source="a"),))})
    assert _kinds(decide(state, _obs("signed", source="gov", tier="official", days=1), LADDER, POLICY)) == [
        ("corroborate", "signed", True)
    ]


def test_decide_policy_is_configurable() -> None:
    strict = {"proposal": CorroborationSettings(sources=3, window=86400, official_suffices=False)}
    ladder = ("rumour", "discussion", "proposal", "signed")
    assert _kinds(decide(ProposalState("p", "rumour"), _obs("proposal", tier="official"), ladder, strict)) == [
        ("upgrade", "proposal", False)
    ]
    assert _kinds(decide(ProposalState("p", "rumour"), _obs("signed"), ladder, strict)) == [("upgrade", "signed", True)]


def test_corroborated_counts_distinct_sources_within_the_window() -> None:
    rule = POLICY["signed"]
    reports = [_obs("signed", "a"), _obs("signed", "a", days=1), _obs("signed", "b", days=6)]
    assert corroborated(reports, T0 + timedelta(days=6), rule)
    assert not corroborated(reports[:2], T0 + timedelta(days=1), rule)
    assert not corroborated(reports, T0 + timedelta(days=20), rule)


@pytest.mark.parametrize(
    ("status", "default", "expected"),
    [("discussion", -1, 0), ("proposal", -1, 1), ("signed", -1, 2), ("rumour", -1, -1), ("rumour", 0, 0)],
)
def test_ladder_rank(status: str, default: int, expected: int) -> None:
    assert Ladder(LADDER).rank(status, default=default) == expected


@pytest.mark.parametrize(
    ("status", "other", "expected"),
    [
        ("signed", "proposal", True),
        ("proposal", "signed", False),
        ("proposal", "proposal", False),
        ("discussion", "rumour", True),
        ("rumour", "discussion", False),
    ],
)
def test_ladder_above(status: str, other: str, expected: bool) -> None:
    assert Ladder(LADDER).above(status, other) is expected


def test_ladder_is_the_sequence_it_was_made_from() -> None:
    ladder = Ladder(LADDER)
    assert (list(ladder), len(ladder), ladder[0], ladder[1:]) == (list(LADDER), 3, "discussion", LADDER[1:])
    assert "signed" in ladder and "rumour" not in ladder
    assert Ladder.of(ladder) is ladder and Ladder.of(list(LADDER)) == ladder


@pytest.mark.parametrize("statuses", [[], ["a", "b", "a"]])
def test_ladder_refuses_an_empty_or_repeating_list(statuses: list[str]) -> None:
    with pytest.raises(ValueError, match="ladder"):
        Ladder(statuses)


@dataclass(frozen=True)
class _Change:
    kind: str
    state: str
    to_status: str


@pytest.mark.parametrize(
    ("change", "current", "expected"),
    [
        (_Change("upgrade", "confirmed", "signed"), "proposal", True),
        (_Change("upgrade", "unconfirmed", "signed"), "proposal", False),
        (_Change("upgrade", "rejected", "signed"), "proposal", False),
        (_Change("upgrade", "confirmed", "proposal"), "proposal", False),
        (_Change("upgrade", "confirmed", "discussion"), "signed", False),
        (_Change("withdrawal", "confirmed", "signed"), "proposal", False),
        (_Change("analyst", "confirmed", "signed"), "discussion", False),
    ],
)
def test_raises_status_only_for_a_confirmed_upgrade_above_the_status(
    change: _Change, current: str, expected: bool
) -> None:
    assert raises_status(change, current, LADDER) is expected
