"""A proposal's state + one matched report + the policy -> the history events that report causes.

Pure: takes an `Observation` (what one report says about one proposal), the proposal's `ProposalState`, the
status ladder and the corroboration policy; returns `Decision`s for the store to apply. Reads no clock,
database or network.

The rules:
- A report above the current status proposes an upgrade. If the policy asks nothing for that status, or the
  evidence already meets it, the change is confirmed at once; otherwise it is recorded as reported but
  unconfirmed, and confirmed when later reports corroborate it.
- Corroboration (per status, from feeds.yaml): `sources` independent sources (distinct feeds) whose reports
  fall within `window` of each other, or one `official` source when `official_suffices`.
- A report at the current status is evidence for the current status; a report below it is evidence only,
  never a downgrade.
- An explicit withdrawal or collapse is recorded as an event flagged for review; it changes no status.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from monitor.config import CorroborationSettings


@dataclass(frozen=True)
class Observation:
    """One matched report about one proposal."""

    proposal: str
    status: str
    source_id: str
    tier: str
    reported_at: datetime
    score: float
    withdrawn: bool = False
    match_id: int | None = None


@dataclass(frozen=True)
class Pending:
    """An open, unconfirmed upgrade and the reports behind it so far."""

    change_id: int
    to_status: str
    evidence: tuple[Observation, ...]


@dataclass(frozen=True)
class ProposalState:
    proposal: str
    status: str
    current_change_id: int | None = None
    pending: Mapping[str, Pending] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """What to record.

    kind: `upgrade` (a new change, confirmed or not), `corroborate` (evidence for an open change, which it may
    confirm), `evidence` (supports the current status, no change), `report` (below the current status: kept
    as evidence only), `withdrawal` (flagged for review).
    """

    kind: str
    proposal: str
    to_status: str
    from_status: str
    confirmed: bool
    confidence: float
    change_id: int | None = None


def decide(
    state: ProposalState,
    observation: Observation,
    ladder: Sequence[str],
    policy: Mapping[str, CorroborationSettings],
) -> list[Decision]:
    """The events one report causes for one proposal."""
    rank = {status: index for index, status in enumerate(ladder)}
    current, reported = rank[state.status], rank.get(observation.status, 0)
    decisions: list[Decision] = []
    if observation.withdrawn:
        decisions.append(Decision("withdrawal", state.proposal, state.status, state.status, False, observation.score))
    if reported < current:
        decisions.append(Decision("report", state.proposal, observation.status, state.status, True, observation.score))
        return decisions
    if reported == current:
        decisions.append(
            Decision(
                "evidence",
                state.proposal,
                state.status,
                state.status,
                True,
                observation.score,
                change_id=state.current_change_id,
            )
        )
        return decisions
    rule = policy.get(observation.status)
    pending = state.pending.get(observation.status)
    evidence = (*pending.evidence, observation) if pending else (observation,)
    confirmed = corroborated(evidence, observation.reported_at, rule)
    confidence = confidence_of(evidence, observation.reported_at, rule)
    if pending is None:
        decisions.append(Decision("upgrade", state.proposal, observation.status, state.status, confirmed, confidence))
    else:
        decisions.append(
            Decision(
                "corroborate",
                state.proposal,
                observation.status,
                state.status,
                confirmed,
                confidence,
                change_id=pending.change_id,
            )
        )
    return decisions


def corroborated(evidence: Sequence[Observation], now: datetime, rule: CorroborationSettings | None) -> bool:
    """Whether the reports meet the rule: enough independent sources within the window, or one official."""
    if rule is None:
        return True
    recent = _within(evidence, now, rule.window)
    if rule.official_suffices and any(item.tier == "official" for item in recent):
        return True
    return len({item.source_id for item in recent}) >= rule.sources


def confidence_of(evidence: Sequence[Observation], now: datetime, rule: CorroborationSettings | None) -> float:
    """0..1: the mean best match score per independent source, scaled by how much of the rule is met."""
    recent = _within(evidence, now, rule.window) if rule else list(evidence)
    best: dict[str, float] = {}
    for item in recent:
        best[item.source_id] = max(best.get(item.source_id, 0.0), item.score)
    if not best:
        return 0.0
    quality = sum(best.values()) / len(best)
    if rule is None or corroborated(recent, now, rule):
        return round(quality, 3)
    return round(quality * len(best) / max(rule.sources, 1), 3)


def _within(evidence: Sequence[Observation], now: datetime, window: float) -> list[Observation]:
    start, end = now - timedelta(seconds=window), now + timedelta(seconds=window)
    return [item for item in evidence if start <= item.reported_at <= end]
