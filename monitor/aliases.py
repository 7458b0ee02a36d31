"""One alias x one folded text -> where the text names it, exactly or fuzzily (rapidfuzz), as whole words.

`Matcher` (monitor.match) files each proposal's aliases under their most telling word's first letters
(`anchor_of`) so that an item is aligned only with the aliases whose words it has. Pure: no I/O.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

_DIGITS = re.compile(r"\d+")
_BREAKS = re.compile(r"[,;:!?|]")
_TOKEN_BREAKS = str.maketrans(dict.fromkeys("'\"()[]{},.;:!?-/|", " "))
_COMMON = frozenset(
    "ukraine ukraine's ukrainian ukraina ucraina ukrainian security united states european europe year years "
    "the of to in for on with and a an de la le di del der die das".split()
)
PREFIX = operator.itemgetter(slice(0, 4))


@dataclass(frozen=True)
class Alias:
    text: str
    shown: str
    cutoff: float
    digits: tuple[str, ...]
    spaces: int
    anchor: str  # the start of its most telling word
    prefixes: frozenset[str]  # the first three letters of its other words: a cheap test before the fuzzy one


@dataclass(frozen=True)
class Hit:
    score: float
    alias: str
    span: tuple[int, int]


def make_alias(text: str, shown: str) -> Alias:
    cutoff = 100.0 if len(text) <= 6 else 92.0 if len(text) <= 12 else 88.0
    anchor = anchor_of(text)
    prefixes = frozenset(w[:3] for w in tokens(text)) - {anchor[:3]}
    return Alias(text, shown, cutoff, tuple(_DIGITS.findall(text)), text.count(" "), anchor, prefixes)


def tokens(text: str) -> list[str]:
    return text.translate(_TOKEN_BREAKS).split()


def anchor_of(alias: str) -> str:
    """The start of the alias's most telling word: the longest one that is not common in this news."""
    words = tokens(alias)
    telling = [w for w in words if w not in _COMMON] or words
    return max(telling, key=len)[:4]


def find(alias: Alias, text: str) -> Hit | None:
    """The alias in the folded text as whole words, exactly or fuzzily (at or above its cutoff)."""
    start = text.find(alias.text)
    while start >= 0:
        end = start + len(alias.text)
        if (start == 0 or not text[start - 1].isalnum()) and (end == len(text) or not text[end].isalnum()):
            return Hit(1.0, alias.shown, (start, end))
        start = text.find(alias.text, start + 1)
    if alias.cutoff >= 100 or len(alias.text) > len(text):
        return None
    from rapidfuzz import fuzz  # loaded by the first item that needs it: a poll of 304s matches nothing

    found = fuzz.partial_ratio_alignment(alias.text, text, score_cutoff=alias.cutoff)
    if found is None:
        return None
    start, end = found.dest_start, found.dest_end
    while start > 0 and text[start - 1].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum():
        end += 1
    piece = text[start:end].strip()
    if _BREAKS.search(piece) and not _BREAKS.search(alias.text):
        return None  # "security, according" is not "security accord"
    score = fuzz.ratio(alias.text, piece)
    if score < alias.cutoff or tuple(_DIGITS.findall(piece)) != alias.digits or piece.count(" ") != alias.spaces:
        return None
    return Hit(score / 100, alias.shown, (start, end))


def better(hit: Hit, than: Hit, names: frozenset[str]) -> bool:
    """Whether `hit` reads a proposal better than `than`: an alias whose words enclose the other's names more
    ("US 'backstop'", fuzzily, over "backstop" exactly); else one of the proposal's `names`, which needs nothing
    beside it, over an alias that does ("Meloni's NATO-style guarantee"); else the higher score, then the longer."""
    if hit.span != than.span:
        if hit.span[0] <= than.span[0] and than.span[1] <= hit.span[1]:
            return True
        if than.span[0] <= hit.span[0] and hit.span[1] <= than.span[1]:
            return False
    if (hit.alias in names) != (than.alias in names):
        return hit.alias in names
    return (hit.score, len(hit.alias)) > (than.score, len(than.alias))
