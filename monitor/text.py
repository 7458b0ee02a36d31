"""Feed text -> the plain and folded forms matching reads, sentences, clauses, and the term syntax.

Shared by `monitor.match` (aliases, actors, required and excluded terms) and `monitor.concepts` (concept
parts). Pure: touches no network, database, clock or file.

Term syntax: case, accents, quotes and dashes are folded; words match whole, a word of four letters or more may
take a two-letter ending (German -> Germany), "*" takes any ending and " ... " allows up to five words in between.
"""

from __future__ import annotations

import html
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate

_MARKS = re.compile("[\u0300-\u036f\u0483-\u0489\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


def strip_marks(text: str) -> str:
    """Drop the accents of Latin, Greek and Cyrillic letters (é -> e, ї -> і, й -> и)."""
    if text.isascii():
        return text
    return _MARKS.sub("", unicodedata.normalize("NFKD", text))


_COMMENT = re.compile(r"<!--.*?(?:-->|$)|<(script|style)\b.*?(?:</\1\s*>|$)", re.S | re.I)
_TAG = re.compile(r"<[^<>]*>")
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u2060\ufeff]")
_MOJIBAKE = re.compile(r"[^\x00-\x7f][^\x00-\x7f]+")  # two or more; a pattern that starts with a class is found faster
# control characters but the white space ones (tab, line breaks, \x1c-\x1f, \x85): the closing split() reads those
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")
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
    """Feed text -> plain readable text: no tags, entities or mojibake; plain quotes and dashes; one space.

    The matcher's form. It gives the same result on raw feed text and on `monitor.parse.clean_text`'s stored
    form, which keeps the publisher's typography and so differs from this on about one text in seven."""
    for _ in range(50):
        cleaner = _normalize_once(text)
        if cleaner == text or (cleaner.isascii() and "&" not in cleaner):
            return cleaner  # plain ASCII without entities cannot change again
        text = cleaner
    return text


# a wire service's label before a headline ("UPDATE 2-", "Exclusive:", "Analysis-"): not part of what it says
_LABEL = re.compile(
    r"(?:(?:UPDATE|REFILE|CORRECTED|WRAPUP|RPT|BREAKING|Breaking|EXCLUSIVE|Exclusive|ANALYSIS|Analysis|FACTBOX|"
    r"Factbox|EXPLAINER|Explainer|INSIGHT|Insight|WATCH|Watch|VIDEO|Video|OPINION|Opinion)(?:\s+\d+)?\s*[-:|]\s*)+"
)


def headline_text(title: str) -> str:
    """A feed's headline as `normalize_text` gives it, without a wire service's label."""
    text = normalize_text(title)
    label = _LABEL.match(text)
    return text[label.end() :] if label and label.end() < len(text) else text


# Each pattern starts with a literal character, which Python's re finds far faster than a leading \b.
_US = re.compile(r"U(?<!\wU)(?:\.\s?S\.(?:\s?A\.)?|SA?(?!\w)|sa(?!\w))")  # "Usa": Italian news
_UK = re.compile(r"U(?<!\wU)\.\s?K\.")
_HYPHEN = re.compile(r"-(?<=\w-)(?=\w)")


_SPACES = re.compile(r"[^\S\n]+")


def fold_text(text: str) -> str:
    """Normalised text -> the form matching works on: case, accents and hyphens folded, US spelled out.

    Line breaks are kept, so that many sentences can be folded in one call."""
    if "U" in text:
        text = _UK.sub("UK", _US.sub("United States", text))
    if text.isascii():
        text = text.casefold()  # accents and case folded alike: ASCII has no marks, and folds to ASCII
    else:
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
    r";|:\s|\s-\s|(?<=\?)\s|,\s+(?=(?:and|but|while|whereas|although|though|yet|ma|mais|aber|але)\b)"
    r"|\s(?=(?:but|while|whereas|ma|mais|aber|але)\s)"
    r"|\s(?=(?:if|unless|provided|in exchange for|in return for|wenn|falls|якщо)\s)"
    r"|,\s+(?=(?:after|amid|as|when|following|despite|because|since|before|until|which|who)\s)"
    r"|\s(?=(?:billed|described|seen|dubbed|touted|hailed|viewed|presented) as\s)"
    # a headline's "X as Y" joins two events ("Germany signs pact as France weighs troops")
    r"|(?<!such)(?<!billed)(?<!described)(?<!seen)(?<!dubbed)(?<!touted)(?<!hailed)(?<!viewed)(?<!presented)"
    r"\s(?=as\s(?!part\b|well\b|soon\b|long\b|much\b|many\b|far\b|of\b|if\b|though\b|to\b|a\s+(?:result|part)\b))"
    r"|\s(?=after\s)"
    # a second thing said ("Lavrov said Moscow would not accept NATO troops and reiterated that membership ...")
    r"|\s(?=and\s(?:(?:has|have|had)\s+)?(?:said|says|added|adds|reiterated|reiterates|repeated|repeats|warned|"
    r"warns|insisted|insists|stressed|stresses|noted|notes|bar|bars|ban|bans|exclude|excludes|rule out|rules out)\b)"
    # ... or a second stance ("Britain signed a pact last month and is ready to put troops on the ground")
    r"|\s(?=and\s(?:is|are|was|were|has been|have been)\s+(?:\w+\s+)?(?:ready|willing|prepared|open|unwilling)\b)"
)


# A sentence that opens on a subordinate clause ("While X, Y"; "If X, Y") ends that clause at its first comma.
_FRONTED_CLAUSE = re.compile(
    r"(?:while|whereas|although|though|as|after|when|if|unless|despite|because|since|before|once|mentre|se"
    r"|pendant que|alors que|si|während|obwohl|wenn|поки|якщо)\s[^,;:]*?(,\s+)"
)


_SPEAKER = re.compile(r"[^:;,]{1,40}:\s")


def clauses(text: str) -> list[tuple[int, int]]:
    """Where each clause of a folded sentence starts and ends."""
    breaks = [(hit.start(), hit.end()) for hit in _CLAUSE_BREAK.finditer(text)]
    speaker = _SPEAKER.match(text)  # "Zelensky: if membership is not possible, ..." fronts its clause too
    fronted = _FRONTED_CLAUSE.match(text, speaker.end() if speaker else 0)
    if fronted is not None and not any(s <= fronted.start(1) < e for s, e in breaks):
        breaks = sorted([*breaks, fronted.span(1)])
    bounds = [0, *(b for start, end in breaks for b in (start, end)), len(text)]
    return [(bounds[i], bounds[i + 1]) for i in range(0, len(bounds), 2)]


def focus(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """The clauses of a folded sentence that overlap any of the spans, after its leading speaker's own words: they
    give the stance of what follows ("meloni rilancia: garanzie per kiev ...", "macron proposes: troops ...")."""
    lead = speaker_end(text)
    chosen = [text[s:e] for s, e in clauses(text) if e <= lead or any(a < e and b > s for a, b in spans)]
    return " ".join(chosen) or text


def same_clause(text: str, first: tuple[int, int], second: tuple[int, int]) -> bool:
    """Whether two spans of a folded sentence share a clause."""
    return any(first[0] < e and first[1] > s and second[0] < e and second[1] > s for s, e in clauses(text))


def in_topic(text: str, span: tuple[int, int]) -> bool:
    """Whether the span lies in a topic that heads the whole sentence ("Security guarantees: the US is ready")."""
    first = clauses(text)[0]
    return span[1] <= first[1] < len(text) and text.startswith(":", first[1])


_BEFORE, _AFTER = r"(?<!\w)", r"(?!\w)"


def term_pattern(term: str) -> str:
    """One term as a regular expression over folded text, bounded by whole words."""
    return _BEFORE + _term_body(term) + _AFTER


def _term_body(term: str) -> str:
    parts = []
    for chunk in term.split("..."):
        words = fold_text(chunk).split()
        if words:
            parts.append(r"\W+".join(_word_pattern(w) for w in words))
    return r"(?:\W+\w+){0,5}?\W+".join(parts)


def _word_pattern(word: str) -> str:
    if word.endswith("*"):
        return re.escape(word.rstrip("*")) + r"\w*"
    return re.escape(word) + (r"\w{0,2}" if len(word) >= 4 else "")


def term_literals(terms: Sequence[str]) -> tuple[str, ...]:
    """Text one of which any match of `alternatives_pattern(terms)` contains: each term's longest word, without
    the "*" that takes an ending. A test for them (str `in`) is far cheaper than the pattern's search."""
    found = []
    for term in terms:
        words = [word.rstrip("*") for chunk in term.split("...") for word in fold_text(chunk).split()]
        found.append(max(words, key=len, default=""))  # "": no word to look for, so no test
    # text that holds a literal holds every literal inside it: testing the shortest is enough
    return tuple(dict.fromkeys(w for w in found if not any(o in w and o != w for o in found)))


def alternatives_pattern(terms: Sequence[str]) -> re.Pattern[str] | None:
    """Any of the terms, as one pattern whose word boundaries are tested once rather than once per term."""
    bodies = [_term_body(t) for t in terms if fold_text(t).strip("*. ")]
    return re.compile(_BEFORE + "(?:" + "|".join(bodies) + ")" + _AFTER) if bodies else None


def terms_pattern(groups: Sequence[str]) -> re.Pattern[str] | None:
    """Any term of any of the groups ("a|b*|c ... d")."""
    return alternatives_pattern([t for group in groups for t in group.split("|")])


class Occurrences:
    """Which sentences of an item hold a piece of text: one scan of the whole item per piece, not one per
    sentence, since most pieces occur in few of a long report's sentences."""

    def __init__(self, sentences: Sequence[str]) -> None:
        self._text = "\n".join(sentences)
        self._starts = list(accumulate((len(s) + 1 for s in sentences[:-1]), initial=0))
        self._count = len(sentences)
        self._memo: dict[str, set[int]] = {}

    def sentences(self, piece: str) -> set[int]:
        if piece in self._memo:
            return self._memo[piece]
        found: set[int] = set()
        text, starts, at = self._text, self._starts, self._text.find(piece)
        while at >= 0:
            i = bisect_right(starts, at) - 1
            found.add(i)
            at = text.find(piece, starts[i + 1]) if i + 1 < self._count else -1
        self._memo[piece] = found
        return found

    def holding(self, keys: Sequence[frozenset[str]]) -> set[int]:
        """The sentences that hold at least one piece of every group."""
        result = set(range(self._count))
        for group in keys:
            result &= set().union(*map(self.sentences, group))
            if not result:
                break
        return result


_LEADING_SPEAKER = re.compile(r"([\w']+(?: [\w']+){0,3}):\s")  # "zelensky: ...", not "guarantees, troops: ..."
_TRAILING_SPEAKER = re.compile(r"[,']+(?=\s+[\w']+(?: [\w']+){0,3} (?:says|said)\W*$)")


def speaker_end(text: str) -> int:
    """Where a folded sentence's leading speaker ends ("rubio: ..."), 0 if it has none."""
    speaker = _LEADING_SPEAKER.match(text)
    return speaker.end(1) if speaker else 0


def speaker_joined(text: str) -> str:
    """A folded sentence with its speaker joined to what the speaker says, at the same offsets: the colon after a
    leading speaker ("zelensky: giving up nato ...") and the comma and quote before a trailing one ("'we won't
    give up on nato,' ukraine's foreign minister says") become spaces."""
    speaker = _LEADING_SPEAKER.match(text)
    if speaker:
        text = f"{text[: speaker.end(1)]} {text[speaker.end(1) + 1 :]}"
    if "'" in text:
        text = _TRAILING_SPEAKER.sub(lambda quote: " " * len(quote.group()), text)
    return text


_QUOTE = re.compile(r"(?<!\w)'|'(?!\w)")  # a quote mark, not an apostrophe inside a word ("ukraine's", "won't")


def unquoted(text: str) -> str:
    """A folded sentence with its quote marks as spaces, at the same offsets: "an 'irreversible' path" reads as
    "an irreversible path"."""
    return _QUOTE.sub(" ", text) if "'" in text else text
