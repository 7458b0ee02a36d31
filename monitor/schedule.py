"""When to poll a feed next, and how healthy it is, from what its last fetch said.

Pure: takes the fetch outcome's headers, the feed's failure count, the settings and `now`; returns a
`Schedule`. Success waits the feed's interval, lengthened (never shortened) by Retry-After, Cache-Control
max-age and the RSS ttl; failure backs off exponentially from the interval up to `max_backoff`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from monitor.config import PollSettings

GONE = 410
_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-)?max-age\s*=\s*\"?(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class Schedule:
    next_poll_at: datetime
    consecutive_failures: int
    health: str  # ok, failing or disabled
    reason: str  # what set the delay, for the operator


def base_interval(interval: float | None, settings: PollSettings) -> float:
    return max(interval or settings.interval, settings.min_interval)


def after_success(
    now: datetime,
    interval: float,
    settings: PollSettings,
    headers: Mapping[str, str],
    ttl_seconds: float | None = None,
) -> Schedule:
    """The next poll after a 200 or 304."""
    candidates = {"interval": interval}
    for name, value in (
        ("Retry-After", retry_after(headers, now)),
        ("Cache-Control max-age", max_age(headers)),
        ("RSS ttl", ttl_seconds),
    ):
        if value is not None:
            candidates[name] = min(value, settings.max_backoff)
    reason, delay = max(candidates.items(), key=lambda pair: pair[1])
    return Schedule(now + timedelta(seconds=delay), 0, "ok", reason)


def next_poll(
    settings: PollSettings,
    interval_seconds: float | None,
    now: datetime,
    headers: Mapping[str, str],
    ttl_seconds: float | None = None,
) -> Schedule:
    """When a feed that answered is polled next: its own interval or the default, or later when asked."""
    return after_success(now, base_interval(interval_seconds, settings), settings, headers, ttl_seconds)


def after_failure(
    now: datetime,
    interval: float,
    failures_before: int,
    settings: PollSettings,
    headers: Mapping[str, str],
    status: int | None,
) -> Schedule:
    """The next poll after a failure; a 410 disables the feed instead."""
    failures = failures_before + 1
    if status == GONE:
        return Schedule(now, failures, "disabled", "410 Gone: the feed was removed")
    # The exponent is bounded: past 1,023 failures 2 ** n no longer converts to a float.
    delay = min(interval * 2.0 ** min(failures - 1, 1000), settings.max_backoff)
    reason = f"backoff after {failures} failure{'s' if failures > 1 else ''}"
    requested = retry_after(headers, now)
    if requested is not None and requested > delay:
        delay, reason = min(requested, settings.max_backoff), "Retry-After"
    health = "failing" if failures >= settings.failing_after else "ok"
    return Schedule(now + timedelta(seconds=delay), failures, health, reason)


def retry_after(headers: Mapping[str, str], now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    value = _header(headers, "retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # isdigit() alone accepts '²', which float() refuses
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # the asctime form carries no zone; every HTTP date is GMT
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)


def max_age(headers: Mapping[str, str]) -> float | None:
    value = _header(headers, "cache-control")
    if not value:
        return None
    match = _MAX_AGE.search(value)
    return float(match.group(1)) if match else None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None
