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
- A confirmed upgrade above the current status raises the status (`raises_status`); the store applies it.

`Ladder` is the one place statuses are ranked: every module that compares two statuses asks it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol, overload

if TYPE_CHECKING:
    from monitor.config import CorroborationSettings

DISCUSSION, PROPOSAL, SIGNED = "discussion", "proposal", "signed"
DEFAULT_LADDER = (DISCUSSION, PROPOSAL, SIGNED)  # the ladder a configuration gets when it names none


class Ladder(Sequence[str]):
    """A proposal's statuses, lowest first, with their ranks (0 for the lowest)."""

    __slots__ = ("_ranks", "_statuses")

    def __init__(self, statuses: Iterable[str]) -> None:
        self._statuses = tuple(statuses)
        if not self._statuses:
            raise ValueError("a ladder needs at least one status")
        self._ranks = {status: index for index, status in enumerate(self._statuses)}
        if len(self._ranks) != len(self._statuses):
            raise ValueError("a ladder lists a status twice")

    @classmethod
    def of(cls, statuses: Sequence[str]) -> Ladder:
        """`statuses` as a Ladder (itself when it already is one)."""
        return statuses if isinstance(statuses, Ladder) else cls(statuses)

    def rank(self, status: str, default: int = -1) -> int:
        """The status's place on the ladder; `default` for a status not on it."""
        return self._ranks.get(status, default)

    def above(self, status: str, other: str) -> bool:
        """Whether `status` is higher than `other` (a status off the ladder is below every rung)."""
        return self.rank(status) > self.rank(other)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[str, ...]: ...

    def __getitem__(self, index: int | slice) -> str | tuple[str, ...]:
        return self._statuses[index]

    def __len__(self) -> int:
        return len(self._statuses)

    def __iter__(self) -> Iterator[str]:
        return iter(self._statuses)

    def __contains__(self, status: object) -> bool:
        return status in self._ranks

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ladder) and other._statuses == self._statuses

    def __hash__(self) -> int:
        return hash(self._statuses)

    def __repr__(self) -> str:
        return f"Ladder({list(self._statuses)!r})"


class Change(Protocol):
    """What `raises_status` reads of a status change (a `monitor.store.models.StatusChange` is one)."""

    @property
    def kind(self) -> str: ...

    @property
    def state(self) -> str: ...

    @property
    def to_status(self) -> str: ...


def raises_status(change: Change, current: str, ladder: Sequence[str]) -> bool:
    """Whether `change` moves a proposal at `current` up: a confirmed upgrade to a status above it.

    The rule for machine-made changes; an analyst's decision (kind `analyst`) sets the status, up or down."""
    confirmed_upgrade = change.kind == "upgrade" and change.state == "confirmed"
    return confirmed_upgrade and Ladder.of(ladder).above(change.to_status, current)


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
    ranks = Ladder.of(ladder)
    current, reported = ranks.rank(state.status), ranks.rank(observation.status, default=0)
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
