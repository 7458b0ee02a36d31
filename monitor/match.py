"""An item's title and summary x the tracked proposals -> `Match`es with evidence and a status.

Takes the raw text a feed published (HTML, entities and mojibake allowed) and the `Proposal`s of feeds.yaml;
returns one `Match` per proposal the text reports on. Pure: a `Matcher` is built once from the proposals
(everything is compiled then) and afterwards touches no network, database, clock or file.

How feeds.yaml describes a proposal:
- aliases   phrases naming it or its defining words, in any language. Found per sentence with rapidfuzz
            (best partial alignment, widened to whole words and re-scored), so inflection and spelling
            variants count; numbers must agree exactly.
- actors    its parties ("Germany", "Scholz"); reported in the match.
- required  groups of alternatives, "Ukrain*|Kyiv|Zelensk*"; every group must occur in the window (the
            sentence plus the headline). The group "@actor" means one of the actors must, and then an alias
            in the headline may combine with an actor in a summary sentence or the other way round.
- excluded  terms that veto any sentence the evidence would rest on ("training", "without ... membership").
Term syntax (actors, required, excluded): case, accents, quotes and dashes are folded; words match whole, a word
of four letters or more may take a two-letter ending (German -> Germany), "*" takes any ending and " ... "
allows up to five words in between.

Status comes from `monitor.cues`, read in the clause that mentions the proposal (the actor's clause for
"@actor" proposals), highest on the ladder wins. `Match.score` is 0..1: the similarity of the best alias hit.
"""

from __future__ import annotations

import html
import operator
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz

from monitor.config import Proposal
from monitor.cues import DEFAULT_LADDER, Passage, decide_status, strip_marks

MATCHER_VERSION = "2026.1"
ACTOR_GROUP = "@actor"


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


# ---------------------------------------------------------------- text normalisation
_COMMENT = re.compile(r"<!--.*?(?:-->|$)|<(script|style)\b.*?(?:</\1\s*>|$)", re.S | re.I)
_TAG = re.compile(r"<[^<>]*>")
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u2060\ufeff]")
_MOJIBAKE = re.compile(r"[^\x00-\x7f]{2,}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_PUNCT = {
    **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u00b4\u02bc`", "'"),
    **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb", '"'),
    **dict.fromkeys("\u2010\u2011\u2012\u2212", "-"),
    **dict.fromkeys("\u2013\u2014\u2015", " - "),
    **dict.fromkeys("<>", " "),
}
_PUNCT_CHARS = re.compile("[" + re.escape("".join(_PUNCT)) + "]")


def _unmojibake(run: re.Match[str]) -> str:
    """UTF-8 that was decoded as Mac Roman or Windows-1252 (‚Äô, â€™), decoded back; other text unchanged."""
    text = run.group(0)
    for codec in ("mac_roman", "cp1252"):
        try:
            return text.encode(codec).decode("utf-8")
        except UnicodeError:
            continue
    return text


def _normalize_once(text: str) -> str:
    if "<" in text:
        text = _TAG.sub(" ", _COMMENT.sub(" ", text))
    if not text.isascii():
        text = _INVISIBLE.sub("", text)
    if "&" in text:
        text = html.unescape(text)
    if not text.isascii():
        text = _MOJIBAKE.sub(_unmojibake, text)
    if not text.isascii() or "`" in text or "<" in text or ">" in text:
        text = _PUNCT_CHARS.sub(lambda c: _PUNCT[c.group()], text)
    if not text.isprintable():
        text = _CONTROL.sub(" ", text)
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return " ".join(text.split())


def normalize_text(text: str) -> str:
    """Feed text -> plain readable text: no tags, entities or mojibake; plain quotes and dashes; one space."""
    for _ in range(50):
        cleaner = _normalize_once(text)
        if cleaner == text or (cleaner.isascii() and "&" not in cleaner):
            return cleaner  # plain ASCII without entities cannot change again
        text = cleaner
    return text


# Each pattern starts with a literal character, which Python's re finds far faster than a leading \b.
_US = re.compile(r"U(?<!\wU)(?:\.\s?S\.(?:\s?A\.)?|SA?(?!\w))")
_UK = re.compile(r"U(?<!\wU)\.\s?K\.")
_HYPHEN = re.compile(r"-(?<=\w-)(?=\w)")


_SPACES = re.compile(r"[^\S\n]+")


def fold_text(text: str) -> str:
    """Normalised text -> the form matching works on: case, accents and hyphens folded, US spelled out.

    Line breaks are kept, so that many sentences can be folded in one call."""
    if "U" in text:
        text = _UK.sub("UK", _US.sub("United States", text))
    text = strip_marks(strip_marks(text).casefold()).casefold()
    if "-" in text:
        text = _HYPHEN.sub(" ", text)
    if "  " in text or not text.replace("\n", " ").isprintable():
        text = _SPACES.sub(" ", text)
    return text.strip(" ")


_SENTENCE_BREAK = re.compile(r"([.!?][\"')\]]*)\s+(?=[\"'(\[]?[A-Z\u0400-\u04ff0-9])")
_ABBREVIATION = re.compile(r"(?:^|\W)(?:[A-Z]|Mr|Mrs|Ms|Dr|St|Gen|Sen|Rep|Gov|Lt|Col|Prof|No|vs|etc)\.$")


def split_sentences(text: str) -> list[str]:
    """Normalised text -> sentences (not split after initials such as U.S. or titles such as Mr.)."""
    parts = _SENTENCE_BREAK.split(text)  # text, end punctuation, text, ...
    pieces = [parts[i] + (parts[i + 1] if i + 1 < len(parts) else "") for i in range(0, len(parts), 2)]
    sentences: list[str] = []
    for piece in pieces:
        if sentences and _ABBREVIATION.search(sentences[-1][-6:]):
            sentences[-1] = f"{sentences[-1]} {piece}"
        elif piece.strip():
            sentences.append(piece.strip())
    return sentences


_CLAUSE_BREAK = re.compile(
    r";|:\s|\s-\s|,\s+(?=(?:and|but|while|whereas|although|though|yet|ma|mais|aber|але)\b)"
    r"|\s(?=(?:but|while|whereas|ma|mais|aber|але)\s)"
)


def _focus(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """The clauses of a folded sentence that overlap any of the spans."""
    bounds = [0, *(b for hit in _CLAUSE_BREAK.finditer(text) for b in (hit.start(), hit.end())), len(text)]
    clauses = [(bounds[i], bounds[i + 1]) for i in range(0, len(bounds), 2)]
    chosen = [text[s:e] for s, e in clauses if any(a < e and b > s for a, b in spans)]
    return " ".join(chosen) or text


# ---------------------------------------------------------------- compiled proposal rules
_DIGITS = re.compile(r"\d+")
_REFERENCE = re.compile(
    strip_marks(
        r"\b(?:agreement|deal|pact|accord|treaty|guarantee|commitment|backstop|partnership|accordo|patto|"
        r"garanzi|abkommen|vereinbarung|garanti|zusage|угод|гаранті|зобов'яз|договір)"
    )
)
_WORD = re.compile(r"\w+")
_TOKEN_BREAKS = str.maketrans(dict.fromkeys("'\"()[]{},.;:!?-/|", " "))
_COMMON = frozenset(
    "ukraine ukraine's ukrainian ukraina ucraina ukrainian security united states european europe year years "
    "the of to in for on with and a an de la le di del der die das".split()
)
_PREFIX = operator.itemgetter(slice(0, 4))


def _term_pattern(term: str) -> str:
    parts = []
    for chunk in term.split("..."):
        words = fold_text(chunk).split()
        if words:
            parts.append(r"\W+".join(_word_pattern(w) for w in words))
    return r"(?<!\w)" + r"(?:\W+\w+){0,5}?\W+".join(parts) + r"(?!\w)"


def _word_pattern(word: str) -> str:
    if word.endswith("*"):
        return re.escape(word.rstrip("*")) + r"\w*"
    return re.escape(word) + (r"\w{0,2}" if len(word) >= 4 else "")


def _terms(terms: Sequence[str]) -> re.Pattern[str] | None:
    alternatives = [_term_pattern(t) for group in terms for t in group.split("|") if fold_text(t).strip("*. ")]
    return re.compile("|".join(alternatives)) if alternatives else None


@dataclass(frozen=True)
class _Alias:
    text: str
    shown: str
    cutoff: float
    digits: tuple[str, ...]
    spaces: int
    anchor: str  # the start of its most telling word
    prefixes: tuple[str, ...]  # first three letters of its other words: a cheap test before the fuzzy one


@dataclass(frozen=True)
class _Hit:
    score: float
    alias: str
    span: tuple[int, int]


@dataclass(frozen=True)
class _Rule:
    proposal: Proposal
    needs_actor: bool
    actors: tuple[tuple[str, re.Pattern[str]], ...]
    required: tuple[re.Pattern[str], ...]
    excluded: re.Pattern[str] | None
    any_actor: re.Pattern[str] | None = None  # all actors in one pattern: most sentences name none

    def actor_hits(self, text: str) -> list[tuple[str, tuple[int, int]]]:
        if self.any_actor is None or self.any_actor.search(text) is None:
            return []
        return [(name, hit.span()) for name, pattern in self.actors for hit in pattern.finditer(text)]

    def vetoed(self, text: str) -> bool:
        return self.excluded is not None and self.excluded.search(text) is not None


def _alias(text: str, shown: str) -> _Alias:
    cutoff = 100.0 if len(text) <= 6 else 92.0 if len(text) <= 12 else 88.0
    anchor = _anchor(text)
    prefixes = tuple(sorted({w[:3] for w in _tokens(text)} - {anchor[:3]}))
    return _Alias(text, shown, cutoff, tuple(_DIGITS.findall(text)), text.count(" "), anchor, prefixes)


def _tokens(text: str) -> list[str]:
    return text.translate(_TOKEN_BREAKS).split()


def _anchor(alias: str) -> str:
    """The start of the alias's most telling word: the longest one that is not common in this news."""
    words = _tokens(alias)
    telling = [w for w in words if w not in _COMMON] or words
    return max(telling, key=len)[:4]


def _find(alias: _Alias, text: str) -> _Hit | None:
    """The alias in the folded text as whole words, exactly or fuzzily (at or above its cutoff)."""
    start = text.find(alias.text)
    while start >= 0:
        end = start + len(alias.text)
        if (start == 0 or not text[start - 1].isalnum()) and (end == len(text) or not text[end].isalnum()):
            return _Hit(1.0, alias.shown, (start, end))
        start = text.find(alias.text, start + 1)
    if alias.cutoff >= 100 or len(alias.text) > len(text):
        return None
    found = fuzz.partial_ratio_alignment(alias.text, text, score_cutoff=alias.cutoff)
    if found is None:
        return None
    start, end = found.dest_start, found.dest_end
    while start > 0 and text[start - 1].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum():
        end += 1
    piece = text[start:end].strip()
    score = fuzz.ratio(alias.text, piece)
    if score < alias.cutoff or tuple(_DIGITS.findall(piece)) != alias.digits or piece.count(" ") != alias.spaces:
        return None
    return _Hit(score / 100, alias.shown, (start, end))


class Matcher:
    """Matches items against a fixed set of proposals; build once, call `match` for every item."""

    def __init__(self, proposals: Sequence[Proposal], ladder: Sequence[str] = DEFAULT_LADDER) -> None:
        self.ladder = tuple(ladder)
        self._rules = tuple(self._rule(p) for p in proposals)
        aliases: dict[str, _Alias] = {}
        owners: dict[str, list[int]] = {}
        for index, proposal in enumerate(proposals):
            for shown in proposal.aliases:
                text = fold_text(shown)
                if not _tokens(text):
                    continue
                aliases.setdefault(text, _alias(text, shown))
                if index not in owners.setdefault(text, []):
                    owners[text].append(index)
        self._by_anchor: dict[str, list[tuple[_Alias, tuple[int, ...]]]] = {}
        for text, alias in aliases.items():
            self._by_anchor.setdefault(_anchor(text), []).append((alias, tuple(owners[text])))
        self._anchors = frozenset(self._by_anchor)

    @staticmethod
    def _rule(proposal: Proposal) -> _Rule:
        groups = [g for g in proposal.required if g.strip() != ACTOR_GROUP]
        actors = tuple((name, re.compile(_term_pattern(name))) for name in proposal.actors if fold_text(name))
        required = tuple(p for p in (_terms([g]) for g in groups) if p is not None)
        any_actor = re.compile("|".join(f"(?:{pattern.pattern})" for _name, pattern in actors)) if actors else None
        return _Rule(
            proposal, len(groups) < len(proposal.required), actors, required, _terms(proposal.excluded), any_actor
        )

    def _candidates(self, text: str) -> list[tuple[_Alias, tuple[int, ...]]]:
        """The aliases whose telling word and word starts all occur somewhere in the folded item."""
        anchors = set(map(_PREFIX, _tokens(text))) & self._anchors
        if not anchors:
            return []
        contains = text.__contains__
        return [entry for a in anchors for entry in self._by_anchor[a] if all(map(contains, entry[0].prefixes))]

    @staticmethod
    def _alias_hits(text: str, candidates: Sequence[tuple[_Alias, tuple[int, ...]]]) -> dict[int, _Hit]:
        """Best alias hit per proposal index in one folded sentence."""
        best: dict[int, _Hit] = {}
        for alias, owners in candidates:
            hit = _find(alias, text) if alias.anchor in text else None
            if hit is None:
                continue
            for index in owners:
                if index not in best or hit.score > best[index].score:
                    best[index] = hit
        return best

    def match(self, title: str, summary: str) -> list[Match]:
        """Every proposal the item reports on, best score first."""
        title_text, summary_text = normalize_text(title), normalize_text(summary)
        candidates = self._candidates(fold_text(f"{title_text}\n{summary_text}"))
        if not candidates:
            return []  # the common case, decided before any sentence is split
        sentences = [title_text, *split_sentences(summary_text)]
        folded = [line.strip() for line in fold_text("\n".join(sentences)).split("\n")]
        if len(folded) > 1 and folded[1].startswith(folded[0]) and folded[0]:
            folded[1] = folded[1][len(folded[0]) :].strip()  # feeds that repeat the headline in the summary
        hits = [self._alias_hits(text, candidates) for text in folded]
        found = []
        for index in sorted(set().union(*hits)):
            match = self._match_rule(index, self._rules[index], sentences, folded, hits)
            if match is not None:
                found.append(match)
        return sorted(found, key=lambda m: (-m.score, m.proposal))

    def _match_rule(
        self, index: int, rule: _Rule, sentences: list[str], folded: list[str], hits: list[dict[int, _Hit]]
    ) -> Match | None:
        title_actors = rule.actor_hits(folded[0]) if rule.needs_actor else []
        used: set[int] = set()
        actors: set[str] = set()
        passages: list[Passage] = []
        best: _Hit | None = None
        for i, text in enumerate(folded):
            own_hit = hits[i].get(index)
            hit = own_hit or (hits[0].get(index) if i and rule.needs_actor else None)
            if hit is None or not text:
                continue
            own_actors = rule.actor_hits(text) if rule.needs_actor else []
            if rule.needs_actor and not (own_actors or (i and title_actors and own_hit)):
                continue
            rests_on = {i} if own_hit and (own_actors or not rule.needs_actor) else {i, 0}
            window = text if i == 0 else f"{folded[0]} | {text}"
            if any(rule.vetoed(folded[j]) for j in rests_on) or not all(p.search(window) for p in rule.required):
                continue
            used |= rests_on
            best = hit if best is None or hit.score > best.score else best
            if not rule.needs_actor:
                passages.append(Passage(_focus(text, [hit.span]), sentences[i]))
            elif own_actors and (own_hit or _REFERENCE.search(text)):
                passages.append(Passage(_focus(text, [span for _, span in own_actors]), sentences[i]))
            elif own_actors:  # the headline names the agreement, this sentence only a party: read the headline
                passages.append(Passage(_focus(folded[0], [hits[0][index].span]), sentences[0]))
            else:
                passages.append(Passage(_focus(folded[0], [span for _, span in title_actors]), sentences[0]))
        if best is None:
            return None
        for j in used:
            actors.update(name for name, _ in rule.actor_hits(folded[j]))
        decision = decide_status(passages, self.ladder)
        return Match(
            proposal=rule.proposal.id,
            score=round(best.score, 3),
            alias=best.alias,
            actors=tuple(sorted(actors)),
            sentences=tuple(sentences[j] for j in sorted(used)),
            status=decision.status,
            status_sentence=decision.sentence,
            withdrawn=decision.withdrawn,
        )
