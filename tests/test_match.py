"""Matching: the seed report, look-alike pairs, text normalisation properties and the `monitor match` command."""

from __future__ import annotations

import functools
import json
import pickle
import sys
import threading
from datetime import date
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from monitor.cli.match import match_command
from monitor.config import DEFAULT_CONFIG_PATH, ProposalConfig, load_config
from monitor.match import MATCHER_VERSION, Match, Matcher, fold_text, normalize_text, split_sentences

from .conftest import EVAL

SEED = EVAL / "seed-report.txt"


@functools.cache
def default_matcher() -> Matcher:
    return Matcher(load_config(DEFAULT_CONFIG_PATH, env={}).proposals)


@pytest.fixture
def matcher() -> Matcher:
    return default_matcher()


def found(matcher: Matcher, title: str, summary: str = "") -> dict[str, str]:
    return {m.proposal: m.status for m in matcher.match(title, summary)}


def test_match_seed_report_gives_exactly_its_three_proposals(matcher: Matcher) -> None:
    title, _, summary = SEED.read_text(encoding="utf-8").partition("\n")
    assert found(matcher, title, summary) == {
        "it-article5-guarantee": "proposal",
        "reassurance-force": "discussion",
        "it-ua-2024": "signed",
    }


@pytest.mark.parametrize(
    ("title", "summary", "expected"),
    [
        # the German and French agreements, signed the same day
        (
            "Ukraine signs bilateral security deal with Germany",
            "Zelensky met Olaf Scholz in Berlin and will sign a similar agreement with France later in the day.",
            {"de-ua-2024": "signed", "fr-ua-2024": "proposal"},
        ),
        ("France and Ukraine sign security agreement in Paris", "", {"fr-ua-2024": "signed"}),
        # ... a party named later only in passing does not take a pact the headline gives to another
        (
            "Ukraine and Spain sign security pact",
            "Zelenskiy also met Scholz.",
            {"other-eu-ua-bilateral-2024": "signed"},
        ),
        (
            "Ukraine, Luxembourg sign security cooperation document at NATO summit",
            "Zelenskiy also met Biden.",
            {"other-eu-ua-bilateral-2024": "signed"},
        ),
        # an Article 5-style guarantee without membership vs membership itself
        (
            "Allies weigh NATO-like security guarantee for Ukraine without membership",
            "",
            {"it-article5-guarantee": "discussion"},
        ),
        (
            "NATO allies say Ukraine's path to NATO membership is irreversible",
            "",
            {"ukraine-nato-membership": "proposal"},
        ),
        ("Sweden completes NATO accession", "Stockholm joined the alliance on Thursday.", {}),
        ("Hungary opposes EU membership for Ukraine", "", {}),
        # Ukraine's bilateral agreements vs other countries' pacts
        ("Ukraine, Japan ink 10-year pact", "", {"jp-ua-2024": "signed"}),
        ("Kenya and Haiti sign security agreement on police deployment", "", {}),
        ("Armenia, France sign defence pact", "", {}),
        ("Russia and Iran sign 20-year treaty", "", {}),
        # this war's settlement vs other ceasefires
        ("US offers Ukraine security guarantees as part of Trump peace plan", "", {"us-security-backstop": "proposal"}),
        ("US offers Israel security guarantees in Gaza ceasefire deal", "", {}),
        # troops and Article 5 in other contexts
        (
            "European troops could deploy to Ukraine after a ceasefire, Macron says",
            "",
            {"reassurance-force": "discussion"},
        ),
        ("UK considers sending troops to Ukraine to bolster training", "", {}),
        ("US lawmakers worry Trump may put boots on the ground in Iran", "", {}),
        ("Poland invokes Article 4 as NATO debates Article 5", "", {}),
        # other languages
        ("Meloni: garanzie simili all'articolo 5 per l'Ucraina", "", {"it-article5-guarantee": "discussion"}),
        ("L'Ukraine et le Danemark ont signé un accord de sécurité", "", {"dk-ua-2024": "signed"}),
        ("Deutschland und die Ukraine unterzeichnen Sicherheitsabkommen", "", {"de-ua-2024": "signed"}),
        ("Україна та Канада підписали угоду про безпеку", "", {"ca-ua-2024": "signed"}),
        ("Koalition der Willigen berät über Truppen für die Ukraine", "", {"reassurance-force": "discussion"}),
    ],
)
def test_match_keeps_look_alikes_apart(matcher: Matcher, title: str, summary: str, expected: dict[str, str]) -> None:
    assert found(matcher, title, summary) == expected


def test_match_reads_html_and_mojibake(matcher: Matcher) -> None:
    mojibake_quotes = "\u201a\u00c4\u00f2", "\u201a\u00c4\u00f4"  # ‘ and ’ as UTF-8 read as Mac Roman
    summary = '<img src="x.jpg" /> Germany and Ukraine sign {}long term{} security deal <br />'.format(*mojibake_quotes)
    (match,) = matcher.match("Zelensky in Berlin", summary)
    assert (match.proposal, match.status) == ("de-ua-2024", "signed")
    assert match.status_sentence == "Germany and Ukraine sign 'long term' security deal"


def test_match_records_evidence_actors_and_version(matcher: Matcher) -> None:
    title = "Luxembourg signs security deal with Ukraine"
    summary = "The security agreements cover cyber defence. Oil prices fell."
    (match,) = matcher.match(title, summary)
    assert match.proposal == "other-eu-ua-bilateral-2024"
    assert match.actors == ("Luxembourg*",)
    assert match.alias == "security deal"
    assert match.sentences == (title, "The security agreements cover cyber defence.")
    assert match.status_sentence == title
    assert 0 < match.score <= 1
    assert match.matcher_version == MATCHER_VERSION


def test_match_tolerates_inflection_in_aliases(matcher: Matcher) -> None:
    assert found(matcher, "Ukraine signs security pacts with Germany", "") == {"de-ua-2024": "signed"}
    assert found(matcher, "Україна та Нідерланди підписали безпекову угоду", "") == {"nl-ua-2024": "signed"}


def test_matcher_uses_only_the_proposals_it_is_given() -> None:
    proposals = [ProposalConfig(id="x", title="X", aliases=["reassurance force"])]
    assert [m.proposal for m in Matcher(proposals).match("Reassurance force planned", "")] == ["x"]


# ---------------------------------------------------------------- normalisation properties
texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=200) | st.from_regex(
    r"(<[a-z]+[^<>]{0,10}>|&[a-z#0-9]{1,6};?|‚Äô|â€™|[A-Za-z .,'-]{1,20})+", fullmatch=True
)


@given(texts)
def test_normalize_text_is_idempotent_and_leaves_no_tags(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once
    assert "<" not in once and ">" not in once


@given(texts)
def test_fold_text_is_idempotent(text: str) -> None:
    once = fold_text(normalize_text(text))
    assert fold_text(once) == once


@given(texts, texts)
def test_match_never_raises(title: str, summary: str) -> None:
    for match in default_matcher().match(title, summary):
        assert match.status in ("discussion", "proposal", "signed")


def test_normalize_text_unescapes_and_strips() -> None:
    assert normalize_text("<p>Kyiv&#8217;s <b>pact</b>&nbsp;&amp; more</p>") == "Kyiv's pact & more"


def test_split_sentences_keeps_initials_together() -> None:
    text = "The U.S. President spoke. Mr. Smith agreed. Then it ended!"
    assert split_sentences(text) == ["The U.S. President spoke.", "Mr. Smith agreed.", "Then it ended!"]


# ---------------------------------------------------------------- the command
def cli() -> click.Group:
    group = click.Group("monitor")
    group.add_command(match_command, "match")
    return group


def test_match_command_writes_one_line_per_item_and_reports_bad_lines() -> None:
    lines = [
        json.dumps({"id": "a", "title": "Ukraine, Japan ink 10-year pact", "summary": ""}),
        "{not json",
        json.dumps({"id": "b", "title": "Weather in Kyiv"}),
        json.dumps({"title": "no id"}),
    ]
    result = CliRunner().invoke(cli(), ["match", "--config", str(DEFAULT_CONFIG_PATH)], input="\n".join(lines) + "\n")
    assert result.exit_code == 1
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert out[0]["id"] == "a"
    assert [(m["proposal"], m["status"]) for m in out[0]["matches"]] == [("jp-ua-2024", "signed")]
    assert out[0]["matches"][0]["evidence"] == "Ukraine, Japan ink 10-year pact"
    assert out[1] == {"id": "b", "matches": []}
    errors = result.stderr.splitlines()
    assert len(errors) == 2 and errors[0].startswith("line 2:") and errors[1].startswith("line 4:")


def test_match_command_turns_a_bad_config_into_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli(), ["match", "--config", str(tmp_path / "missing.yaml")], input="")
    assert result.exit_code == 2
    assert "no such configuration file" in result.stderr
    assert "Traceback" not in result.output


def test_match_command_has_help_with_example() -> None:
    result = CliRunner().invoke(cli(), ["match", "--help"])
    assert result.exit_code == 0 and "Example:" in result.output


def test_a_compile_in_another_thread_never_shows_a_matcher_half_built() -> None:
    # The parse threads of a poll share one matcher, compiled by the first match; two may compile it at once.
    matcher = Matcher(load_config(DEFAULT_CONFIG_PATH, env={}).proposals)
    items = [
        "Britain pledges troops for Ukraine after Trump rules out US troops",
        "US offers Ukraine Article 5-like protection",
        "Ukraine, Japan agree 10-year defence pact",
    ]
    expected = [matcher.match(title, "") for title in items]
    stop = threading.Event()

    def compile_again() -> None:
        while not stop.is_set():
            matcher._compile()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # threads take turns often, so that matching falls inside a compile
    recompiling = threading.Thread(target=compile_again)
    recompiling.start()
    try:
        found = [matcher._read(title, "", None) for _ in range(150) for title in items]  # never from memory
    finally:
        stop.set()
        recompiling.join()
        sys.setswitchinterval(interval)
    assert found == expected * 150


class CountingMatcher(Matcher):
    """A matcher that counts the items it actually reads."""

    reads = 0

    def _read(self, title: str, summary: str, published: date | None) -> list[Match]:
        self.reads += 1
        return super()._read(title, summary, published)


def test_matcher_reads_the_same_item_once_and_hands_out_copies() -> None:
    proposals = load_config(DEFAULT_CONFIG_PATH, env={}).proposals
    matcher = CountingMatcher(proposals, memo=3)
    title, summary = "Britain pledges troops for Ukraine", "A reassurance force after a ceasefire."
    first = matcher.match(title, summary)
    first.clear()  # a caller's list is its own
    again = matcher.match(title, summary)
    assert again == matcher._read(title, summary, None) and again and matcher.reads == 2
    assert matcher.match(title, summary, date(2026, 1, 5)) == again and matcher.reads == 3  # another day: read
    for n in range(4):  # the memory holds MEMO_SIZE readings: full, it starts again
        matcher.match(f"Ukraine news {n}", "")
    assert len(matcher._memo) <= 3
    matcher.match(title, summary)
    assert matcher.reads == 8  # forgotten when the memory started again
    assert pickle.loads(pickle.dumps(matcher))._memo == {}  # a parser process gets the rules, not the memory
    forgetful = CountingMatcher(proposals, memo=0)
    assert forgetful.match(title, summary) == forgetful.match(title, summary) == again
    assert forgetful.reads == 2 and forgetful._memo == {}
