"""An item's title and summary x the tracked proposals -> `Match`es with evidence and a status.

Takes the raw text a feed published (HTML, entities and mojibake allowed) and the `Proposal`s of feeds.yaml;
returns one `Match` per proposal the text reports on. Pure: a `Matcher` is built once from the proposals
(everything is compiled then) and afterwards touches no network, database, clock or file.

How feeds.yaml describes a proposal:
- aliases   phrases naming it or its defining words, in any language. Found per sentence with rapidfuzz
            (best partial alignment, widened to whole words and re-scored), so inflection and spelling
            variants count; numbers must agree exactly.
- names     aliases that identify it alone ("coalition of the willing"): required groups and actors are not
            asked for, and only an excluded term in the name's own clause explains it away.
- concepts  the proposal described by what it is, for reports that use no alias: parts (who commits, what
            the commitment is) that must all occur in one clause, near each other (`monitor.concepts`).
            A concept hit scores `CONCEPT_SCORE`, below any named alias.
- actors    its parties ("Germany", "Scholz"); reported in the match.
- required  groups of alternatives, "Ukrain*|Kyiv|Zelensk*"; every group must occur in the window (the
            sentence plus the headline). The group "@actor" means one of the actors must, and then an alias
            in the headline may combine with an actor in a summary sentence or the other way round.
- excluded  terms that explain a reading away ("nuclear war", "without ... membership"); they narrow, not veto:
            one drops the readings of its sentence (and of the headline where one rests on it);
            `excluded_in_clause` terms ("training") only the reading in their clause, `excluded_in_reading` terms
            ("Russian forces") only a reading in their clause that they stand before or in. Term syntax:
            `monitor.text`.

Status comes from `monitor.cues`, read in the clause that mentions the proposal (the actor's clause for
"@actor" proposals), highest on the ladder wins. `Match.score` is 0..1: the similarity of the best alias hit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from monitor.aliases import PREFIX, Alias, Hit, anchor_of, better, find, make_alias, tokens
from monitor.concepts import Concept, ConceptIndex, compile_concept, concept_hits
from monitor.rules import ACTOR_GROUP, Rule, Terms, compile_rule
from monitor.status import DEFAULT_LADDER, Ladder
from monitor.text import (
    Occurrences,
    alternatives_pattern,
    focus,
    fold_text,
    headline_text,
    in_topic,
    normalize_text,
    same_clause,
    speaker_end,
    split_sentences,
    strip_marks,
)
from monitor.windows import before_since, current, names_window, years_named

if TYPE_CHECKING:
    from monitor.config import ProposalConfig
    from monitor.cues import Passage

__all__ = ["MATCHER_VERSION", "Match", "Matcher", "fold_text", "normalize_text", "split_sentences"]

MATCHER_VERSION = "2026.31"
MEMO_SIZE = 4096  # readings remembered by one matcher: (title, summary, day) -> matches
CONCEPT_SCORE = 0.85  # a sentence that describes a proposal without naming it: sure, but less than a name


@dataclass(frozen=True)
class Match:
    """One proposal an item reports on: how sure, on what words, and with what status."""

    proposal: str
    score: float
    alias: str
    actors: tuple[str, ...]
    sentences: tuple[str, ...]
    status: str
    status_sentence: str
    withdrawn: bool = False
    matcher_version: str = MATCHER_VERSION
    years: tuple[int, ...] = ()  # the years its sentences name ("signed in 2024")


def _names(pattern: re.Pattern[str] | None, text: str) -> bool:
    """Whether the text names any of the parties `pattern` finds (None: there are none to find)."""
    return pattern is not None and pattern.search(text) is not None


# ---------------------------------------------------------------- compiled proposal rules
_REFERENCE = re.compile(
    strip_marks(
        r"\b(?:agreement|deal|pact|accord|treaty|guarantee|commitment|backstop|partnership|accordo|patto|"
        r"garanzi|abkommen|vereinbarung|garanti|zusage|угод|гаранті|зобов'яз|договір)"
    )
)
# a summary sentence whose subject is the headline's party, named again only as a pronoun or by office
_HEADLINE_PARTY = re.compile(
    r"(?:he|she|they|the (?:two )?(?:prime minister|president|chancellor|premier|leaders?|sides|countries|"
    r"governments?))\s+(?:\w+\s+){0,2}?"
    r"(?:signed|inked|sealed|concluded|agreed|offered|pledged|proposed|promised|will|would|is|are|has|have)\b"
)


_AliasesByAnchor = list[tuple[str, list[tuple[Alias, tuple[int, ...]]]]]


class Matcher:
    """Matches items against a fixed set of proposals; build once, call `match` for every item. The rules are
    compiled on the first `match`: a poll whose feeds all answer 304 never needs them."""

    def __init__(
        self, proposals: Sequence[ProposalConfig], ladder: Sequence[str] = DEFAULT_LADDER, memo: int = MEMO_SIZE
    ) -> None:
        self.ladder = Ladder.of(ladder)
        self.memo_size = memo  # readings remembered, 0 for none
        self._proposals = tuple(Terms.of(p) for p in proposals)  # plain data: pickles without pydantic
        self._window = {p.id: (p.since, p.until) for p in self._proposals}
        self.compiled = False  # whether the rules have been compiled (by a first `match`)
        self._memo: dict[tuple[str, str, date | None], tuple[Match, ...]] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Pickled for a parser process without the readings remembered here (that process keeps its own)."""
        return {**self.__dict__, "_memo": {}}

    def compile(self) -> None:
        """Compile the rules now rather than on the first `match` (a no-op once they are)."""
        if not self.compiled:
            self._compile()

    def _compile(self) -> None:
        """Builds every part in locals and stores each whole: a thread that compiles at the same time as another
        only replaces finished parts with equal ones, and a reader never sees a part half built."""
        proposals = self._proposals
        rules = tuple(compile_rule(p) for p in proposals)
        aliases: dict[str, Alias] = {}
        owners: dict[str, list[int]] = {}
        for index, proposal in enumerate(proposals):
            for shown in [*proposal.aliases, *proposal.names]:
                text = fold_text(shown)
                if not tokens(text):
                    continue
                aliases.setdefault(text, make_alias(text, shown))
                if index not in owners.setdefault(text, []):
                    owners[text].append(index)
        by_anchor: dict[str, list[tuple[Alias, tuple[int, ...]]]] = {}
        for text, alias in aliases.items():
            by_anchor.setdefault(anchor_of(text), []).append((alias, tuple(owners[text])))
        # proposals that share a concept (the bilateral agreements do) share one compiled copy, read once
        compiled: dict[tuple[object, ...], tuple[list[int], Concept]] = {}
        for index, proposal in enumerate(proposals):
            for c in proposal.concepts:
                actors = tuple(proposal.actors) if any(ACTOR_GROUP in part for part in c.parts) else ()
                key = (tuple(c.parts), c.near, c.ordered, actors)
                if key not in compiled:
                    compiled[key] = ([], compile_concept(c.parts, c.near, actors, c.ordered))
                compiled[key][0].append(index)
        concepts = [(tuple(owners), concept) for owners, concept in compiled.values()]
        # a word start that every concept-bearing proposal needs one of (Ukraine's names): a cheap first test
        gates = [rules[i].required_starts for owners, _ in concepts for i in owners]
        gate = None
        if gates and all(g and g[0] is not None for g in gates):
            gate = frozenset().union(*(g[0] or () for g in gates))
        # the parties of the proposals that share a proposal's aliases (the bilateral agreements): a sentence that
        # names one of them ("the pact Washington signed") does not take its party from the headline
        family: dict[tuple[str, ...], list[int]] = {}
        for index, rule in enumerate(rules):
            if rule.needs_actor:
                family.setdefault(tuple(rule.proposal.aliases), []).append(index)
        rivals = [
            alternatives_pattern(
                [n for j in family.get(tuple(rule.proposal.aliases), []) if j != index for n, *_ in rules[j].actors]
            )
            for index, rule in enumerate(rules)
        ]
        self._rules, self._by_anchor, self._anchors = rules, by_anchor, frozenset(by_anchor)
        self._rivals = rivals
        self._concepts, self._concept_index, self._concept_gate = concepts, ConceptIndex([c for _, c in concepts]), gate
        self.compiled = True  # last: until then every match compiles (and stores) its own complete parts

    def _candidates(self, text: str) -> tuple[_AliasesByAnchor, list[tuple[tuple[int, ...], Concept]]]:
        """The aliases whose telling word and word starts all occur somewhere in the folded item, and the
        concepts one of whose key word starts does."""
        starts = set(map(PREFIX, tokens(text)))
        gate = self._concept_gate
        concepts = (
            [self._concepts[n] for n in self._concept_index.possible(starts)]
            if gate is None or not gate.isdisjoint(starts)
            else []
        )
        if concepts:  # a concept is read only where the item names what its proposal needs (Ukraine)
            present: dict[str, bool] = {}

            def occurs(pattern: re.Pattern[str], keys: frozenset[str] | None, words: tuple[str, ...]) -> bool:
                if pattern.pattern not in present:  # word starts, words, pattern: each far cheaper than the next
                    maybe = (keys is None or not keys.isdisjoint(starts)) and any(map(text.__contains__, words))
                    present[pattern.pattern] = maybe and pattern.search(text) is not None
                return present[pattern.pattern]

            rules = self._rules  # each proposal's groups tested once, not once per concept it owns
            held = {
                i: all(map(occurs, rules[i].required, rules[i].required_starts, rules[i].required_literals))
                for o, _ in concepts
                for i in o
            }
            concepts = [(tuple(needed), c) for owners, c in concepts if (needed := [i for i in owners if held[i]])]
        anchors = starts & self._anchors
        if not anchors:
            return [], concepts
        short = {start[:3] for start in starts}  # a misspelt word still starts with its first three letters
        aliases = [
            (anchor, entries)
            for anchor in anchors
            if (entries := [e for e in self._by_anchor[anchor] if e[0].prefixes <= short])
        ]
        return aliases, concepts

    def _hits(
        self,
        text: str,
        aliases: Sequence[tuple[Alias, tuple[int, ...]]],
        concepts: Sequence[tuple[tuple[int, ...], Concept]],
    ) -> dict[int, Hit]:
        """Best hit per proposal index in one folded sentence: an alias, else a concept."""
        best: dict[int, Hit] = {}
        for alias, owners in aliases:
            hit = find(alias, text)
            if hit is None:
                continue
            for index in owners:
                if index not in best or better(hit, best[index], self._rules[index].names):
                    best[index] = hit
        if concepts:  # most sentences have none
            best.update(Matcher._concept_hits(text, concepts, lambda index: index not in best))
        return best

    @staticmethod
    def _concept_hits(
        text: str, concepts: Sequence[tuple[tuple[int, ...], Concept]], wanted: Callable[[int], bool]
    ) -> dict[int, Hit]:
        """A concept hit per `wanted` proposal index in one folded sentence."""
        return {i: Hit(CONCEPT_SCORE, f.words, f.span) for i, f in concept_hits(text, concepts, wanted).items()}

    def match(self, title: str, summary: str, published: date | None = None) -> list[Match]:
        """Every proposal the item reports on, best score first; with the day it was `published`, none that was
        first reported (its `since`) after that day or last reported in general words (its `until`) before it.

        A reading depends on these three alone: the last `memo` are remembered (a wire story in several feeds)."""
        if not self.memo_size:
            return self._read(title, summary, published)
        key = (title, summary, published)
        found = self._memo.get(key)
        if found is None:
            found = tuple(self._read(title, summary, published))
            if len(self._memo) >= self.memo_size:
                self._memo = {}  # a new dict rather than clear(): a thread reading the old one never sees it change
            self._memo[key] = found
        return list(found)

    def _read(self, title: str, summary: str, published: date | None) -> list[Match]:
        self.compile()
        title_text, summary_text = headline_text(title), normalize_text(summary)
        aliases, concepts = self._candidates(fold_text(f"{title_text}\n{summary_text}"))
        if not aliases and not concepts:
            return []  # the common case, decided before any sentence is split
        sentences = [title_text, *split_sentences(summary_text)]
        folded = [line.strip() for line in fold_text("\n".join(sentences)).split("\n")]
        if len(folded) > 1 and folded[1].startswith(folded[0]) and folded[0]:
            folded[1] = folded[1][len(folded[0]) :].strip()  # feeds that repeat the headline in the summary
        where = Occurrences(folded)
        sentence_aliases: list[list[tuple[Alias, tuple[int, ...]]]] = [[] for _ in folded]
        for anchor, entries in aliases:
            for i in where.sentences(anchor):
                sentence_aliases[i].extend(entries)
        sentence_concepts: list[list[tuple[tuple[int, ...], Concept]]] = [[] for _ in folded]
        for owners, concept in concepts:
            for i in where.holding(concept.keys):
                sentence_concepts[i].append((owners, concept))
        hits = [self._hits(text, a, c) for text, a, c in zip(folded, sentence_aliases, sentence_concepts, strict=True)]
        found = []
        for index in sorted(set().union(*hits)):
            since, _until = self._window[self._rules[index].proposal.id]
            if not current((since, None), published):
                continue  # "Western troops to Ukraine" in early 2024 is not the force proposed after a ceasefire
            match = self._match_rule(index, self._rules[index], sentences, folded, hits, sentence_concepts)
            if match is not None and self._in_window(match, published):
                found.append(match)
        return sorted(found, key=lambda m: (-m.score, m.proposal))

    @staticmethod
    def _readings(
        index: int,
        rule: Rule,
        folded: list[str],
        hits: list[dict[int, Hit]],
        concepts: list[list[tuple[tuple[int, ...], Concept]]],
    ) -> Iterator[tuple[int, str, Hit | None]]:
        """Each sentence with its hit for the proposal; where a named alias's reading may fail its party's clause
        ("US weighs role in Ukraine guarantees as Europe pushes for backstop"), then the sentence's concept
        reading, which `_match_rule` takes only if the first did not count."""
        for i, text in enumerate(folded):
            own_hit = hits[i].get(index)
            yield i, text, own_hit
            if own_hit is not None and rule.needs_actor and own_hit.score > CONCEPT_SCORE and concepts[i]:
                alternate = Matcher._concept_hits(text, concepts[i], index.__eq__).get(index)
                if alternate is not None:
                    yield i, text, alternate

    def arisen(self, matches: Sequence[Match], published: date | None) -> list[Match]:
        """What a dated `match` gives of an undated one's matches: those of proposals current on `published`
        (arisen by then, and not yet past their `until`)."""
        return [m for m in matches if self._in_window(m, published)]

    def _in_window(self, match: Match, published: date | None) -> bool:
        """Whether `published` falls in the proposal's window, or the reading names a year of it: after its
        `until` "Ukraine's 2024 security accord with the US" still speaks of the 2024 accord."""
        window = self._window[match.proposal]
        return current(window, published) or names_window(window, match.years)

    def _match_rule(
        self,
        index: int,
        rule: Rule,
        sentences: list[str],
        folded: list[str],
        hits: list[dict[int, Hit]],
        concepts: list[list[tuple[tuple[int, ...], Concept]]],
    ) -> Match | None:
        from monitor.cues import Passage, read_status  # the cue phrases load with the first reading, not the module

        title_actors = rule.actor_hits(folded[0]) if rule.needs_actor else []
        used: set[int] = set()
        actors: set[str] = set()
        passages: list[Passage] = []
        best: Hit | None = None
        for i, text, own_hit in self._readings(index, rule, folded, hits, concepts):
            hit = own_hit or (hits[0].get(index) if i and rule.needs_actor else None)
            if hit is None or not text or i in used:
                continue
            if not (own_hit or title_actors or _REFERENCE.search(text)) and _names(self._rivals[index], folded[0]):
                continue  # "Ukraine, Spain sign security pact || Zelensky also met Scholz": the pact is Spain's
            if own_hit and before_since(text, rule.proposal.since):
                continue
            named = own_hit is not None and own_hit.alias in rule.names
            own_actors = rule.actor_hits(text) if rule.needs_actor else []
            if own_hit and own_actors:  # a party named in another clause is not party to this reading
                topic = in_topic(text, own_hit.span)  # "Security guarantees: the US is ready" is about them all
                speaker = speaker_end(text) if own_hit.score > CONCEPT_SCORE else 0  # "Rubio: guarantees are ..."
                own_actors = [
                    (n, span)
                    for n, span in own_actors
                    if topic or span[1] <= speaker or same_clause(text, span, own_hit.span)
                ]
            borrows = i and title_actors and own_hit and not _names(self._rivals[index], text)
            if rule.needs_actor and not (named or own_actors or borrows):
                continue
            rests_on = {i} if own_hit and (named or own_actors or not rule.needs_actor) else {i, 0}
            window = text if i == 0 else f"{folded[0]} | {text}"
            if not named and not all(p.search(window) for p in rule.required):
                continue
            if i and not named and not all(p.search(text) for p in rule.required):
                rests_on.add(0)  # it takes Ukraine from the headline, and with it the headline's exclusions
            if any(rule.vetoed(folded[j], own_hit.span if own_hit and j == i else None, named) for j in rests_on):
                continue
            used |= rests_on
            best = hit if best is None or hit.score > best.score else best
            if not rule.needs_actor or named:  # a topic that heads the sentence is what all of it says
                passages.append(Passage(text if in_topic(text, hit.span) else focus(text, [hit.span]), sentences[i]))
            elif own_actors and (own_hit or _REFERENCE.search(text)):
                spans = [span for _, span in own_actors]  # a party in a heading topic ("Italy-Ukraine: ...") reads all
                topic = any(in_topic(text, span) for span in spans)
                passages.append(Passage(text if topic else focus(text, spans), sentences[i]))
                if i and title_actors and _REFERENCE.search(folded[0]) and not rule.vetoed(folded[0], None, named):
                    # "Biden, Zelensky sign deal || The security agreement commits the US to ...": the act is above
                    passages.append(Passage(focus(folded[0], [span for _, span in title_actors]), sentences[0]))
                    used.add(0)
            elif own_actors:  # the headline names the agreement, this sentence only a party: read the headline
                passages.append(Passage(focus(folded[0], [hits[0][index].span]), sentences[0]))
            elif own_hit and _HEADLINE_PARTY.match(text):  # "He signed an agreement ...": the headline's party
                passages.append(Passage(focus(text, [own_hit.span]), sentences[i]))
            else:
                passages.append(Passage(focus(folded[0], [span for _, span in title_actors]), sentences[0]))
        if best is None:
            return None
        for j in used:
            actors.update(name for name, _ in rule.actor_hits(folded[j]))
        reading = read_status(passages, self.ladder)
        return Match(
            proposal=rule.proposal.id,
            score=round(best.score, 3),
            alias=best.alias,
            actors=tuple(sorted(actors)),
            sentences=tuple(sentences[j] for j in sorted(used)),
            status=reading.status,
            status_sentence=reading.sentence,
            withdrawn=reading.withdrawn,
            years=tuple(sorted({year for j in used for year in years_named(folded[j])})),
        )
