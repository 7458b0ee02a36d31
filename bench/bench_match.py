"""How many items a second the matcher handles on one core, against the default feeds.yaml proposals.

The workload: every title and summary of eval/dev.jsonl, plus the items of the Reuters replay feeds
(corpus/real/replay_reuters_wl, parsed with feedparser), repeated to about 20,000 items. Matcher construction is
timed separately. The matcher's memory of recent readings is off: every item is read, as every distinct
report in a poll is. Run from the project root:

    python bench/bench_match.py [--items 20000] [--repeat 3] [--dev PATH] [--replay DIR]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import time
from pathlib import Path

import feedparser

from monitor.config import load_config
from monitor.match import Matcher

SHARED = Path(os.environ.get("GUARANTEE_WATCH_SHARED", "/work/shared"))
TARGET = 5000


def _items(dev: Path, replay: Path) -> list[tuple[str, str]]:
    items = []
    for line in dev.read_text(encoding="utf-8").splitlines():
        if line.strip():
            data = json.loads(line)
            items.append((data.get("title") or "", data.get("summary") or ""))
    for path in sorted(glob.glob(str(replay / "*.xml"))):
        for entry in feedparser.parse(path).entries:
            items.append((entry.get("title", ""), entry.get("summary", "")))
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dev", type=Path, default=SHARED / "eval" / "dev.jsonl")
    parser.add_argument("--replay", type=Path, default=SHARED / "corpus" / "real" / "replay_reuters_wl")
    args = parser.parse_args()

    base = _items(args.dev, args.replay)
    workload = (base * (args.items // len(base) + 1))[: args.items]
    proposals = load_config(None).proposals

    started = time.perf_counter()
    matcher = Matcher(proposals, memo=0)  # every item read: the workload repeats, and a reading it remembered
    built = time.perf_counter() - started  # would cost nothing

    timings = []
    for _ in range(args.repeat):  # the best of a few runs: other processes on the machine only slow it down
        matched = 0
        started = time.process_time()
        for title, summary in workload:
            matched += bool(matcher.match(title, summary))
        timings.append(time.process_time() - started)
    elapsed = min(timings)

    rate = len(workload) / elapsed
    print(f"matcher built in {built * 1000:.1f} ms for {len(proposals)} proposals")
    print(f"{len(workload)} items ({len(base)} distinct), {matched} matched")
    print(f"{elapsed:.2f} s CPU (best of {args.repeat} runs)")
    print(f"{rate:,.0f} items/second on one core (target {TARGET:,}): {'ok' if rate >= TARGET else 'TOO SLOW'}")


if __name__ == "__main__":
    main()
