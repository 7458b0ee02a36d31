"""The sentences that mention one proposal -> its status on the ladder, and whether they report a withdrawal.

Takes `Passage`s: the clause(s) of a sentence that mention one proposal, folded the way `monitor.match` folds
text (lower case, no accents, plain quotes, hyphens between words as spaces), with the sentence they come from.
Returns a `StatusReading`. Pure: reads no configuration, file, clock, network or database.

Within one passage the cue rules apply in this order (English, Italian, French, German, Ukrainian, some Russian):
1. a negated signing ("has not signed", "refused to sign", "non ha firmato", "nicht unterzeichnet") is no
   signing and is masked out;
2. a modal signing ("will sign", "plans to sign", "ready to sign", "before signing", "firmera", "va signer",
   "wird ... unterzeichnen", "pidpyshe") is masked out and makes at least a proposal;
3. a signing ("signed", "signs", "inks", "struck a deal", "signed in 2024", "firmato", "signe",
   "unterzeichnet", "pidpysaly", "entered into force") -> signed;
4. a finite offer ("offered", "proposed", "pledges", "promised", "invited", "irreversible path"), unless negated
   or hypothetical ("could offer", "won't get an invite") -> proposal;
5. anything else -> discussion.
A question (a sentence ending in "?") reports discussion whatever its cues. Separately, an explicit withdrawal or
collapse ("withdrew from", "collapsed", "scrapped", "dropped the plan", "gekundigt") sets `withdrawn`, unless
the clause makes it conditional ("if", "would", "demands").
The passages' highest status wins. Cue levels are named discussion / proposal / signed; on a configured ladder
that lacks one of them a cue falls back to the next lower name the ladder has, else to the ladder's first rung.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from monitor.cue_phrases import (
    CONDITION,
    HEADLINE_OFFER,
    MODAL_SIGNING,
    NEGATED_SIGNING,
    NOT_OFFERING,
    OFFERING,
    QUESTION_END,
    SIGNATORY,
    SIGNING,
    WITHDRAWAL,
)
from monitor.status import DEFAULT_LADDER, DISCUSSION, PROPOSAL, SIGNED, Ladder
from monitor.text import unquoted

CUE_LEVELS = (DISCUSSION, PROPOSAL, SIGNED)  # the statuses wording can show; a ladder may have more


@dataclass(frozen=True)
class Passage:
    """The folded clause(s) that mention a proposal, and the sentence (as published) they come from."""

    text: str
    sentence: str


@dataclass(frozen=True)
class Cue:
    level: str
    cue: str
    withdrawn: bool


@dataclass(frozen=True)
class StatusReading:
    """What the passages say of a proposal's status (the highest status, with the sentence and cue behind it)
    and whether they report a withdrawal. Only a reading: `monitor.status.decide` decides what it changes."""

    status: str
    sentence: str
    cue: str
    withdrawn: bool


def _mask(text: str, pattern: re.Pattern[str]) -> tuple[str, str]:
    """The text with every hit blanked out, and the first hit ('' if none)."""
    first = ""
    pieces: list[str] = []
    last = 0
    for hit in pattern.finditer(text):
        first = first or hit.group(0)
        pieces.append(text[last : hit.start()])
        pieces.append(" " * (hit.end() - hit.start()))
        last = hit.end()
    if not pieces:
        return text, ""
    pieces.append(text[last:])
    return "".join(pieces), first


def _withdrawn(text: str) -> bool:
    for hit in WITHDRAWAL.finditer(text):
        if not CONDITION.search(text[max(0, hit.start() - 60) : hit.start()]):
            return True
    return False


def read_cue(text: str) -> Cue:
    """The status one folded clause gives a proposal (`discussion`, `proposal` or `signed`)."""
    text = unquoted(text)  # a quoted word reads as itself: "will 'be involved'"
    withdrawn = _withdrawn(text)
    masked, _negated = _mask(text, NEGATED_SIGNING)
    signatory = SIGNATORY.search(masked)  # "becomes latest country to sign": "to sign" told of one who has
    masked, modal = _mask(masked, MODAL_SIGNING)
    signed = signatory or SIGNING.search(masked)
    if signed:
        return Cue(SIGNED, signed.group(0), withdrawn)
    if modal:
        return Cue(PROPOSAL, modal, withdrawn)
    headline = HEADLINE_OFFER.search(masked)
    if headline:
        return Cue(PROPOSAL, headline.group(0), withdrawn)
    masked, _not_offered = _mask(masked, NOT_OFFERING)
    offered = OFFERING.search(masked)
    if offered:
        return Cue(PROPOSAL, offered.group(0), withdrawn)
    return Cue(DISCUSSION, "", withdrawn)


def ladder_status(level: str, ladder: Sequence[str]) -> str:
    """The ladder rung a cue level maps to: itself, else the next lower cue level on the ladder, else rung 0."""
    for candidate in reversed(CUE_LEVELS[: CUE_LEVELS.index(level) + 1]):
        if candidate in ladder:
            return candidate
    return ladder[0]


def read_status(passages: Sequence[Passage], ladder: Sequence[str] = DEFAULT_LADDER) -> StatusReading:
    """The highest status any passage gives, the sentence and cue it came from, and any withdrawal."""
    ranks = Ladder.of(ladder)
    best = StatusReading(ranks[0], passages[0].sentence if passages else "", "", False)
    best_rank = -1
    withdrawn = False
    for passage in passages:
        cue = read_cue(passage.text)
        if cue.level != DISCUSSION and (QUESTION_END.search(passage.sentence) or QUESTION_END.search(passage.text)):
            # a question asks ("Who would command the force?", "Troops for Ukraine? What Macron said")
            cue = Cue(DISCUSSION, "", cue.withdrawn)
        withdrawn = withdrawn or cue.withdrawn
        status = ladder_status(cue.level, ranks)
        rank = ranks.rank(status)
        if rank > best_rank:
            best, best_rank = StatusReading(status, passage.sentence, cue.cue, False), rank
    return StatusReading(best.status, best.sentence, best.cue, withdrawn)
