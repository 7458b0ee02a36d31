"""Hostile XML, served over HTTP on 127.0.0.1 and polled by `python -m monitor poll` in a subprocess with a
memory ceiling: entity expansion (billion laughs, and its quadratic cousin) and external entities (XXE)
reading `/etc/passwd` and a local file holding a secret marker.

The poll must stay within time and memory bounds, store nothing from the files (the whole database, every
byte of it and its WAL, is searched), record the hostile feed as ok-with-nothing-dangerous or as a feed error
with a clear message, and still store the ordinary feed polled beside it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from monitor.feedserver import FeedServer, Response

from ..conftest import ROOT, SIGNED_DK, rss, write_config
from .harness import TALLY, check_storage, connect, database_files, monitor_env

ADDRESS_SPACE_LIMIT = 2 * 2**30  # the child's ceiling: a runaway expansion fails instead of swapping the machine
PEAK_RSS_LIMIT = 250 * 2**20  # an ordinary poll of these two small feeds peaks near 100 MiB
TIME_LIMIT = 60.0
CHANNEL = '<rss version="2.0"><channel><title>hostile</title><link>https://hostile.example/</link>{}</channel></rss>'


def _item(guid: str, title: str, summary: str) -> str:
    return f"<item><guid>{guid}</guid><title>{title}</title><description>{summary}</description></item>"


def billion_laughs() -> bytes:
    """Ten levels of ten references each: 10**9 "lol"s (3 GB) from under 1 KB."""
    levels = ['<!ENTITY lol0 "lol">'] + [f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)]
    doctype = "<!DOCTYPE rss [\n" + "\n".join(levels) + "\n]>\n"
    body = CHANNEL.format(_item("laughs", "&lol9;", "&lol9; &lol8;"))
    return f'<?xml version="1.0"?>\n{doctype}{body}'.encode()


def quadratic_blowup(encoding: str = "utf-8") -> bytes:
    """One 20 KB entity referenced 4,000 times: 80 MB from a 32 KB feed, with no nesting for a parser to
    refuse (the "quadratic blowup" variant). In UTF-16 too, where a check of the raw bytes sees nothing."""
    doctype = f'<!DOCTYPE rss [\n<!ENTITY a "{"A" * 20_000}">\n]>\n'
    body = CHANNEL.format(_item("quadratic", "Quadratic", "&a;" * 4_000))
    return f'<?xml version="1.0" encoding="{encoding}"?>\n{doctype}{body}'.encode(encoding)


def external_entities(secret: Path) -> bytes:
    """General, parameter and DOCTYPE-level external entities pointing at local files."""
    doctype = (
        "<!DOCTYPE rss [\n"
        '<!ENTITY passwd SYSTEM "file:///etc/passwd">\n'
        f'<!ENTITY secret SYSTEM "file://{secret}">\n'
        f'<!ENTITY % remote SYSTEM "file://{secret}">\n'
        "%remote;\n"
        "]>\n"
    )
    body = CHANNEL.format(
        _item("xxe1", "Users: &passwd;", "Secret: &secret;") + _item("xxe2", "Plain title &secret;", "&passwd;")
    )
    return f'<?xml version="1.0"?>\n{doctype}{body}'.encode()


def external_doctype(secret: Path) -> bytes:
    body = CHANNEL.format(_item("xxe3", "A title", "A summary"))
    return f'<?xml version="1.0"?>\n<!DOCTYPE rss SYSTEM "file://{secret}">\n{body}'.encode()


@dataclass(frozen=True)
class Measured:
    returncode: int
    stdout: str
    stderr: str
    peak_rss: int  # bytes
    elapsed: float


def run_bounded(args: list[str], env: dict[str, str]) -> Measured:
    """`python -m monitor ARGS` under an address-space ceiling; its own peak RSS from wait4."""
    launcher = (
        "import os, resource, sys\n"
        f"resource.setrlimit(resource.RLIMIT_AS, ({ADDRESS_SPACE_LIMIT}, {ADDRESS_SPACE_LIMIT}))\n"
        "os.execv(sys.executable, [sys.executable, '-m', 'monitor', *sys.argv[1:]])\n"
    )
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        process = subprocess.Popen([sys.executable, "-c", launcher, *args], env=env, cwd=ROOT, stdout=out, stderr=err)
        try:
            while True:
                pid, status, usage = os.wait4(process.pid, os.WNOHANG)
                if pid:
                    process.returncode = os.waitstatus_to_exitcode(status)
                    break
                if time.monotonic() - started > TIME_LIMIT:
                    os.kill(process.pid, signal.SIGKILL)
                    _pid, status, usage = os.wait4(process.pid, 0)
                    process.returncode = os.waitstatus_to_exitcode(status)
                    raise AssertionError(f"the poll did not finish within {TIME_LIMIT:g}s")
                time.sleep(0.05)
        finally:
            if process.returncode is None:
                process.kill()
                process.wait()
        out.seek(0)
        err.seek(0)
        return Measured(
            process.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            usage.ru_maxrss * 1024,
            time.monotonic() - started,
        )


def stored_text(path: Path) -> str:
    """Every text value in every table, for searching."""
    with connect(path) as connection:
        return "\n".join(connection.iterdump())


HOSTILE = {
    "billion-laughs": lambda secret: billion_laughs(),
    "quadratic-blowup": lambda secret: quadratic_blowup(),
    "quadratic-blowup-utf16": lambda secret: quadratic_blowup("utf-16"),
    "external-entities": external_entities,
    "external-doctype": external_doctype,
}


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_hostile_feed_is_polled_within_bounds_and_reads_no_local_file(tmp_path: Path, kind: str) -> None:
    marker = f"GW-SECRET-{os.getpid()}-{kind}"
    secret = tmp_path / "secret.txt"
    secret.write_text(f"{marker}\n", encoding="utf-8")
    passwd_line = next(
        (line for line in Path("/etc/passwd").read_text().splitlines() if line.startswith("root:")), "root:x:0:0"
    )
    path = tmp_path / "monitor.db"
    with FeedServer() as feeds:
        # No charset in the Content-Type: the document's own declaration (or BOM) decides, as for a UTF-16 feed.
        feeds.serve("/hostile.xml", Response(HOSTILE[kind](secret), "application/rss+xml"))
        feeds.serve("/dk.xml", Response(rss(SIGNED_DK)))
        sources = [
            {"id": "dk", "name": "DK", "url": feeds.url("/dk.xml"), "tier": "official"},
            {"id": "hostile", "name": "Hostile", "url": feeds.url("/hostile.xml")},
        ]
        env = monitor_env(write_config(tmp_path / "feeds.yaml", f"sqlite:///{path}", sources))
        result = run_bounded(["poll", "--json"], env)
    TALLY.record(
        f"hostile xml {kind}",
        f"exit {result.returncode}, peak RSS {result.peak_rss / 2**20:.0f} MiB, {result.elapsed:.1f}s",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.peak_rss < PEAK_RSS_LIMIT, f"peak RSS {result.peak_rss / 2**20:.0f} MiB"
    assert "Traceback" not in result.stderr

    for file in database_files(path):
        data = file.read_bytes()
        assert marker.encode() not in data, f"the secret file's content is in {file.name}"
        assert passwd_line.encode() not in data, f"/etc/passwd is in {file.name}"
    with connect(path) as connection:
        check_storage(connection)
        health, error = connection.execute("SELECT health, last_error FROM source WHERE id = 'hostile'").fetchone()
        items = connection.execute("SELECT title, summary FROM item WHERE source_id = 'hostile'").fetchall()
        ordinary = connection.execute("SELECT count(*) FROM item WHERE source_id = 'dk'").fetchone()
    assert ordinary == (1,), "the ordinary feed beside it was stored"
    if health == "ok":
        for title, summary in items:
            assert len(title) + len(summary) < 30_000, "an entity was expanded"
            assert "lollollol" not in title + summary and "AAAAAAAAAA" not in title + summary, "an entity expanded"
    else:
        assert error and "\n" not in error and len(error) < 500, f"a clear one-line error: {error!r}"
    text = stored_text(path)
    assert marker not in text and passwd_line not in text
