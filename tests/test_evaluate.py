"""Evaluation: pair scoring, the keyword baseline, the rendered table and the `monitor eval` command."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from monitor.cli.match import eval_command
from monitor.config import DEFAULT_CONFIG_PATH, ProposalConfig, load_config
from monitor.evaluate import (
    LabelsError,
    evaluate,
    evaluate_files,
    keyword_baseline,
    read_labels,
    render_evaluation,
    score,
    split_by_day,
)

from .conftest import EVAL

PROPOSALS = [
    ProposalConfig(id="jp", title="Japan pact", aliases=["security pact"], actors=["Japan"], required=["@actor"]),
    ProposalConfig(id="force", title="Force", aliases=["reassurance force"]),
]


def write_labels(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


ROWS: list[dict[str, object]] = [
    {
        "id": "1",
        "title": "Ukraine, Japan sign security pact",
        "summary": "",
        "labels": [{"proposal": "jp", "status": "signed"}],
        "vague": False,
    },
    {
        "id": "2",
        "title": "Japan will sign security pact",
        "summary": "",
        "labels": [{"proposal": "jp", "status": "discussion", "also": ["proposal"]}],
        "vague": False,
    },
    {"id": "3", "title": "Security pact with Canada", "summary": "", "labels": [], "vague": False},
    {"id": "4", "title": "Leaders discuss a reassurance force", "summary": "", "labels": [], "vague": True},
    {
        "id": "5",
        "title": "Talks on Ukraine",
        "summary": "",
        "labels": [{"proposal": "force", "status": "discussion"}],
        "vague": False,
    },
]


def test_evaluate_counts_pairs_skips_vague_and_accepts_also(tmp_path: Path) -> None:
    result = evaluate(write_labels(tmp_path / "labels.jsonl", ROWS), PROPOSALS)
    scores = result.matcher
    assert (result.items, result.skipped_vague) == (5, 1)
    assert (scores.true_positives, scores.false_positives, scores.false_negatives) == (2, 0, 1)
    assert (scores.status_right, scores.status_total) == (2, 2)  # item 2: "proposal" is listed in also
    assert scores.precision == 1.0 and scores.recall == pytest.approx(2 / 3)
    assert [m.kind for m in scores.mistakes] == ["missed"]


def test_keyword_baseline_matches_substrings_and_reads_bare_keywords(tmp_path: Path) -> None:
    items = read_labels(write_labels(tmp_path / "labels.jsonl", ROWS))
    predict = keyword_baseline(PROPOSALS)
    assert predict("Security pact with Canada", "", None) == {"jp": "discussion"}
    assert predict("Japan will sign security pact", "", None) == {"jp": "signed"}
    scores = score(items, predict)
    assert (scores.true_positives, scores.false_positives) == (2, 1)


def test_render_evaluation_shows_both_predictors(tmp_path: Path) -> None:
    text = render_evaluation(evaluate(write_labels(tmp_path / "l.jsonl", ROWS), PROPOSALS), mistakes=True)
    assert "matcher" in text and "keyword baseline" in text and "precision" in text
    assert "5  force  missed: discussion" in text


def test_read_labels_names_the_broken_line(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text('{"id": "1", "title": "x"}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(LabelsError, match=r"labels.jsonl:2: "):
        read_labels(path)


DEV = EVAL / "dev.jsonl"


def test_default_proposals_meet_the_targets_on_dev() -> None:
    config = load_config(DEFAULT_CONFIG_PATH, env={})
    result = evaluate(DEV, config.proposals, config.settings.status.ladder)
    assert result.matcher.precision >= 0.95
    assert result.matcher.recall >= 0.90
    assert result.matcher.status_accuracy >= 0.90
    assert result.matcher.f1 > result.baseline.f1


def cli() -> click.Group:
    group = click.Group("monitor")
    group.add_command(eval_command, "eval")
    return group


def test_eval_command_prints_the_table(tmp_path: Path) -> None:
    labels = write_labels(tmp_path / "labels.jsonl", ROWS)
    result = CliRunner().invoke(cli(), ["eval", str(labels), "--config", str(DEFAULT_CONFIG_PATH)])
    assert result.exit_code == 0, result.output
    assert "keyword baseline" in result.stdout


def test_eval_command_reports_a_missing_file_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli(), ["eval", str(tmp_path / "none.jsonl"), "--config", str(DEFAULT_CONFIG_PATH)])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1


def test_eval_command_has_help_with_example() -> None:
    result = CliRunner().invoke(cli(), ["eval", "--help"])
    assert result.exit_code == 0 and "Example:" in result.output


def test_split_by_day_keeps_whole_days_and_alternates(tmp_path: Path) -> None:
    days = ["2025-03-01T08:00:00+00:00", "Sun, 02 Mar 2025 10:00:00 GMT", "2025-03-03", "2025-03-01T21:00:00Z"]
    rows = [dict(ROWS[2], id=str(n), published=day) for n, day in enumerate(days)] + [dict(ROWS[2], id="x")]
    items = read_labels(write_labels(tmp_path / "labels.jsonl", rows))
    tune, measure = split_by_day(items, "tune"), split_by_day(items, "measure")
    assert [i.id for i in tune] == ["0", "2", "3", "x"]  # days 1 and 3, and the undated item
    assert [i.id for i in measure] == ["1"]
    assert split_by_day(items, "all") == items


def test_eval_command_scores_each_file_and_pools_them(tmp_path: Path) -> None:
    first = write_labels(tmp_path / "a.jsonl", ROWS[:2])
    second = write_labels(tmp_path / "b.jsonl", ROWS[2:])
    results = evaluate_files([first, second], PROPOSALS)
    assert [r.name for r in results] == [str(first), str(second), "pooled, 2 files"]
    pooled = results[-1].matcher
    assert pooled.true_positives == sum(r.matcher.true_positives for r in results[:2])
    assert pooled.false_negatives == sum(r.matcher.false_negatives for r in results[:2])
    config = tmp_path / "feeds.yaml"
    config.write_text(Path(DEFAULT_CONFIG_PATH).read_text(encoding="utf-8"), encoding="utf-8")
    out = CliRunner().invoke(eval_command, [str(first), str(second), "--half", "measure", "--config", str(config)])
    assert out.exit_code == 0, out.output
    assert "pooled, 2 files (measure halves)" in out.output and f"{first} (measure half)" in out.output
