"""A labelled JSON Lines file x a `Matcher` -> matching and status scores, beside a keyword-only baseline.

Takes the path of a labels file in the format of eval/dev.jsonl (one object a line: id, title, summary,
labels: [{proposal, status, also?}], vague) and the proposals. Returns an `Evaluation`; `render_evaluation` turns
it into a small text table. Reads only the file it is given; touches no database, network or clock.

Scoring: precision, recall and F1 over (item, proposal) pairs, skipping items marked "vague"; status accuracy
over pairs both labelled and matched, where a status listed in the label's `also` counts as right. The baseline
matches an alias as a case-insensitive substring and takes the status from a bare keyword.

Halves: a file can be split by day into a half to tune rules on and a half only to measure on. The distinct
publication days of the file, in order, go alternately to `tune` (the 1st, 3rd, ...) and `measure` (the 2nd,
4th, ...); every item of one day falls in the same half, and items without a readable date go to `tune`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from monitor.config import ProposalConfig
from monitor.cues import ladder_status
from monitor.errors import MonitorError
from monitor.match import Matcher
from monitor.status import DEFAULT_LADDER, PROPOSAL, SIGNED

Predict = Callable[[str, str, date | None], dict[str, str]]
HALVES = ("all", "tune", "measure")


class LabelsError(MonitorError):
    """The labels file cannot be read or a line in it is not a labelled item."""


@dataclass(frozen=True)
class LabelledItem:
    id: str
    title: str
    summary: str
    labels: dict[str, frozenset[str]]  # proposal id -> statuses counted as right
    vague: bool
    day: date | None = None


@dataclass(frozen=True)
class Mistake:
    item: str
    proposal: str
    kind: str  # "false match", "missed", "status"
    detail: str


@dataclass(frozen=True)
class Scores:
    """Pair counts and the figures derived from them."""

    true_positives: int
    false_positives: int
    false_negatives: int
    status_right: int
    status_total: int
    mistakes: tuple[Mistake, ...] = field(default=(), repr=False)

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        labelled = self.true_positives + self.false_negatives
        return self.true_positives / labelled if labelled else 1.0

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0

    @property
    def status_accuracy(self) -> float:
        return self.status_right / self.status_total if self.status_total else 1.0


@dataclass(frozen=True)
class Evaluation:
    items: int
    skipped_vague: int
    matcher: Scores
    baseline: Scores
    name: str = ""


def pool(scores: Sequence[Scores]) -> Scores:
    """Several files' scores as one: the pair counts added up."""
    return Scores(
        sum(s.true_positives for s in scores),
        sum(s.false_positives for s in scores),
        sum(s.false_negatives for s in scores),
        sum(s.status_right for s in scores),
        sum(s.status_total for s in scores),
        tuple(m for s in scores for m in s.mistakes),
    )


def read_labels(path: str | os.PathLike[str]) -> list[LabelledItem]:
    """Every labelled item in the file; a broken line raises `LabelsError` naming the line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelsError(f"{path}: cannot be read: {exc}") from None
    items = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                items.append(_labelled_item(json.loads(line)))
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                raise LabelsError(f"{path}:{number}: not a labelled item: {exc}") from None
    return items


def _labelled_item(data: Any) -> LabelledItem:
    labels = {
        str(label["proposal"]): frozenset([str(label["status"]), *map(str, label.get("also", []))])
        for label in data.get("labels", [])
    }
    return LabelledItem(
        id=str(data["id"]),
        title=str(data.get("title") or ""),
        summary=str(data.get("summary") or ""),
        labels=labels,
        vague=bool(data.get("vague", False)),
        day=_day(str(data.get("published") or "")),
    )


def _day(published: str) -> date | None:
    """The publication day of an ISO 8601 or RFC 822 date, None if it is neither."""
    try:
        return date.fromisoformat(published[:10])
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(published).date()
    except (ValueError, TypeError, IndexError):
        return None


def split_by_day(items: Sequence[LabelledItem], half: str) -> list[LabelledItem]:
    """The items of one half ("tune" or "measure"; "all" keeps every item): whole days, alternately."""
    if half == "all":
        return list(items)
    if half not in HALVES:
        raise ValueError(f"unknown half {half!r}: use one of {', '.join(HALVES)}")
    days = sorted({item.day for item in items if item.day is not None})
    measured = set(days[1::2])
    return [item for item in items if (item.day in measured) == (half == "measure")]


def score(items: Iterable[LabelledItem], predict: Predict) -> Scores:
    """Compare one predictor's (proposal -> status) output with the labels, skipping vague items."""
    tp = fp = fn = right = total = 0
    mistakes: list[Mistake] = []
    for item in items:
        if item.vague:
            continue
        predicted = predict(item.title, item.summary, item.day)
        for proposal, status in sorted(predicted.items()):
            if proposal not in item.labels:
                fp += 1
                mistakes.append(Mistake(item.id, proposal, "false match", status))
                continue
            tp += 1
            total += 1
            if status in item.labels[proposal]:
                right += 1
            else:
                expected = "/".join(sorted(item.labels[proposal]))
                mistakes.append(Mistake(item.id, proposal, "status", f"{status}, labelled {expected}"))
        for proposal in sorted(set(item.labels) - set(predicted)):
            fn += 1
            mistakes.append(Mistake(item.id, proposal, "missed", "/".join(sorted(item.labels[proposal]))))
    return Scores(tp, fp, fn, right, total, tuple(mistakes))


def keyword_baseline(proposals: Sequence[ProposalConfig], ladder: Sequence[str] = DEFAULT_LADDER) -> Predict:
    """A predictor that finds aliases as plain substrings and reads the status from bare keywords."""
    aliases = [(p.id, [a.casefold() for a in p.aliases]) for p in proposals]

    def predict(title: str, summary: str, _published: date | None) -> dict[str, str]:
        text = f"{title} {summary}".casefold()
        level = SIGNED if "sign" in text else PROPOSAL if any(w in text for w in ("propos", "offer", "pledg")) else ""
        status = ladder_status(level, ladder) if level else ladder[0]
        return {pid: status for pid, names in aliases if any(name in text for name in names)}

    return predict


def matcher_predictor(matcher: Matcher) -> Predict:
    def predict(title: str, summary: str, published: date | None) -> dict[str, str]:
        return {m.proposal: m.status for m in matcher.match(title, summary, published)}

    return predict


def evaluate(
    path: str | os.PathLike[str],
    proposals: Sequence[ProposalConfig],
    ladder: Sequence[str] = DEFAULT_LADDER,
    *,
    half: str = "all",
    matcher: Matcher | None = None,
) -> Evaluation:
    """Score the matcher and the keyword baseline on one labels file (or one half of it)."""
    items = split_by_day(read_labels(path), half)
    matcher = matcher or Matcher(proposals, ladder)
    name = str(path) if half == "all" else f"{path} ({half} half)"
    return Evaluation(
        items=len(items),
        skipped_vague=sum(item.vague for item in items),
        matcher=score(items, matcher_predictor(matcher)),
        baseline=score(items, keyword_baseline(proposals, ladder)),
        name=name,
    )


def evaluate_files(
    paths: Sequence[str | os.PathLike[str]],
    proposals: Sequence[ProposalConfig],
    ladder: Sequence[str] = DEFAULT_LADDER,
    *,
    half: str = "all",
) -> list[Evaluation]:
    """Each file's evaluation and, for more than one file, the pooled figures last."""
    matcher = Matcher(proposals, ladder)
    results = [evaluate(path, proposals, ladder, half=half, matcher=matcher) for path in paths]
    if len(results) > 1:
        results.append(
            Evaluation(
                items=sum(r.items for r in results),
                skipped_vague=sum(r.skipped_vague for r in results),
                matcher=pool([r.matcher for r in results]),
                baseline=pool([r.baseline for r in results]),
                name=f"pooled, {len(results)} files" + ("" if half == "all" else f" ({half} halves)"),
            )
        )
    return results


_ROW_NAMES = ("precision", "recall", "F1", "status accuracy", "pairs tp/fp/fn")


def _cells(s: Scores) -> tuple[str, ...]:
    return (
        f"{s.precision:.3f}",
        f"{s.recall:.3f}",
        f"{s.f1:.3f}",
        f"{s.status_accuracy:.3f} ({s.status_right}/{s.status_total})",
        f"{s.true_positives}/{s.false_positives}/{s.false_negatives}",
    )


def render_evaluation(result: Evaluation, *, mistakes: bool = False) -> str:
    """A small plain-text table of both predictors; with `mistakes`, the matcher's errors below it."""
    rows = [("", "matcher", "keyword baseline")]
    for name, cells in zip(_ROW_NAMES, zip(_cells(result.matcher), _cells(result.baseline), strict=True), strict=True):
        rows.append((name, *cells))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    heading = f"{result.items} items, {result.skipped_vague} vague skipped"
    lines = [f"{result.name}: {heading}" if result.name else heading]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    if mistakes:
        lines += ["", "matcher mistakes:"]
        lines += [f"  {m.item}  {m.proposal}  {m.kind}: {m.detail}" for m in result.matcher.mistakes]
    return "\n".join(lines)
