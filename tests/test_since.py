"""A proposal is not matched in reports published before it was first reported (its `since`): "Western troops
to Ukraine" in early 2024 spoke of joining the war, not of the force proposed for after a ceasefire. Nor after
the last day reports named it in the general words of its aliases (its `until`): a US-Ukraine "security
agreement" in 2026 is the new guarantees, not the 2024 one."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import Engine

from monitor.cli import cli
from monitor.config import DEFAULT_CONFIG_PATH, Config, ProposalConfig, load_config
from monitor.errors import ConfigError
from monitor.feedserver import FeedServer, Response
from monitor.match import Matcher
from monitor.parse_pool import Parser
from monitor.pipeline import run_poll

from .conftest import FakeClock, make_config, rss

TROOPS = "France and Britain ready to send troops to Ukraine"


def _force() -> Matcher:
    since = date(2024, 11, 1)
    return Matcher([ProposalConfig(id="force", title="Force", aliases=["send troops"], since=since)])


def test_a_report_before_since_is_not_matched_and_one_after_or_undated_is() -> None:
    matcher = _force()
    assert matcher.match(TROOPS, "", date(2024, 3, 1)) == []
    assert matcher.match(TROOPS, "", datetime(2024, 10, 31, 23, 59, tzinfo=UTC)) == []
    assert [m.proposal for m in matcher.match(TROOPS, "", date(2024, 11, 1))] == ["force"]
    assert [m.proposal for m in matcher.match(TROOPS, "", datetime(2025, 2, 17, 8, 0, tzinfo=UTC))] == ["force"]
    assert [m.proposal for m in matcher.match(TROOPS, "")] == ["force"]  # no date: nothing to rule out


def test_a_report_after_until_is_not_matched() -> None:
    pact = "US and Ukraine security agreement ready to be signed"
    matcher = Matcher(
        [ProposalConfig(id="pact", title="Pact", aliases=["security agreement"], until=date(2025, 1, 19))]
    )
    assert [m.proposal for m in matcher.match(pact, "", date(2024, 6, 12))] == ["pact"]
    assert [m.proposal for m in matcher.match(pact, "", datetime(2025, 1, 19, 23, 0, tzinfo=UTC))] == ["pact"]
    assert matcher.match(pact, "", date(2026, 1, 26)) == []
    assert [m.proposal for m in matcher.match(pact, "")] == ["pact"]
    undated = matcher.match(pact, "")
    assert matcher.arisen(undated, date(2026, 1, 26)) == [] and matcher.arisen(undated, date(2024, 6, 1)) == undated


@pytest.mark.parametrize(
    ("title", "summary", "expected"),
    [
        ("Ukraine's 2024 security agreement with the US survives change of administration", "", ["pact"]),
        ("Officials review a pact", "The security agreement was signed in June 2024.", ["pact"]),
        ("Officials review the security agreement", "Another pact was signed in June 2024.", []),
        ("New US security agreement for Ukraine after 2024's expires", "", ["pact"]),
        ("US and Ukraine security agreement ready to be signed", "", []),
        ("US and Ukraine security agreement ready to be signed", "Talks began in 2025.", []),
        ("The 2025 security agreement between the US and Ukraine", "", []),
    ],
)
def test_after_until_a_reading_that_names_a_year_of_its_window_still_counts(
    title: str, summary: str, expected: list[str]
) -> None:
    matcher = Matcher(
        [ProposalConfig(id="pact", title="Pact", aliases=["security agreement"], until=date(2025, 1, 19))]
    )
    published = date(2026, 3, 1)
    assert [m.proposal for m in matcher.match(title, summary, published)] == expected
    assert [m.proposal for m in matcher.arisen(matcher.match(title, summary), published)] == expected


def test_a_sentence_dated_only_before_since_tells_of_something_earlier() -> None:
    matcher = _force()
    assert matcher.match("Paris had offered to send troops to Ukraine in 2022", "", date(2025, 3, 1)) == []
    assert matcher.match("Paris offered in 2024 to send troops to Ukraine, and again in 2025", "") != []
    dated = matcher.match("Ukraine war: allies ready to send troops", "Talks began in 2023, Kyiv says.")
    assert [m.proposal for m in dated] == ["force"]  # the year is in another sentence than the reading


def test_default_proposals_state_when_they_were_reported() -> None:
    proposals = {p.id: p for p in load_config(DEFAULT_CONFIG_PATH, env={}).proposals}
    assert proposals["reassurance-force"].since == date(2024, 11, 1)
    assert proposals["us-ua-2024"].since is None and proposals["us-ua-2024"].until == date(2025, 1, 19)
    found = {
        m.proposal
        for m in Matcher(list(proposals.values())).match(
            "Zelensky says US security agreement is ready to be signed", "", date(2026, 1, 26)
        )
    }
    assert found == {"us-security-backstop"}
    assert proposals["eu-ua-2024"].until == date(2024, 12, 31)
    later = {
        m.proposal
        for m in Matcher(list(proposals.values())).match(
            "EU worries over lack of US security commitments for Ukraine", "", date(2025, 3, 1)
        )
    }
    assert later == {"us-security-backstop"}


def test_until_before_since_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(
        "sources: []\nproposals:\n  - id: pact\n    title: Pact\n    aliases: [security pact]\n"
        "    since: 2025-01-01\n    until: 2024-01-01\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    message = str(caught.value)
    assert "feeds.yaml" in message and "until (2024-01-01) is before since (2025-01-01)" in message
    assert "\n" not in message.strip()


def test_since_must_be_a_date(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(
        "sources: []\nproposals:\n  - id: force\n    title: Force\n    aliases: [send troops]\n"
        "    since: last spring\n",
        encoding="utf-8",
    )
    try:
        load_config(path, env={})
    except ConfigError as exc:
        message = str(exc)
    else:
        raise AssertionError("a since that is not a date was accepted")
    assert "feeds.yaml:6" in message and "proposals[0].since" in message and "\n" not in message.strip()


def test_match_command_reads_published(tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": "early", "title": TROOPS, "published": "2024-03-01T06:34:30+00:00"}),
        json.dumps({"id": "late", "title": TROOPS, "published": "2025-02-17"}),
        json.dumps({"id": "bad", "title": TROOPS, "published": "yesterday"}),
    ]
    result = CliRunner().invoke(cli, ["match", "--config", str(DEFAULT_CONFIG_PATH)], input="\n".join(lines) + "\n")
    assert result.exit_code == 1
    out = {row["id"]: [m["proposal"] for m in row["matches"]] for row in map(json.loads, result.stdout.splitlines())}
    assert out == {"early": [], "late": ["reassurance-force"]}
    assert result.stderr.strip() == "line 3: \"published\" must be an ISO 8601 date or time, not 'yesterday'"


@pytest.mark.parametrize("threshold", [1e9, 0], ids=["matched-in-the-poll", "matched-in-parse-workers"])
def test_poll_matches_by_the_date_a_report_was_published(
    base_config: Config, database_url: str, engine: Engine, server: FeedServer, threshold: float
) -> None:
    early = ("early", TROOPS, "Macron would not rule out Western troops.", datetime(2024, 3, 1, 9, 0, tzinfo=UTC))
    late = ("late", TROOPS + " after a ceasefire", "Starmer spoke in London.", datetime(2025, 2, 17, 9, 0, tzinfo=UTC))
    server.serve("/news.xml", Response(rss(early, late)))
    config = make_config(base_config, database_url, {"news": server.url("/news.xml")})
    matcher = Matcher(config.proposals, config.settings.status.ladder)
    parser = Parser(workers=2, threshold=threshold, matcher=matcher)  # a first poll's items matched undated there
    try:
        run_poll(config, engine, FakeClock(datetime(2026, 12, 1, 12, 0, tzinfo=UTC)), matcher=matcher, parser=parser)
    finally:
        parser.close()
    assert parser.processes == (2 if threshold == 0 else 0)
    with engine.connect() as db:
        rows = db.execute(
            sa.text("SELECT i.guid, m.proposal_id FROM item_match m JOIN item i ON i.id = m.item_id ORDER BY i.guid")
        ).all()
    assert [(guid, proposal) for guid, proposal in rows if proposal == "reassurance-force"] == [
        ("late", "reassurance-force")
    ]


def test_matches_made_without_a_date_keep_only_what_a_dated_call_gives() -> None:
    matcher = Matcher(load_config(DEFAULT_CONFIG_PATH, env={}).proposals)
    title = "Ukraine and Germany sign security pact as France weighs sending troops to Ukraine"
    undated = matcher.match(title, "")
    assert {m.proposal for m in undated} == {"de-ua-2024", "reassurance-force"}
    for day in (date(2024, 2, 16), date(2025, 2, 17), None):
        assert matcher.arisen(undated, day) == matcher.match(title, "", day)
