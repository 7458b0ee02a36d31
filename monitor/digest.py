"""Events since a subscriber's last digest -> the digest as Telegram HTML parts of at most 4096 characters.

Pure: takes `DigestContent` (status changes and reports, already filtered for the subscriber) and returns the
rendered parts; reads no clock, database or network. Every piece of feed text is escaped. Parts are split on
line boundaries; a line too long for one part is split inside, and any tag open at a split is closed at the
end of the part and reopened at the start of the next, so every part is balanced HTML. An empty digest
renders to no parts at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from html import escape

from monitor.status import Ladder

USER_KINDS = ("report", "change", "unconfirmed", "confirmed", "withdrawal", "rejected")  # events a digest tells
ADMIN_KINDS = ("feed-failing", "feed-disabled")  # ... and an admin chat's feed alerts
STDOUT_CHAT = 0  # the subscriber that stands for standard output when no Telegram token is set

LIMIT = 4096  # Telegram's maximum message length
TITLE_MAX = 300
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)([^<>]*)>")
Stack = list[tuple[str, str]]  # (tag name, the opening tag as written), outermost first
_TOKEN = re.compile(r"<[^<>]*>|&(?:[a-zA-Z]+|#\d+|#x[0-9a-fA-F]+);|[^<&]+|[<&]")


@dataclass(frozen=True)
class Report:
    """A new report about a proposal. `story` folds the same story from several outlets into one line."""

    proposal: str
    title: str
    link: str | None
    source: str
    published_at: datetime
    status: str
    story: str


@dataclass(frozen=True)
class Change:
    proposal: str
    from_status: str
    to_status: str
    kind: str  # upgrade, withdrawal, or rejected (an analyst rejected a reported change)
    confirmed: bool
    observed_at: datetime
    sources: tuple[str, ...] = ()
    link: str | None = None
    happened_at: datetime | None = None  # when the world changed, if the report is older than the digest


@dataclass(frozen=True)
class DigestContent:
    titles: dict[str, str]  # proposal id -> title
    changes: tuple[Change, ...] = ()
    reports: tuple[Report, ...] = ()
    max_reports: int = 40
    heading: str = "Guarantee Watch digest"
    extra: tuple[str, ...] = field(default=())  # plain-text lines appended (escaped), e.g. admin notices

    @property
    def empty(self) -> bool:
        return not (self.changes or self.reports or self.extra)


def render_digest(content: DigestContent, limit: int = LIMIT) -> list[str]:
    """The digest as HTML parts, each at most `limit` characters; [] when there is nothing to say."""
    if content.empty:
        return []
    return split_html("\n".join(_lines(content)), limit)


def _lines(content: DigestContent) -> list[str]:
    lines = [f"<b>{escape(content.heading)}</b>"]
    if content.changes:
        lines += ["", "<b>Status changes</b>"]
        ordered = sorted(content.changes, key=lambda c: (not c.confirmed, c.observed_at, c.proposal))
        lines += [_change_line(change, content.titles) for change in ordered]
    if content.reports:
        lines += _report_lines(content.reports, content.titles, content.max_reports)
    if content.extra:
        lines += ["", *(escape(_cut(line, 1000)) for line in content.extra)]
    return lines


def _change_line(change: Change, titles: dict[str, str]) -> str:
    name = escape(_cut(titles.get(change.proposal, change.proposal), 120))
    if change.kind == "withdrawal":
        text = f"⚠️ <b>{name}</b>: withdrawal or collapse reported (for review)"
    elif change.kind == "rejected":
        text = (
            f"✖️ <b>{name}</b>: the reported {escape(change.from_status)} → {escape(change.to_status)} was "
            "rejected by an analyst"
        )
    else:
        arrow = f"{escape(change.from_status)} → <b>{escape(change.to_status)}</b>"
        text = f"{'✅' if change.confirmed else '❔'} <b>{name}</b>: {arrow}"
        if not change.confirmed:
            text += " <i>(reported, unconfirmed)</i>"
        if change.happened_at and change.observed_at - change.happened_at > timedelta(days=1):
            text += f" <i>(on {change.happened_at:%Y-%m-%d})</i>"
    if change.sources:
        text += f" — {escape(_cut(', '.join(change.sources), 200))}"
    if href := _href(change.link):
        text += f' <a href="{href}">source</a>'
    return text


def _report_lines(reports: Sequence[Report], titles: dict[str, str], max_reports: int) -> list[str]:
    lines: list[str] = []
    shown = 0
    total_stories = 0
    for proposal, stories in _group(reports):
        total_stories += len(stories)
        if shown >= max_reports:
            continue
        lines += ["", f"<b>{escape(_cut(titles.get(proposal, proposal), 120))}</b> ({len(stories)})"]
        for story in stories[: max_reports - shown]:
            first = story[0]
            outlets = _cut(", ".join(dict.fromkeys(report.source for report in story)), 200)
            title = escape(_cut(first.title, TITLE_MAX) or "(untitled)")
            if href := _href(first.link):
                title = f'<a href="{href}">{title}</a>'
            lines.append(f"• {title} — {escape(outlets)} <i>[{escape(first.status)}]</i>")
            shown += 1
    if total_stories > shown:
        lines += ["", f"<i>… and {total_stories - shown} more reports not shown.</i>"]
    return ["", f"<b>New reports</b> ({total_stories})", *lines] if lines else []


def _group(reports: Iterable[Report]) -> list[tuple[str, list[list[Report]]]]:
    """Reports by proposal (most reported first), folded into stories (newest first)."""
    by_proposal: dict[str, dict[str, list[Report]]] = {}
    for report in sorted(reports, key=lambda r: (r.published_at, r.source), reverse=True):
        by_proposal.setdefault(report.proposal, {}).setdefault(report.story, []).append(report)
    grouped = [(proposal, list(stories.values())) for proposal, stories in by_proposal.items()]
    return sorted(grouped, key=lambda pair: (-len(pair[1]), pair[0]))


def _cut(text: str, limit: int) -> str:
    """One line of feed text, at most `limit` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _href(link: str | None) -> str | None:
    """A link fit for an href: http(s) only, no whitespace or control characters, escaped."""
    if not link:
        return None
    link = "".join(ch for ch in link if ch.isprintable() and not ch.isspace())
    if not re.match(r"^https?://", link, re.IGNORECASE):
        return None
    return escape(link, quote=True)


def html_length(text: str) -> int:
    """Length as Telegram counts it, bounded from above: UTF-16 code units of the raw HTML."""
    return len(text.encode("utf-16-le")) // 2


def split_html(html: str, limit: int = LIMIT) -> list[str]:
    """Split HTML into parts of at most `limit` characters, on line boundaries where possible. A tag open at a
    split is closed at the end of the part and reopened at the start of the next."""
    if limit < 256:
        raise ValueError("a part must allow at least 256 characters")
    parts: list[str] = []
    buffer = ""
    stack: Stack = []
    for line in html.split("\n"):
        separator = "\n" if _visible(buffer) else ""
        after = _push(stack, line)
        if html_length(buffer + separator + line + _close(after)) <= limit:
            buffer, stack = buffer + separator + line, after
            continue
        if _visible(buffer):
            parts.append(buffer + _close(stack))
            buffer, separator = _reopen(stack), ""
            after = _push(stack, line)
            if html_length(buffer + line + _close(after)) <= limit:
                buffer, stack = buffer + line, after
                continue
        buffer += separator
        for piece in _pieces(line, limit // 4):
            after = _push(stack, piece)
            if html_length(buffer + piece + _close(after)) > limit and _visible(buffer):
                parts.append(buffer + _close(stack))
                buffer = _reopen(stack)
            buffer, stack = buffer + piece, after
    if _visible(buffer):
        parts.append(buffer + _close(stack))
    return parts


def _push(stack: Stack, html: str) -> Stack:
    """The open tags after `html`, given those open before it."""
    result = list(stack)
    for match in _TAG.finditer(html):
        closing, name = match.group(1), match.group(2).lower()
        if not closing:
            result.append((name, match.group(0)))
            continue
        for index in range(len(result) - 1, -1, -1):
            if result[index][0] == name:
                del result[index:]
                break
    return result


def _close(stack: Stack) -> str:
    return "".join(f"</{name}>" for name, _tag in reversed(stack))


def _reopen(stack: Stack) -> str:
    return "".join(tag for _name, tag in stack)


def _pieces(line: str, size: int) -> list[str]:
    """Tags and entities whole; text in chunks of at most `size` characters."""
    pieces: list[str] = []
    for token in _TOKEN.findall(line):
        if token.startswith("<") or (token.startswith("&") and len(token) > 1):
            pieces.append(token)
        else:
            pieces += [token[start : start + size] for start in range(0, len(token), size)]
    return pieces


def _visible(part: str) -> bool:
    return bool(_TAG.sub("", part).strip())


# ------------------------------------------------------------------------------------------------- selection
@dataclass(frozen=True)
class EventView:
    """An event from the outbox, as the digest needs it."""

    id: int
    kind: str
    proposal: str | None
    detail: dict[str, object]
    created_at: datetime


def select_content(
    events: Sequence[EventView],
    titles: dict[str, str],
    ladder: Sequence[str],
    *,
    follows: Sequence[str] | None = None,
    min_status: str = "all",
    max_reports: int = 40,
) -> DigestContent:
    """The subscriber's part of the events: followed proposals only, at or above their minimum status."""
    ranks = Ladder.of(ladder)
    floor = ranks.rank(min_status, default=0)
    followed = set(follows) if follows is not None else None
    changes: list[Change] = []
    reports: list[Report] = []
    for event in events:
        if event.proposal is None or (followed is not None and event.proposal not in followed):
            continue
        detail = event.detail
        if event.kind == "report":
            if ranks.rank(str(detail.get("status")), default=0) >= floor:
                reports.append(_report_of(event))
        elif event.kind in ("change", "unconfirmed", "confirmed", "withdrawal", "rejected"):
            kind = event.kind if event.kind in ("withdrawal", "rejected") else "upgrade"
            if kind == "upgrade" and ranks.rank(str(detail.get("to_status")), default=0) < floor:
                continue
            changes.append(
                Change(
                    proposal=event.proposal,
                    from_status=str(detail.get("from_status", "")),
                    to_status=str(detail.get("to_status", "")),
                    kind=kind,
                    confirmed=event.kind in ("change", "confirmed"),
                    observed_at=event.created_at,
                    sources=tuple(str(source) for source in _list(detail.get("sources"))),
                    link=str(detail["link"]) if detail.get("link") else None,
                    happened_at=_time(detail.get("happened_at")),
                )
            )
    return DigestContent(titles, tuple(_latest_per_change(changes)), tuple(reports), max_reports)


def _time(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _latest_per_change(changes: list[Change]) -> list[Change]:
    """A change reported unconfirmed and then confirmed, or rejected, within one window is shown once, as it
    ended."""
    settled = {
        (c.proposal, c.to_status) for c in changes if (c.confirmed and c.kind == "upgrade") or c.kind == "rejected"
    }
    return [c for c in changes if c.confirmed or c.kind != "upgrade" or (c.proposal, c.to_status) not in settled]


def _report_of(event: EventView) -> Report:
    detail = event.detail
    published = detail.get("published_at")
    return Report(
        proposal=event.proposal or "",
        title=str(detail.get("title", "")),
        link=str(detail["link"]) if detail.get("link") else None,
        source=str(detail.get("source", "")),
        published_at=datetime.fromisoformat(published) if isinstance(published, str) else event.created_at,
        status=str(detail.get("status", "")),
        story=str(detail.get("story", event.id)),
    )


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


def admin_content(events: Sequence[EventView], titles: dict[str, str]) -> DigestContent:
    """Feed alerts for admin chats."""
    lines = []
    for event in events:
        detail = event.detail
        what = "is failing" if event.kind == "feed-failing" else "was disabled"
        lines.append(f"Feed {detail.get('source', '?')} {what}: {detail.get('error', '')}")
    return DigestContent(titles, extra=tuple(lines), heading="Guarantee Watch: feed alerts")


# ------------------------------------------------------------------------------------------------- schedule
FREQUENCIES = ("instant", "hourly", "daily", "weekly")


def is_due(frequency: str, hour: int, last: datetime | None, now: datetime, zone: tzinfo) -> bool:
    """Whether a subscriber's next digest is due: instant always; hourly an hour after the last; daily at
    `hour` local time; weekly on Mondays at `hour`."""
    if last is None or frequency == "instant":
        return True
    if frequency == "hourly":
        return now - last >= timedelta(hours=1)
    local = now.astimezone(zone)
    slot = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if slot > local:
        slot -= timedelta(days=1)
    if frequency == "weekly":
        slot -= timedelta(days=slot.weekday())
    return last < slot
