"""Digest rendering (pure): order, folding, escaping, cutting, and a splitter that never breaks the limit or
the HTML, whatever text the feeds carry."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.digest import LIMIT, Change, DigestContent, Report, html_length, render_digest, split_html

T0 = datetime(2026, 3, 1, 8, tzinfo=UTC)
TITLES = {"dk-ua-2024": "Denmark-Ukraine security agreement", "it-article5-guarantee": "Article 5-style guarantee"}


class _Balance(HTMLParser):
    """Checks nesting the way Telegram's HTML parser does: every end tag closes the innermost open tag."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.ok = True
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.ok = False

    def handle_data(self, data: str) -> None:
        self.text += data


def balanced(part: str) -> bool:
    parser = _Balance()
    parser.feed(part)
    parser.close()
    return parser.ok and not parser.stack


def _report(
    title: str,
    source: str = "Reuters",
    story: str | None = None,
    minutes: int = 0,
    proposal: str = "dk-ua-2024",
    link: str | None = "https://example.org/a",
) -> Report:
    return Report(proposal, title, link, source, T0 + timedelta(minutes=minutes), "signed", story or title)


def test_render_empty_digest_is_no_message() -> None:
    assert render_digest(DigestContent(TITLES)) == []


def test_render_changes_first_confirmed_before_unconfirmed() -> None:
    content = DigestContent(
        TITLES,
        changes=(
            Change("it-article5-guarantee", "discussion", "proposal", "upgrade", False, T0),
            Change("dk-ua-2024", "proposal", "signed", "upgrade", True, T0 + timedelta(hours=1), ("Reuters", "DW")),
        ),
        reports=(_report("Denmark signs"),),
    )
    text = "\n".join(render_digest(content))
    assert (
        text.index("Status changes")
        < text.index("Denmark-Ukraine")
        < text.index("Article 5-style")
        < text.index("New reports")
    )
    assert "(reported, unconfirmed)" in text.split("Article 5-style")[1].splitlines()[0]
    assert "unconfirmed" not in text.split("Denmark-Ukraine")[1].splitlines()[0]


def test_render_folds_one_story_from_several_outlets_into_one_line() -> None:
    content = DigestContent(
        TITLES,
        reports=(
            _report("Denmark signs pact", "Reuters", story="s1"),
            _report("Denmark signs pact with Kyiv", "DW", story="s1", minutes=5),
            _report("Other story", "BBC", story="s2"),
        ),
    )
    text = render_digest(content)[0]
    bullets = [line for line in text.splitlines() if line.startswith("•")]
    assert len(bullets) == 2
    assert any("DW, Reuters" in line for line in bullets)
    assert "<b>New reports</b> (2)" in text


def test_render_escapes_feed_text_and_links() -> None:
    evil = '<b>bold</b> & <a href="x">'
    content = DigestContent(TITLES, reports=(_report(evil, source="<i>Src</i>", link='https://e.org/?a=1&b="2"'),))
    text = render_digest(content)[0]
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &lt;a href=&quot;x&quot;&gt;" in text
    assert "&lt;i&gt;Src&lt;/i&gt;" in text
    assert 'href="https://e.org/?a=1&amp;b=&quot;2&quot;"' in text
    assert balanced(text)


def test_render_long_digest_is_cut_with_a_count() -> None:
    reports = tuple(_report(f"Report number {n}", story=f"s{n}", minutes=n) for n in range(100))
    text = "\n".join(render_digest(DigestContent(TITLES, reports=reports, max_reports=10)))
    assert len([line for line in text.splitlines() if line.startswith("•")]) == 10
    assert "… and 90 more reports not shown." in text


def test_split_long_digest_on_line_boundaries() -> None:
    reports = tuple(_report(f"Report {n} " + "x" * 200, story=f"s{n}", minutes=n) for n in range(200))
    parts = render_digest(DigestContent(TITLES, reports=reports, max_reports=200))
    assert len(parts) > 5
    for part in parts:
        assert html_length(part) <= LIMIT and balanced(part)
        assert all(line.startswith(("•", "<b>", "")) for line in part.splitlines())
    joined = "\n".join(parts)
    assert joined.count("•") == 200


def test_split_reopens_tags_split_inside_a_line() -> None:
    line = "<b><i>" + "word " * 2000 + "</i></b>"
    parts = split_html(line, 1000)
    assert len(parts) > 5
    for part in parts:
        assert html_length(part) <= 1000 and balanced(part)
        assert part.startswith("<b><i>") and part.endswith("</i></b>")
    assert "".join(re.sub(r"<[^>]+>", "", part) for part in parts) == "word " * 2000


feed_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=600)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(feed_text, feed_text, feed_text), min_size=1, max_size=60), st.integers(256, 4096))
def test_split_never_exceeds_the_limit_or_unbalances_tags(items: list[tuple[str, str, str]], limit: int) -> None:
    reports = tuple(
        Report("dk-ua-2024", title, f"https://e.org/{link}", source or "feed", T0, "signed", f"{n}")
        for n, (title, source, link) in enumerate(items)
    )
    html = "\n".join(render_digest(DigestContent(TITLES, reports=reports, max_reports=100), limit=100_000))
    parts = split_html(html, limit)
    assert parts, "a non-empty digest yields parts"
    for part in parts:
        assert html_length(part) <= limit
        assert balanced(part)
        assert part.strip()


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(
            feed_text.map(lambda t: t.replace("<", "&lt;").replace("&", "&amp;")),
            st.sampled_from(["<b>", "</b>", "<i>", "</i>", '<a href="https://x.org/">', "</a>", "\n"]),
        ),
        max_size=80,
    ),
    st.integers(256, 2000),
)
def test_split_arbitrary_markup_keeps_parts_within_limit(tokens: list[str], limit: int) -> None:
    html = "".join(tokens)
    for part in split_html(html, limit):
        assert html_length(part) <= limit


def test_render_an_analysts_rejection_replaces_the_unconfirmed_report() -> None:
    from monitor.digest import EventView, select_content

    detail: dict[str, object] = {
        "from_status": "discussion",
        "to_status": "signed",
        "sources": ["Reuters"],
        "link": None,
    }
    events = [
        EventView(1, "unconfirmed", "dk-ua-2024", detail, T0),
        EventView(2, "rejected", "dk-ua-2024", {**detail, "confirmed": False}, T0 + timedelta(hours=1)),
    ]
    content = select_content(events, TITLES, ("discussion", "proposal", "signed"))
    text = render_digest(content)[0]
    assert "was rejected by an analyst" in text
    assert "(reported, unconfirmed)" not in text
