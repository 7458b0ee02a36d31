"""monitor/schedule.py: when to poll a feed next, and its health (pure: `now` is passed in)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from monitor.config import PollSettings
from monitor.schedule import after_failure, after_success, base_interval, max_age, retry_after

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SETTINGS = PollSettings(interval=1800, min_interval=300, max_backoff=86400, failing_after=3)
INTERVAL = 1800.0
DAY = 86400.0


def http_date(delta: timedelta) -> str:
    return format_datetime(NOW + delta, usegmt=True)


@pytest.mark.parametrize(
    ("interval", "expected"),
    [(None, 1800.0), (0.0, 1800.0), (3600.0, 3600.0), (60.0, 300.0)],
    ids=["default", "zero-is-default", "own", "raised-to-min-interval"],
)
def test_base_interval_defaults_and_floor(interval: float | None, expected: float) -> None:
    assert base_interval(interval, SETTINGS) == expected


# --- success ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("headers", "ttl", "delay", "reason"),
    [
        ({}, None, INTERVAL, "interval"),
        ({"Retry-After": "7200"}, None, 7200, "Retry-After"),
        ({"retry-after": " 7200 "}, None, 7200, "Retry-After"),
        ({"Retry-After": "60"}, None, INTERVAL, "interval"),  # never shortened
        ({"Retry-After": http_date(timedelta(hours=3))}, None, 10800, "Retry-After"),
        ({"Retry-After": http_date(timedelta(minutes=5))}, None, INTERVAL, "interval"),
        ({"Retry-After": http_date(timedelta(hours=-3))}, None, INTERVAL, "interval"),
        ({"Retry-After": str(10**12)}, None, DAY, "Retry-After"),  # capped
        ({"Retry-After": "soon"}, None, INTERVAL, "interval"),
        ({"Cache-Control": "public, max-age=7200"}, None, 7200, "Cache-Control max-age"),
        ({"cache-control": 'max-age="3600", must-revalidate'}, None, 3600, "Cache-Control max-age"),
        ({"Cache-Control": "max-age=60"}, None, INTERVAL, "interval"),
        ({"Cache-Control": "no-cache"}, None, INTERVAL, "interval"),
        ({"Cache-Control": "max-age=31536000"}, None, DAY, "Cache-Control max-age"),  # capped
        ({}, 3600.0, 3600, "RSS ttl"),
        ({}, 600.0, INTERVAL, "interval"),
        ({}, 7 * DAY, DAY, "RSS ttl"),  # capped
        ({"Retry-After": "3600", "Cache-Control": "max-age=7200"}, 5400.0, 7200, "Cache-Control max-age"),
        ({"Retry-After": "9000", "Cache-Control": "max-age=7200"}, 5400.0, 9000, "Retry-After"),
    ],
)
def test_after_success_waits_the_longest_of_interval_and_hints(
    headers: dict[str, str], ttl: float | None, delay: float, reason: str
) -> None:
    plan = after_success(NOW, INTERVAL, SETTINGS, headers, ttl)

    assert plan.next_poll_at == NOW + timedelta(seconds=delay)
    assert (plan.consecutive_failures, plan.health, plan.reason) == (0, "ok", reason)


def test_after_success_never_waits_less_than_the_interval_whatever_the_hints() -> None:
    hints = [{"Retry-After": "0"}, {"Cache-Control": "max-age=0"}, {"Retry-After": http_date(timedelta(0))}]
    for headers in hints:
        for ttl in (None, 0.0, 1.0):
            plan = after_success(NOW, INTERVAL, SETTINGS, headers, ttl)
            assert plan.next_poll_at == NOW + timedelta(seconds=INTERVAL)


# --- failure ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("failures_before", "delay", "health"),
    [
        (0, 1800, "ok"),
        (1, 3600, "ok"),
        (2, 7200, "failing"),  # the third failure in a row
        (3, 14400, "failing"),
        (5, 57600, "failing"),
        (6, DAY, "failing"),  # 115200 capped
        (40, DAY, "failing"),
        (1_023, DAY, "failing"),
        (5_000, DAY, "failing"),  # 2 ** 5000 is no float: the cap must still hold
    ],
)
def test_after_failure_backs_off_exponentially_up_to_the_cap(failures_before: int, delay: float, health: str) -> None:
    plan = after_failure(NOW, INTERVAL, failures_before, SETTINGS, {}, 500)

    assert plan.next_poll_at == NOW + timedelta(seconds=delay)
    assert (plan.consecutive_failures, plan.health) == (failures_before + 1, health)
    assert plan.reason.startswith(f"backoff after {failures_before + 1} failure")


@pytest.mark.parametrize(
    ("failures_before", "headers", "delay", "reason"),
    [
        (0, {"Retry-After": "7200"}, 7200, "Retry-After"),
        (0, {"Retry-After": http_date(timedelta(hours=3))}, 10800, "Retry-After"),
        (0, {"Retry-After": "Sun Mar  1 15:00:00 2026"}, 10800, "Retry-After"),  # asctime, as HTTP allows
        (2, {"Retry-After": "60"}, 7200, "backoff after 3 failures"),  # never shortens the backoff
        (0, {"Retry-After": str(10**9)}, DAY, "Retry-After"),  # capped
        (0, {"Retry-After": "\u00b2"}, 1800, "backoff after 1 failure"),  # a stray header byte, not a number
    ],
)
def test_after_failure_honours_retry_after_as_a_lower_bound(
    failures_before: int, headers: dict[str, str], delay: float, reason: str
) -> None:
    plan = after_failure(NOW, INTERVAL, failures_before, SETTINGS, headers, 503)

    assert plan.next_poll_at == NOW + timedelta(seconds=delay)
    assert plan.reason == reason


@pytest.mark.parametrize(
    ("failing_after", "healths"),
    [
        (1, ["failing", "failing"]),
        (3, ["ok", "ok", "failing", "failing"]),
        (5, ["ok", "ok", "ok", "ok", "failing"]),
    ],
)
def test_after_failure_marks_failing_after_n_in_a_row(failing_after: int, healths: list[str]) -> None:
    settings = SETTINGS.model_copy(update={"failing_after": failing_after})

    seen = [after_failure(NOW, INTERVAL, before, settings, {}, None).health for before in range(len(healths))]

    assert seen == healths


@pytest.mark.parametrize("failures_before", [0, 7])
def test_after_failure_410_disables_the_feed(failures_before: int) -> None:
    plan = after_failure(NOW, INTERVAL, failures_before, SETTINGS, {"Retry-After": "7200"}, 410)

    assert (plan.health, plan.consecutive_failures) == ("disabled", failures_before + 1)
    assert "410" in plan.reason


@pytest.mark.parametrize("status", [None, 404, 429, 500, 503])
def test_after_failure_other_statuses_do_not_disable(status: int | None) -> None:
    assert after_failure(NOW, INTERVAL, 0, SETTINGS, {}, status).health == "ok"


# --- header readers --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        (http_date(timedelta(hours=2)), 7200.0),
        ("Sunday, 01-Mar-26 14:00:00 GMT", 7200.0),  # RFC 850, obsolete but allowed
        ("Sun Mar  1 14:00:00 2026", 7200.0),  # asctime, obsolete but allowed: GMT
        ("Sun, 01 Mar 2026 15:00:00 +0100", 7200.0),
        (http_date(timedelta(hours=-2)), 0.0),  # in the past: now
        ("-5", None),
        ("1.5", None),
        ("\u00b2", None),
        ("", None),
        ("tomorrow", None),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(value: str, seconds: float | None) -> None:
    assert retry_after({"Retry-After": value}, NOW) == seconds


def test_retry_after_absent_is_none() -> None:
    assert retry_after({"Content-Type": "application/rss+xml"}, NOW) is None


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("max-age=600", 600.0),
        ("public, max-age=600", 600.0),
        ("MAX-AGE=600", 600.0),
        ('max-age="600"', 600.0),
        ("no-store", None),
        ("", None),
    ],
)
def test_max_age_reads_cache_control(value: str, seconds: float | None) -> None:
    assert max_age({"Cache-Control": value}) == seconds
