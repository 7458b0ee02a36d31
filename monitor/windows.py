"""A proposal's time window x a report's date and the years its sentences name -> whether it can speak of it.

A proposal's `since` is the day it was first reported, its `until` the last day reports named it in the general
words of its aliases (feeds.yaml). Pure: dates in, booleans out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime

Window = tuple[date | None, date | None]  # (since, until)

_YEAR = re.compile(r"\b(?:19|20)\d\d\b")


def years_named(text: str) -> list[int]:
    """The years a sentence names ("signed in June 2024")."""
    return [int(year) for year in _YEAR.findall(text)]


def before_since(text: str, since: date | None) -> bool:
    """Whether a sentence dates itself only before a proposal was first reported ("Paris sent troops in 2022",
    "the assurances Ukraine got in 1994"): it tells of something earlier."""
    years = years_named(text) if since is not None else []
    return since is not None and bool(years) and max(years) < since.year


def current(window: Window, published: date | None) -> bool:
    """Whether the day `published` falls in a proposal's (`since`, `until`) window (unknown: it does)."""
    day, (since, until) = published.date() if isinstance(published, datetime) else published, window
    return day is None or ((since is None or day >= since) and (until is None or day <= until))


def names_window(window: Window, years: Iterable[int]) -> bool:
    """Whether a reading after a proposal's `until` names a year of its window. A year counts when its middle
    falls in the window: a proposal current until 19 January 2025 is not "the 2025 security agreement"."""
    since, until = window
    return until is not None and any(
        (since is None or since <= date(year, 12, 31)) and date(year, 7, 1) <= until for year in years
    )
