"""Poll throughput: the Reuters replay corpus through a local HTTP server into a fresh SQLite file.

    python bench/bench_poll.py [--repeat N]

Prints snapshots per second and items per second (parse + store + match + history, one transaction per feed).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from monitor.config import load_config
from monitor.replay import find_snapshots, run_replay
from monitor.store.schema import open_database

ROOT = Path(__file__).resolve().parent.parent
REPLAY = ROOT.parent / "shared" / "corpus" / "real" / "replay_reuters_wl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    snapshots = find_snapshots(REPLAY)
    megabytes = sum(snapshot.path.stat().st_size for snapshot in snapshots) / 1e6
    best = float("inf")
    items = 0
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{folder}/bench.db"
            config = load_config(ROOT / "feeds.yaml", env={})
            engine = open_database(url)
            started = time.perf_counter()
            result = run_replay(config, engine, REPLAY)
            best = min(best, time.perf_counter() - started)
            items = result.items_new + result.items_updated
            engine.dispose()
    print(
        f"{len(snapshots)} snapshots ({megabytes:.1f} MB), {items} items stored: best of {args.repeat} "
        f"{best:.2f} s = {len(snapshots) / best:.1f} snapshots/s, {items / best:.0f} new items/s, "
        f"{megabytes / best:.1f} MB/s"
    )


if __name__ == "__main__":
    main()
