"""A proposal's configuration (actors, required groups, excluded terms) -> the patterns `monitor.match` tests.

Pure: compiled once per `Matcher`; reads no file, clock, network or database. What matching reads of a
proposal is copied out of the configuration's model first (`Terms.of`): plain data, so that a parser process
unpickles a matcher without loading pydantic and the configuration's models (a seventh of its start).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from monitor.concepts import word_starts
from monitor.text import alternatives_pattern, fold_text, same_clause, term_literals, term_pattern, terms_pattern

if TYPE_CHECKING:
    from monitor.config import ProposalConfig

ACTOR_GROUP = "@actor"
_NOT_PLACE = r"(?<!\bin )(?<!\bat )"  # "sign security pact in Italy"; but "what's in Canada's agreement" is Canada's


@dataclass(frozen=True)
class ConceptTerms:
    """A proposal's concept (`config.Concept`) as matching reads it."""

    parts: tuple[str, ...]
    near: int
    ordered: bool


@dataclass(frozen=True)
class Terms:
    """A proposal (`config.ProposalConfig`) as matching reads it: what names it, describes it, is required for it
    or explains a reading away, and the days it was current."""

    id: str
    aliases: tuple[str, ...]
    names: tuple[str, ...]
    concepts: tuple[ConceptTerms, ...]
    actors: tuple[str, ...]
    required: tuple[str, ...]
    excluded: tuple[str, ...]
    excluded_in_clause: tuple[str, ...]
    excluded_in_reading: tuple[str, ...]
    since: date | None
    until: date | None

    @classmethod
    def of(cls, proposal: ProposalConfig) -> Terms:
        return cls(
            proposal.id,
            tuple(proposal.aliases),
            tuple(proposal.names),
            tuple(ConceptTerms(tuple(c.parts), c.near, c.ordered) for c in proposal.concepts),
            tuple(proposal.actors),
            tuple(proposal.required),
            tuple(proposal.excluded),
            tuple(proposal.excluded_in_clause),
            tuple(proposal.excluded_in_reading),
            proposal.since,
            proposal.until,
        )


@dataclass(frozen=True)
class Rule:
    """One proposal's configuration compiled: its actors, required groups and excluded terms as patterns."""

    proposal: Terms
    needs_actor: bool
    actors: tuple[tuple[str, re.Pattern[str], str], ...]  # name, pattern, text any hit contains ("" if none)
    required: tuple[re.Pattern[str], ...]
    excluded: re.Pattern[str] | None
    clause_excluded: re.Pattern[str] | None
    any_actor: re.Pattern[str] | None = None  # all actors in one pattern: most sentences name none
    names: frozenset[str] = frozenset()  # aliases that identify the proposal alone
    required_starts: tuple[frozenset[str] | None, ...] = ()  # per required group: a cheap test before its pattern
    reading_excluded: re.Pattern[str] | None = None  # other parties' troops: `vetoed` only where they lead
    required_literals: tuple[tuple[str, ...], ...] = ()  # per required group: text one of its hits must hold

    def actor_hits(self, text: str) -> list[tuple[str, tuple[int, int]]]:
        if self.any_actor is None or self.any_actor.search(text) is None:
            return []
        # an actor is looked for only where its first letters are: most of a long list (59) are not there
        hits = [(name, pattern.finditer(text)) for name, pattern, key in self.actors if key in text]
        return [(name, hit.span()) for name, found in hits for hit in found]

    def vetoed(self, text: str, at: tuple[int, int] | None = None, name: bool = False) -> bool:
        """Whether an excluded term explains the reading at `at` away; for a name, and for a clause-scoped term
        ("training" beside "Britain pledges troops"), only a term in the reading's own clause counts; for a
        reading-scoped term (another party's troops), only one in its clause that stands before the reading or in
        it ("Russian forces deployed to Ukraine"), not after it ("any European contingent will be a target for
        Russian forces")."""
        if self.reading_excluded and at is not None:
            for term in self.reading_excluded.finditer(text):
                if term.start() < at[1] and same_clause(text, term.span(), at):
                    return True
        found = [(term, at if name else None) for term in self.excluded.finditer(text)] if self.excluded else []
        if self.clause_excluded and at is not None:  # a reading in another sentence is in none of its clauses
            found += [(term, at) for term in self.clause_excluded.finditer(text)]
        return any(span is None or same_clause(text, term.span(), span) for term, span in found)


def _frozen(starts: set[str] | None) -> frozenset[str] | None:
    return frozenset(starts) if starts is not None else None


def compile_rule(proposal: Terms) -> Rule:
    groups = [g for g in proposal.required if g.strip() != ACTOR_GROUP]
    names = [name for name in proposal.actors if fold_text(name)]  # not where a pact is signed ("in Italy")
    actors = tuple(
        (n, re.compile(f"{_NOT_PLACE}{term_pattern(n)}|{term_pattern(n)}(?='s\\b)"), min(word_starts([n]) or {""}))
        for n in names
    )
    compiled = [(p, g) for p, g in ((terms_pattern([g]), g) for g in groups) if p is not None]
    any_actor = alternatives_pattern([name for name, _pattern, _key in actors])  # word bounds tested once
    return Rule(
        proposal,
        len(groups) < len(proposal.required),
        actors,
        tuple(p for p, _ in compiled),
        terms_pattern(proposal.excluded),
        terms_pattern(proposal.excluded_in_clause),
        any_actor,
        frozenset(proposal.names),
        tuple(_frozen(word_starts(g.split("|"))) for _, g in compiled),
        terms_pattern(proposal.excluded_in_reading),
        tuple(term_literals(g.split("|")) for _, g in compiled),
    )
