"""A proposal's concepts x one folded sentence -> the span where the sentence describes the proposal.

A concept describes a proposal by what it is rather than by a name: who commits, what the commitment is, and
what it is about ("European|Western|allies" + "troop*|soldiers|peacekeep*"; "NATO|alliance" + "membership|
accession"). A sentence holds the concept when every part occurs in it, in any order (or the order given, for an
`ordered` concept) and inflection, each within `near` words of the next and in one clause: no comma, colon,
dash or word such as "while", "after" or "says" between them. A part word of seven letters or more that the
sentence misspells is still found, with rapidfuzz. Who the report is for (Ukraine) is left to the proposal's
`required` groups, and the look-alikes to its `excluded` terms, as for aliases.

Takes folded text (see `monitor.text.fold_text`); touches no network, database, clock or file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import reduce
from itertools import product
from operator import or_

from monitor.text import alternatives_pattern, fold_text, speaker_joined, term_literals, unquoted

ACTOR = "@actor"
_MAX_HITS = 6  # hits per part looked at: enough for any sentence a feed publishes
_FUZZY_MIN = 7  # shorter words vary too little for a fuzzy match to mean a misspelling
_FUZZY_CUTOFF = 88.0
_TOKEN = re.compile(r"\w+")
# what separates two statements: parts on either side of one are not one concept
_SEPARATOR = re.compile(
    r"[,;:!?|]|\s-\s|\b(?:while|but|whereas|although|though|after|amid|when|because|since|as|says|said|tells|told|"
    r"ma|mais|aber|але|mentre|pendant|während|nachdem)\b"
)


@dataclass(frozen=True)
class ConceptHit:
    span: tuple[int, int]
    words: str  # the parts as the sentence says them, for the evidence ("UK troops")


@dataclass(frozen=True)
class _Part:
    pattern: re.Pattern[str]
    fuzzy: tuple[str, ...]  # long plain words a misspelling of which still counts
    literals: tuple[str, ...]  # text one of which every hit of the pattern contains
    misspelt: re.Pattern[str] | None = None  # the words that may misspell a `fuzzy` one (`_misspellings`)

    def search(self, text: str) -> re.Match[str] | None:
        """The pattern's first hit; most sentences hold none of its words, which a plain `in` tells far faster."""
        return self.pattern.search(text) if any(map(text.__contains__, self.literals)) else None


@dataclass(frozen=True)
class Concept:
    """One compiled concept; `keys` are word starts one of which any sentence holding it must contain."""

    parts: tuple[_Part, ...]
    near: int
    keys: tuple[frozenset[str], ...]  # per part that has them: word starts one of which the item must contain
    ordered: bool = False
    order: tuple[int, ...] = ()  # the parts, the ones least likely to occur first
    # whether a sentence's speaker may stand as a part ("Zelensky: giving up NATO ..."): not where a part names
    # who commits, since a speaker is seldom the one committing ("Hegseth: troops sent to Ukraine ...")
    speaker: bool = True

    KEY_LENGTH = 4  # misspellings keep a word's first four letters: the keys and the fuzzy match rely on it

    def may_hold(self, text: str) -> bool:
        """A cheap test: False means the folded text cannot hold the concept (a key part's words are absent)."""
        contains = text.__contains__
        return all(any(map(contains, keys)) for keys in self.keys)

    def find(self, text: str) -> ConceptHit | None:
        """The tightest place in the folded sentence where every part occurs, near each other."""
        missing = -1
        for i in self.order:  # a cheap search per part first: most sentences lack one
            if self.parts[i].search(text) is None:
                if missing >= 0 or not self.parts[i].fuzzy:
                    return None
                missing = i
        misspelt = _fuzzy_spans(self.parts[missing], text) if missing >= 0 else []  # not found as written
        if missing >= 0 and not misspelt:
            return None  # the parts found have a hit each: only this one can lack any
        spans = [
            [hit.span() for _, hit in zip(range(_MAX_HITS), part.pattern.finditer(text), strict=False)]
            if i != missing
            else misspelt
            for i, part in enumerate(self.parts)
        ]
        best: tuple[int, int] | None = None
        for choice in product(*spans):
            ordered = sorted(choice)
            if self.ordered and list(choice) != ordered:
                continue
            gaps = [text[a[1] : b[0]] for a, b in zip(ordered, ordered[1:], strict=False)]
            if any(a[1] > b[0] for a, b in zip(ordered, ordered[1:], strict=False)):
                continue  # two parts on the same words
            if all(len(gap.split()) <= self.near and not _SEPARATOR.search(gap) for gap in gaps):
                window = (ordered[0][0], max(end for _, end in ordered))
                if best is None or window[1] - window[0] < best[1] - best[0]:
                    best = window
        if best is None:
            return None
        return ConceptHit(best, text[best[0] : best[1]])


class ConceptIndex:
    """Which of many concepts a text may hold, from its words' starts alone: one pass over the starts the
    concepts use rather than one test per concept."""

    def __init__(self, concepts: Sequence[Concept]) -> None:
        self._concepts = list(concepts)
        # the keyed parts of all concepts as the bits of one int, a concept's from its shift up: one OR per start
        self._fields: list[tuple[int, int]] = []  # per concept (shift, its parts' bits); keyless: (shift, 0)
        by_start: dict[str, int] = {}  # word start -> the bits of the parts it is a key of
        shift = 0
        for concept in concepts:
            for k, keys in enumerate(concept.keys):
                for start in keys:
                    by_start[start] = by_start.get(start, 0) | 1 << (shift + k)
            self._fields.append((shift, (1 << len(concept.keys)) - 1))
            shift += len(concept.keys)
        self._by_start = by_start
        self._keys = frozenset(by_start)

    def possible(self, starts: set[str]) -> list[int]:
        """The positions of the concepts every keyed part of which has a word start (`KEY_LENGTH` letters)
        among `starts`."""
        found = reduce(or_, map(self._by_start.__getitem__, self._keys.intersection(starts)), 0)
        # in the configuration's order, not the set's (which varies with the process's hash seed): where two
        # concepts describe one sentence, the first is the one reported, on every run
        return [n for n, (shift, full) in enumerate(self._fields) if (found >> shift) & full == full]


def _fuzzy_spans(part: _Part, text: str) -> list[tuple[int, int]]:
    from rapidfuzz import fuzz, process  # loaded by the first sentence read: a poll of 304s reads none

    words = part.misspelt.finditer(text) if part.misspelt else ()
    spans = [
        w.span()
        for w in words
        if process.extractOne(w.group(), part.fuzzy, scorer=fuzz.ratio, score_cutoff=_FUZZY_CUTOFF)
    ]
    return spans[:_MAX_HITS]


def _misspellings(fuzzy: tuple[str, ...]) -> re.Pattern[str] | None:
    """The words of a text (`_TOKEN`s) that may misspell one of `fuzzy`: `_FUZZY_MIN` letters or more, with the same
    first `KEY_LENGTH`. One search finds them, rather than a loop over every word of the sentence."""
    # a start with a character no word holds (an apostrophe) starts no word
    starts = sorted({w[: Concept.KEY_LENGTH] for w in fuzzy if _TOKEN.fullmatch(w[: Concept.KEY_LENGTH])})
    rest = _FUZZY_MIN - Concept.KEY_LENGTH
    return re.compile(rf"(?<!\w)(?:{'|'.join(map(re.escape, starts))})\w{{{rest},}}") if starts else None


def compile_concept(parts: Sequence[str], near: int, actors: Sequence[str], ordered: bool = False) -> Concept:
    """A concept from its parts in term syntax; "@actor" in a part stands for any of `actors`."""
    compiled = []
    keys = []
    for group in parts:
        terms = [t.strip() for t in group.split("|") if t.strip()]
        if ACTOR in terms:
            terms = [t for t in terms if t != ACTOR] + list(actors)
        terms = [t for t in terms if fold_text(t).strip("*. ")]
        fuzzy = tuple(sorted({fold_text(t) for t in terms if _plain(t) and len(fold_text(t)) >= _FUZZY_MIN}))
        pattern = alternatives_pattern(terms)
        if pattern is None:
            raise ValueError(f"concept part {group!r} names no term")
        compiled.append(_Part(pattern, fuzzy, term_literals(terms), _misspellings(fuzzy)))
        starts = word_starts(terms)
        if ACTOR not in group and starts is not None:
            keys.append(frozenset(starts))
    order = sorted(range(len(parts)), key=lambda i: (ACTOR in parts[i], parts[i].count("|")))
    return Concept(tuple(compiled), near, tuple(keys), ordered, tuple(order), not any(ACTOR in p for p in parts))


def _plain(term: str) -> bool:
    return not any(c in term for c in "*.") and " " not in fold_text(term)


def word_starts(terms: Sequence[str]) -> set[str] | None:
    """The first `Concept.KEY_LENGTH` letters of each term's first word, one of which any text holding a term
    has among its words' starts; None if a term is too short to tell."""
    starts = set()
    for term in terms:
        first = fold_text(term.split("...")[0]).split()
        word = first[0] if first else ""
        stem = word.rstrip("*")
        if len(stem) < Concept.KEY_LENGTH and (word.endswith("*") or len(stem) < 2):
            return None
        starts.add(stem[: Concept.KEY_LENGTH])
    return starts


def concept_hits(
    text: str, concepts: Sequence[tuple[tuple[int, ...], Concept]], wanted: Callable[[int], bool]
) -> dict[int, ConceptHit]:
    """The first hit for each `wanted` owner of `concepts` (owner indexes, concept) in one folded sentence, read
    without its quotation marks, and with a leading speaker joined to the sentence for a concept that reads one."""
    hits: dict[int, ConceptHit] = {}
    if not concepts:
        return hits
    text = unquoted(text)
    joined = speaker_joined(text)
    for owners, concept in concepts:
        wanting = [i for i in owners if wanted(i) and i not in hits]
        if wanting and (found := concept.find(joined if concept.speaker else text)) is not None:
            hits.update(dict.fromkeys(wanting, found))
    return hits
