"""`monitor poll` against newsboat, lemon24/reader and rss2email on one workload, side by side.

    python bench/peers.py [--feeds 300] [--rounds 3] [--sizes 100,300,1000,2000] [--skip rss2email] [--json-out FILE]
                          [--scratch DIR]

The workload: N feeds of 50 real items each (windows of the Reuters snapshots in ../shared/corpus/real/),
spread over 20 loopback hosts (127.0.0.2 ... 127.0.0.21) that add 100 ms of latency to every request and
answer conditional GETs (ETag, Last-Modified -> 304). Every tool polls every feed twice: cold (an empty
database) and warm (nothing changed: all 304), in each of `--rounds` rounds that take the tools in turn; each
figure is the median of the rounds, with the fastest and slowest beside it (one run's ratio on a shared machine
moves by a quarter either way). Peak RSS is the largest resident set of the tool's whole
process tree, sampled every 50 ms (and never below what the kernel reports for its largest process).

Peers run when installed: newsboat (`apt-get install newsboat`, 16 reload threads), rss2email (`apt-get
install rss2email`) and reader (`python3 -m venv /work/peers-venv && /work/peers-venv/bin/pip install
reader`, or set PEERS_PYTHON to a Python that has it; 16 workers). `monitor` runs with the configuration's
`concurrency: 40` and `per_host: 2`: at 16 fetches in flight, 300 feeds at 100 ms each need ~1.9 s of
network alone. Then `monitor` runs alone at each of `--sizes` feeds to show how its cost grows. Its bytecode
is compiled first, as a server's first run leaves it and as pip left the peers' packages: where
PYTHONDONTWRITEBYTECODE is set (as on the machine these figures come from), every run would compile the package
again (docs/deployment.md).

Every tool keeps its files (database, cache) in a folder under `--scratch` (the system's temporary folder by
default), whose filesystem the output names: a tool that syncs each write to disk, as newsboat's SQLite cache
does, pays the disk's sync latency there (on the disk of the machine these figures come from, newsboat's cold
run took 7.0 s, and 4.1 s with `--scratch /dev/shm`), so compare runs made on the same filesystem.

Loopback only; every tool run has a time limit (`--timeout`); the servers stop when the script ends.
Prints one table, then the figures as JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import quoteattr

import yaml

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "real" / "replay_reuters_wl"
HOSTS = [f"127.0.0.{n}" for n in range(2, 22)]
ITEMS_PER_FEED = 50
LATENCY = 0.1
LAST_MODIFIED = 1_785_000_000.0  # one fixed time for every feed
PEERS_PYTHON = os.environ.get("PEERS_PYTHON", "/work/peers-venv/bin/python")
_ITEM = re.compile(rb"<item\b.*?</item>", re.DOTALL)


# --- the workload ----------------------------------------------------------------------------------------
class Corpus:
    """Each snapshot split into its channel head, its items and its tail: feed i is a 50-item window of one."""

    def __init__(self, folder: Path) -> None:
        self.snapshots: list[tuple[bytes, list[bytes], bytes]] = []
        for path in sorted(folder.glob("*.xml")):
            data = path.read_bytes()
            items = _ITEM.findall(data)
            head = data[: data.index(items[0])]
            tail = data[data.rindex(items[-1]) + len(items[-1]) :]
            self.snapshots.append((head, items, tail))

    def window(self, feed: int) -> tuple[int, int]:
        snapshot = feed % len(self.snapshots)
        items = self.snapshots[snapshot][1]
        start = (feed // len(self.snapshots)) * 7 % max(1, len(items) - ITEMS_PER_FEED + 1)
        return snapshot, start

    def body(self, feed: int) -> bytes:
        snapshot, start = self.window(feed)
        head, items, tail = self.snapshots[snapshot]
        return head + b"".join(items[start : start + ITEMS_PER_FEED]) + tail

    def etag(self, feed: int) -> str:
        return '"' + hashlib.sha256(repr(self.window(feed)).encode()).hexdigest()[:20] + '"'


class Servers:
    """One threaded HTTP server per loopback host; `/feed/<i>.xml` serves feed i after `LATENCY` seconds."""

    def __init__(self, corpus: Corpus) -> None:
        self.counts = {"200": 0, "304": 0, "404": 0}
        lock = threading.Lock()
        last_modified = formatdate(LAST_MODIFIED, usegmt=True)
        counts = self.counts

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_GET(self) -> None:  # the http.server protocol
                time.sleep(LATENCY)
                match = re.fullmatch(r"/feed/(\d+)\.xml", self.path)
                if match is None:
                    self._answer(404, b"not found\n", {})
                    return
                feed = int(match.group(1))
                etag = corpus.etag(feed)
                headers = {"ETag": etag, "Last-Modified": last_modified}
                if self._fresh(etag):
                    self._answer(304, b"", headers)
                else:
                    headers["Content-Type"] = "application/rss+xml; charset=utf-8"
                    self._answer(200, corpus.body(feed), headers)

            def _fresh(self, etag: str) -> bool:
                if (tags := self.headers.get("If-None-Match")) is not None:
                    return etag in [tag.strip() for tag in tags.split(",")] or tags.strip() == "*"
                if (since := self.headers.get("If-Modified-Since")) is not None:
                    try:
                        return parsedate_to_datetime(since).timestamp() >= LAST_MODIFIED
                    except (TypeError, ValueError):
                        return False
                return False

            def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                with lock:
                    counts[str(status)] += 1
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256

        self._servers = [Server((host, 0), Handler) for host in HOSTS]
        self._threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in self._servers]

    def url(self, feed: int) -> str:
        index = feed % len(self._servers)
        return f"http://{HOSTS[index]}:{self._servers[index].server_port}/feed/{feed}.xml"

    def reset_counts(self) -> dict[str, int]:
        seen = dict(self.counts)
        for key in self.counts:
            self.counts[key] = 0
        return seen

    def __enter__(self) -> Servers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()


# --- measuring one run -----------------------------------------------------------------------------------
@dataclass
class Run:
    seconds: float | None  # None: failed or timed out
    peak_rss_mb: float
    responses: dict[str, int]
    note: str = ""


def _tree_rss(root: int) -> int:
    """Resident bytes of `root` and all its descendants, from /proc."""
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    family, grew = {root}, True
    while grew:
        kids = {pid for pid, parent in parents.items() if parent in family} - family
        family |= kids
        grew = bool(kids)
    total = 0
    for pid in family:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            pass
    return total


def measure(cmd: Sequence[str], *, cwd: Path, env: dict[str, str], servers: Servers, timeout: float) -> Run:
    servers.reset_counts()
    log = open(cwd / "output.log", "ab")  # closed below
    started = time.perf_counter()
    process = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=log, start_new_session=True)
    peak = 0
    try:
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - started > timeout:
                os.killpg(process.pid, signal.SIGKILL)
                os.wait4(process.pid, 0)
                return Run(None, peak / 2**20, servers.reset_counts(), f"timed out after {timeout:.0f} s")
            peak = max(peak, _tree_rss(process.pid))
            time.sleep(0.05)
    finally:
        log.close()
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    peak = max(peak, usage.ru_maxrss * 1024)
    note = "" if process.returncode == 0 else f"exit {process.returncode}, see {cwd / 'output.log'}"
    return Run(elapsed if process.returncode == 0 else None, peak / 2**20, servers.reset_counts(), note)


# --- the tools -------------------------------------------------------------------------------------------
Runner = Callable[[Path, Servers, int, float], tuple[Run, Run]]


def _env(folder: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MONITOR_")}
    env.update(HOME=str(folder), NO_PROXY="*", no_proxy="*")
    for key in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        env.pop(key, None)
    return env


def run_monitor(folder: Path, servers: Servers, feeds: int, timeout: float) -> tuple[Run, Run]:
    import monitor

    package = Path(monitor.__file__).parent
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True, capture_output=True)
    config = yaml.safe_load((ROOT / "feeds.yaml").read_text())
    config["settings"]["database_url"] = f"sqlite:///{folder / 'monitor.db'}"
    config["settings"]["poll"].update(concurrency=40, per_host=2)
    config["sources"] = [
        {"id": f"feed-{i}", "name": f"Feed {i}", "url": servers.url(i), "tier": "media", "language": "en"}
        for i in range(feeds)
    ]
    (folder / "feeds.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    script = Path(sys.executable).with_name("monitor")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "monitor"]
    command += ["poll", "--force", "--json", "--config", str(folder / "feeds.yaml")]
    env = _env(folder)
    return tuple(measure(command, cwd=folder, env=env, servers=servers, timeout=timeout) for _ in range(2))  # type: ignore[return-value]


def run_newsboat(folder: Path, servers: Servers, feeds: int, timeout: float) -> tuple[Run, Run]:
    (folder / "urls").write_text("".join(servers.url(i) + "\n" for i in range(feeds)))
    (folder / "config").write_text("reload-threads 16\ndownload-timeout 60\n")
    command = ["newsboat", "-x", "reload", "-u", "urls", "-c", "cache.db", "-C", "config"]
    env = _env(folder)
    return tuple(measure(command, cwd=folder, env=env, servers=servers, timeout=timeout) for _ in range(2))  # type: ignore[return-value]


def run_rss2email(folder: Path, servers: Servers, feeds: int, timeout: float) -> tuple[Run, Run]:
    outlines = "".join(
        f"<outline text={quoteattr(f'feed-{i}')} xmlUrl={quoteattr(servers.url(i))}/>\n" for i in range(feeds)
    )
    (folder / "feeds.opml").write_text(f'<?xml version="1.0"?>\n<opml version="1.0"><body>\n{outlines}</body></opml>\n')
    base = ["r2e", "-c", "r2e.cfg", "-d", "r2e.json"]
    env = _env(folder)
    for step in (["new", "bench@example.invalid"], ["opmlimport", "feeds.opml"]):
        subprocess.run(base + step, cwd=folder, env=env, check=True, capture_output=True, timeout=120)
    command = [*base, "run", "--no-send"]
    return tuple(measure(command, cwd=folder, env=env, servers=servers, timeout=timeout) for _ in range(2))  # type: ignore[return-value]


READER_SCRIPT = """
import sys
from reader import make_reader
reader = make_reader(sys.argv[1])
if sys.argv[2] == "add":
    for url in open(sys.argv[3]).read().split():
        reader.add_feed(url, exist_ok=True)
else:
    reader.update_feeds(scheduled=False, workers=16)
reader.close()
"""


def run_reader(folder: Path, servers: Servers, feeds: int, timeout: float) -> tuple[Run, Run]:
    (folder / "urls").write_text("".join(servers.url(i) + "\n" for i in range(feeds)))
    (folder / "reader_bench.py").write_text(READER_SCRIPT)
    env = _env(folder)
    add = [PEERS_PYTHON, "reader_bench.py", "reader.sqlite", "add", "urls"]
    subprocess.run(add, cwd=folder, env=env, check=True, capture_output=True, timeout=120)
    command = [PEERS_PYTHON, "reader_bench.py", "reader.sqlite", "update"]
    return tuple(measure(command, cwd=folder, env=env, servers=servers, timeout=timeout) for _ in range(2))  # type: ignore[return-value]


def _reader_installed() -> bool:
    if not Path(PEERS_PYTHON).exists():
        return False
    return subprocess.run([PEERS_PYTHON, "-c", "import reader"], capture_output=True).returncode == 0


TOOLS: dict[str, tuple[str, Runner, Callable[[], bool]]] = {
    "monitor": ("monitor poll --force (concurrency 40)", run_monitor, lambda: True),
    "newsboat": ("newsboat -x reload, 16 reload threads", run_newsboat, lambda: shutil.which("newsboat") is not None),
    "reader": ("lemon24/reader update_feeds, 16 workers", run_reader, _reader_installed),
    "rss2email": ("rss2email run --no-send", run_rss2email, lambda: shutil.which("r2e") is not None),
}


# --- the report ------------------------------------------------------------------------------------------
def _version(name: str) -> str:
    commands = {
        "newsboat": ["newsboat", "-v"],
        "rss2email": ["r2e", "--version"],
        "reader": [PEERS_PYTHON, "-c", "import reader; print(reader.__version__)"],
        "monitor": [sys.executable, "-c", "import monitor; print(monitor.__version__)"],
    }
    try:
        out = subprocess.run(commands[name], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return "?"
    found = re.search(r"\d+(\.\d+)+", out)
    return found.group(0) if found else "?"


def _interpreter(name: str) -> str | None:
    """The Python a Python tool runs on, with its version (a Python built with PGO and LTO, as Debian's is,
    runs the same code faster than one built without, as pyenv builds by default: docs/deployment.md)."""
    if name == "monitor":
        python = sys.executable
    elif name == "reader":
        python = PEERS_PYTHON
    elif name == "rss2email" and (script := shutil.which("r2e")):
        first = Path(script).read_bytes()[:200].split(b"\n", 1)[0]
        python = first[2:].decode(errors="replace").strip() if first.startswith(b"#!") else "?"
    else:
        return None
    try:
        out = subprocess.run([*python.split(), "-c", "import sys; print(sys.version.split()[0])"], capture_output=True,
                             text=True, timeout=30).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        out = ""
    return f"{python} ({out or '?'})"


def _seconds(run: Run) -> str:
    return f"{run.seconds:.2f}" if run.seconds is not None else "failed"


def _row(label: str, cold: Run, warm: Run, rounds: Sequence[tuple[Run, Run]] = ()) -> str:
    responses = f"{cold.responses.get('200', 0)}x200 / {warm.responses.get('304', 0)}x304"
    peak = max(cold.peak_rss_mb, warm.peak_rss_mb)
    note = "; ".join(note for note in (cold.note, warm.note) if note)
    spread = [_spread([pair[phase] for pair in rounds]) for phase in (0, 1)] if len(rounds) > 1 else ["", ""]
    return f"| {label} | {_seconds(cold)}{spread[0]} | {_seconds(warm)}{spread[1]} | {peak:.0f} | {responses} |" + (
        " " + note if note else ""
    )


def _spread(runs: Sequence[Run]) -> str:
    times = [run.seconds for run in runs if run.seconds is not None]
    return f" ({min(times):.2f}-{max(times):.2f})" if times else ""


def _ratio(mine: float | None, theirs: float | None) -> float | None:
    return round(mine / theirs, 3) if mine and theirs else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=300, help="feeds in the side-by-side run")
    parser.add_argument("--rounds", type=int, default=3, help="side-by-side rounds; each figure is their median")
    parser.add_argument("--sizes", default="100,300,1000,2000", help="feed counts for monitor alone ('' for none)")
    parser.add_argument("--skip", action="append", default=[], choices=sorted(TOOLS), help="leave a tool out")
    parser.add_argument("--timeout", type=float, default=300, help="seconds allowed for one run of one tool")
    parser.add_argument("--json-out", type=Path, help="also write the JSON here")
    parser.add_argument("--scratch", type=Path, help="where the tools keep their files (default: the temporary folder)")
    args = parser.parse_args()
    corpus = Corpus(CORPUS)
    scratch_root = Path(args.scratch or tempfile.gettempdir()).resolve()
    filesystem = _filesystem(scratch_root)
    figures: dict[str, object] = {
        "workload": {"feeds": args.feeds, "items_per_feed": ITEMS_PER_FEED, "hosts": len(HOSTS), "latency_s": LATENCY},
        "cpus": os.cpu_count(),
        "rounds": args.rounds,
        "scratch": {"path": str(scratch_root), "filesystem": filesystem},
    }
    results: dict[str, dict[str, object]] = {}
    lines = [
        "| tool | cold s | warm s | peak RSS MB | responses (cold 200 / warm 304) |",
        "|---|---|---|---|---|",
    ]
    tools = {name: tool for name, tool in TOOLS.items() if name not in args.skip and tool[2]()}
    for name in TOOLS.keys() - tools.keys():
        print(f"{name}: skipped ({'--skip' if name in args.skip else 'not installed'})", file=sys.stderr)
    runs: dict[str, list[tuple[Run, Run]]] = {name: [] for name in tools}
    interpreters: dict[str, str | None] = {}
    with Servers(corpus) as servers, tempfile.TemporaryDirectory(prefix="peers-", dir=scratch_root) as scratch:
        for round_ in range(1, args.rounds + 1):  # the tools in turn, round after round: a slow spell hits all
            for name, (_label, runner, _installed) in tools.items():
                if name not in runs:  # left out in an earlier round
                    continue
                folder = Path(scratch, f"{name}-{round_}")
                folder.mkdir()
                print(f"{name}: {args.feeds} feeds, cold then warm (round {round_}) ...", file=sys.stderr, flush=True)
                try:
                    runs[name].append(runner(folder, servers, args.feeds, args.timeout))
                except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                    said = (getattr(exc, "stderr", None) or b"").decode(errors="replace").strip().splitlines()
                    print(f"{name}: left out: {exc}{': ' + said[-1] if said else ''}", file=sys.stderr)
                    del runs[name]
        for name, pairs in runs.items():
            cold, warm = _median([c for c, _ in pairs]), _median([w for _, w in pairs])
            version = _version(name)
            interpreters[name] = _interpreter(name)
            lines.append(_row(f"{tools[name][0]} ({version})", cold, warm, pairs))
            results[name] = {
                "version": version,
                "python": interpreters[name],
                "cold": asdict(cold),
                "warm": asdict(warm),
                "rounds": {"cold": [c.seconds for c, _ in pairs], "warm": [w.seconds for _, w in pairs]},
            }
        scaling = []
        for size in [int(size) for size in args.sizes.split(",") if size.strip()]:
            folder = Path(scratch, f"monitor-{size}")
            folder.mkdir()
            print(f"monitor alone: {size} feeds ...", file=sys.stderr, flush=True)
            cold, warm = run_monitor(folder, servers, size, args.timeout)
            scaling.append({"feeds": size, "cold": asdict(cold), "warm": asdict(warm)})
    figures["tools"] = results
    figures["scaling"] = scaling
    figures["ratios"] = _ratios(results)
    print(
        f"{args.feeds} feeds x {ITEMS_PER_FEED} items, {len(HOSTS)} loopback hosts, {LATENCY * 1000:.0f} ms latency, "
        f"{os.cpu_count()} CPUs; files in {scratch_root} ({filesystem}); median of {args.rounds} rounds "
        "(fastest-slowest)\n"
    )
    print("\n".join(lines))
    on = [f"{name} on {python}" for name, python in interpreters.items() if python]
    if on:
        print("\nPython: " + "; ".join(on))
    if scaling:
        print("\n| monitor, feeds | cold s | warm s | peak RSS MB | cold s per 100 feeds |\n|---|---|---|---|---|")
        for row in scaling:
            cold, warm = Run(**row["cold"]), Run(**row["warm"])  # type: ignore[arg-type]
            per = f"{cold.seconds / int(row['feeds']) * 100:.2f}" if cold.seconds else "-"  # type: ignore[call-overload]
            peak = max(cold.peak_rss_mb, warm.peak_rss_mb)
            print(f"| {row['feeds']} | {_seconds(cold)} | {_seconds(warm)} | {peak:.0f} | {per} |")
    print("\nratios (monitor / peer, medians): " + json.dumps(figures["ratios"]))
    text = json.dumps(figures, indent=2)
    print("\n" + text)
    if args.json_out:
        args.json_out.write_text(text + "\n")


def _filesystem(path: Path) -> str:
    """The type and source of the filesystem `path` is on (from /proc/self/mounts), or "?" where unknown."""
    try:
        mounts = [line.split()[:3] for line in Path("/proc/self/mounts").read_text().splitlines()]
    except OSError:
        return "?"
    # mount points escape spaces and such as octal (\040): decoded, the longest one above `path` holds it
    decoded = [(point.encode().decode("unicode_escape"), kind, source) for source, point, kind in mounts]
    above = [m for m in decoded if path == Path(m[0]) or Path(m[0]) in path.parents]
    if not above:
        return "?"
    point, kind, source = max(above, key=lambda m: len(m[0]))
    return f"{kind} on {source}, mounted at {point}"


def _median(runs: Sequence[Run]) -> Run:
    """The run with the median time (the slower middle one of an even count); a failed run counts as the
    slowest. Its peak RSS is the largest of all the rounds'."""
    ordered = sorted(runs, key=lambda run: (run.seconds is None, run.seconds or 0.0))
    middle = ordered[len(ordered) // 2]
    return Run(middle.seconds, max(run.peak_rss_mb for run in runs), middle.responses, middle.note)


def _ratios(results: dict[str, dict[str, object]]) -> dict[str, float | None]:
    def seconds(name: str, phase: str) -> float | None:
        run = results.get(name, {}).get(phase)
        return run["seconds"] if isinstance(run, dict) else None

    ratios: dict[str, float | None] = {}
    for peer in ("newsboat", "reader", "rss2email"):
        if peer in results:
            ratios[f"cold_vs_{peer}"] = _ratio(seconds("monitor", "cold"), seconds(peer, "cold"))
            ratios[f"warm_vs_{peer}"] = _ratio(seconds("monitor", "warm"), seconds(peer, "warm"))
    warm_peers = [s for peer in ("newsboat", "reader", "rss2email") if (s := seconds(peer, "warm"))]
    if warm_peers:
        ratios["warm_vs_fastest_peer"] = _ratio(seconds("monitor", "warm"), min(warm_peers))
    return ratios


if __name__ == "__main__":
    main()
