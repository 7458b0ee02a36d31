"""feeds.yaml validation: typed objects, one-line errors naming file, line and field, environment overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from monitor.config import DEFAULT_CONFIG_PATH, load_config, parse_config
from monitor.errors import ConfigError

from .conftest import EVAL, ROOT


def _problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, Path("feeds.yaml"), env or {})
    return caught.value.problems


def test_default_config_tracks_the_eval_proposals() -> None:
    config = load_config(ROOT / "feeds.yaml", env={})
    expected = [entry["id"] for entry in yaml.safe_load((EVAL / "proposals.yaml").read_text())["proposals"]]
    assert [proposal.id for proposal in config.proposals] == expected
    assert all(proposal.aliases for proposal in config.proposals)


def test_default_config_lists_the_outlets_and_official_feeds() -> None:
    config = load_config(ROOT / "feeds.yaml", env={})
    hosts = " ".join(source.url for source in config.sources)
    for outlet in (
        "kyivindependent.com",
        "pravda.com.ua",
        "ukrinform",
        "rferl.org",
        "politico.eu",
        "euronews.com",
        "dw.com",
        "france24.com",
        "bbc",
        "theguardian.com",
        "ansa.it",
        "lemonde.fr",
    ):
        assert outlet in hosts
    assert any(source.tier == "official" for source in config.sources)
    assert len({source.id for source in config.sources}) == len(config.sources)


def test_config_durations_and_sizes_are_typed() -> None:
    config = parse_config(
        "settings:\n  poll: {interval: 45m, max_backoff: 2h, max_bytes: 512KiB, total_timeout: 90}\n",
        Path("x.yaml"),
        {},
    )
    poll = config.settings.poll
    assert (poll.interval, poll.max_backoff, poll.max_bytes, poll.total_timeout) == (2700, 7200, 524288, 90)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("settings:\n  poll:\n    intervall: 5m\n", "feeds.yaml:3: settings.poll.intervall: unknown key"),
        ("bogus: 1\n", "feeds.yaml:1: bogus: unknown key"),
        (
            "sources:\n  - id: a\n    name: A\n    url: ftp://example.org/feed\n",
            "feeds.yaml:4: sources[0].url: 'ftp://example.org/feed' is not an http or https URL",
        ),
        ("sources:\n  - id: a\n    url: https://example.org/\n", "feeds.yaml:2: sources[0].name: required but missing"),
        (
            "sources:\n  - {id: a, name: A, url: 'https://e.org/', tier: tabloid}\n",
            "feeds.yaml:2: sources[0].tier: Input should be 'official', 'wire', 'media' or 'blog'",
        ),
        (
            "sources:\n  - {id: a, name: A, url: 'https://e.org/', interval: soon}\n",
            "feeds.yaml:2: sources[0].interval: expected a duration such as 30m, 2h or 1d, got 'soon'",
        ),
        (
            "sources:\n  - {id: Bad Id, name: A, url: 'https://e.org/'}\n",
            "feeds.yaml:2: sources[0].id: 'Bad Id' is not an id: use lower-case letters, digits, '-' and '_'",
        ),
        (
            "sources:\n  - {id: a, name: A, url: 'https://e.org/'}\n  - {id: a, name: B, url: 'https://f.org/'}\n",
            "feeds.yaml:3: sources[1].id: 'a' is already used above",
        ),
        (
            "settings:\n  poll:\n    concurrency: 0\n",
            "feeds.yaml:3: settings.poll.concurrency: Input should be greater than or equal to 1",
        ),
        ("settings:\n  database_url: a\n  database_url: b\n", "feeds.yaml:3: settings.database_url: key given twice"),
        ("sources: [\n  {id: a\n", "feeds.yaml:3: not valid YAML: expected ',' or '}', but got '<stream end>'"),
        ("- just\n- a list\n", "feeds.yaml:1: the top level must be a mapping"),
        (
            "proposals:\n  - {id: p, title: P, initial_status: rumour}\n",
            "feeds.yaml:2: proposals[0].initial_status: 'rumour' is not on the ladder (discussion, proposal, signed)",
        ),
        (
            "settings:\n  status:\n    corroboration: {ratified: {sources: 2}}\n",
            "feeds.yaml:2: settings.status: corroboration names statuses not on the ladder: ratified",
        ),
    ],
)
def test_config_error_names_file_line_and_field(text: str, expected: str) -> None:
    problems = _problems(text)
    assert problems == [expected]
    assert all("\n" not in problem for problem in problems)


def test_config_reports_every_problem_in_line_order() -> None:
    problems = _problems("settings:\n  poll:\n    bogus: 1\nsources:\n  - {id: a, name: A, url: 'x'}\nextra: 2\n")
    assert [problem.split(":")[1] for problem in problems] == ["3", "5", "6"]


@pytest.mark.parametrize(
    ("zone", "hint"),
    [("Mars/Olympus", "an IANA name such as Europe/Kyiv or UTC"), ("europe/kiev", "did you mean Europe/Kiev?")],
)
def test_config_rejects_an_unknown_digest_timezone_naming_its_line(zone: str, hint: str) -> None:
    problems = _problems(f"settings:\n  digest:\n    hour: 8\n    timezone: {zone}\n")
    assert problems == [f"feeds.yaml:4: settings.digest.timezone: {zone!r} is not a known time zone ({hint})"]


def test_config_reports_every_problem_in_one_pass() -> None:
    text = (
        "settings:\n"
        "  database_url: a\n"
        "  database_url: b\n"  # 3: key given twice
        "  digest: {timezone: Nowhere/Town}\n"  # 4
        "sources:\n"
        "  - {id: a, name: A, url: 'https://e.org/'}\n"
        "  - {id: a, name: B, url: 'https://f.org/'}\n"  # 7: id used twice
        "  - {id: Bad Id, name: C, url: 'https://g.org/'}\n"  # 8: not an id
        "  - {id: d, name: D, url: 'http://h.org:70000/'}\n"  # 9: port
        "proposals:\n"
        "  - {id: p, title: P, initial_status: rumour}\n"  # 11: off the ladder
        "  - {id: p, title: Q}\n"  # 12: id used twice
        "  - {id: r}\n"  # 13: title missing
    )
    problems = _problems(text)
    assert [int(problem.split(":")[1]) for problem in problems] == [3, 4, 7, 8, 9, 11, 12, 13], problems


def test_config_environment_overrides() -> None:
    env = {
        "MONITOR_DATABASE_URL": "sqlite:////tmp/x.db",
        "MONITOR_TELEGRAM_TOKEN": "123:abc",
        "MONITOR_TELEGRAM_API_URL": "http://127.0.0.1:9/bot",
    }
    config = parse_config("settings:\n  telegram: {admin_chats: [42]}\n", Path("f.yaml"), env)
    assert config.database_url == "sqlite:////tmp/x.db"
    assert config.telegram_token == "123:abc"
    assert config.settings.telegram.api_url == "http://127.0.0.1:9/bot"
    assert config.settings.telegram.admin_chats == [42]


def test_config_path_from_environment(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("sources: []\n")
    assert load_config(env={"MONITOR_CONFIG": str(path)}).path == path
    with pytest.raises(ConfigError, match=r"missing\.yaml: no such configuration file"):
        load_config(env={"MONITOR_CONFIG": str(tmp_path / "missing.yaml")})


def test_default_database_is_the_file_existing_deployments_have() -> None:
    # a renamed default would open a new, empty database beside the one that holds the history
    text = "sources: []\nproposals: []\n"
    config = parse_config(text, ROOT / "feeds.yaml", env={})
    assert config.database_url == "sqlite:///monitor.db"
    assert "| `database_url` | `sqlite:///monitor.db` |" in (ROOT / "README.md").read_text()


def test_libyaml_and_pyyaml_read_the_same_data_and_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    from monitor import yaml_lines

    text = DEFAULT_CONFIG_PATH.read_text(encoding="utf-8")  # anchors, aliases, flow and block styles, accents
    fast = yaml_lines.load_yaml(text, DEFAULT_CONFIG_PATH, [])
    monkeypatch.setattr(yaml_lines, "_COMPOSER", yaml.SafeLoader)
    assert yaml_lines.load_yaml(text, DEFAULT_CONFIG_PATH, []) == fast
    assert fast[1][("proposals", 1, "since")] > fast[1][("proposals", 1, "id")] > 1
