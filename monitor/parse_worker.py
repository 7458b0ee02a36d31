"""The parser's worker processes, and the handles the poll keeps on them.

    _Worker(matcher)                 `python -m monitor.parse_worker`: reads pickled requests on its stdin and
                                     writes pickled outcomes on its stdout, one at a time; the matcher first
    _Worker.family(count, matcher)   `count` workers for the cost of starting one: a process that loads the
                                     parser and compiles the matcher's rules, then forks the others

A worker imports `monitor.parse` and, once sent a matcher, `monitor.match` (never the database, HTTP or
Telegram code, nor pydantic, the configuration or asyncio: the matcher holds its proposals as plain data,
`rules.Terms`). One that dies (a crash in the Rust parser, the kernel's OOM killer) fails only the feed it was
reading (`monitor.parse_pool.Parser` reads that one again itself and starts a fresh worker). Starting a worker
costs 0.4-0.5 s of CPU (imports, the matcher's rules, the feed readers): on a 2-core machine, where a big first
poll parses in two of them while the poll stores, a forked one saves that much.
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import subprocess
import sys
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

from monitor.parse import load_readers
from monitor.parse_pool import ParseOutcome, _outcome, _Request

if TYPE_CHECKING:
    from monitor.match import Matcher

_FRAME = struct.Struct("!Q")


class _Worker:
    """A worker process and its two pipes: `python -m monitor.parse_worker`, whose first request is the matcher,
    or one that process forked (`family`), which has it already; `process` is None for those."""

    def __init__(
        self,
        matcher: Matcher | None = None,
        pipes: tuple[IO[bytes], IO[bytes]] | None = None,
        process: subprocess.Popen[bytes] | None = None,
    ) -> None:
        if pipes is not None:
            self.process, (self.requests, self.answers) = process, pipes
            return
        self.process = subprocess.Popen(
            [sys.executable, "-m", "monitor.parse_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.requests, self.answers = self.process.stdin, self.process.stdout
        try:
            _write(self.requests, matcher)
        except OSError:  # it died at once: its first call fails and the feed is read here
            pass

    @classmethod
    def family(cls, count: int, matcher: Matcher | None) -> list[_Worker]:
        """`count` workers for the cost of starting one: a process that loads the parser, compiles the
        matcher's rules and then forks the others, each with its own pair of pipes (passed to it as file
        descriptors). Where there is no fork, or for one worker, plain `_Worker`s."""
        if count < 2 or not hasattr(os, "fork"):
            return [cls(matcher) for _ in range(count)]
        theirs: list[int] = []  # per worker: the end it reads requests from, the end it writes answers to
        ours: list[tuple[int, int]] = []
        try:
            for _ in range(count):
                (request_read, request_write), (answer_read, answer_write) = os.pipe(), os.pipe()
                theirs += [request_read, answer_write]
                ours.append((request_write, answer_read))
            command = [sys.executable, "-m", "monitor.parse_worker", *map(str, theirs)]
            process = subprocess.Popen(command, pass_fds=theirs, stdin=subprocess.DEVNULL)
        except BaseException:
            for fd in theirs + [fd for pair in ours for fd in pair]:
                os.close(fd)
            raise
        for fd in theirs:
            os.close(fd)
        workers = [
            cls(pipes=(os.fdopen(write, "wb"), os.fdopen(read, "rb")), process=process if index == 0 else None)
            for index, (write, read) in enumerate(ours)
        ]
        try:
            _write(workers[0].requests, matcher)
        except OSError:  # it died at once: each first call fails and its feed is read here
            pass
        return workers

    def call(self, request: _Request) -> ParseOutcome:
        _write(self.requests, request)
        outcome: ParseOutcome = _read(self.answers)
        return outcome

    def stop(self) -> int | None:
        """Close its input (it then ends), wait for it if this process started it, and close its output.
        Returns its exit code, None for a forked worker (its parent reaps it)."""
        try:
            self.requests.close()
        except OSError:  # the pipe was already broken: the worker died
            pass
        code = None
        if self.process is not None:
            try:
                code = self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                code = self.process.wait()
        self.answers.close()
        return code


def _write(stream: IO[bytes], value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_FRAME.pack(len(data)) + data)
    stream.flush()


def _read(stream: IO[bytes]) -> Any:
    header = stream.read(_FRAME.size)
    if len(header) < _FRAME.size:
        raise EOFError("the parser process closed its output")
    (size,) = _FRAME.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the parser process stopped mid-answer")
    return pickle.loads(data)


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """The worker's loop: read the matcher, then parse each request until the input closes."""
    try:
        matcher = _read_matcher(requests)
    except EOFError:
        return
    _answer_all(requests, answers, matcher)


def _read_matcher(requests: IO[bytes]) -> Matcher | None:
    """The first request: the matcher, or None for none or for one this process cannot load (the store then
    matches instead). Raises EOFError when the input closed first."""
    try:
        matcher: Matcher | None = _read(requests)
    except EOFError:
        raise
    except Exception:  # noqa: BLE001 - a matcher this process cannot load: the store matches instead
        return None
    return matcher


def _answer_all(requests: IO[bytes], answers: IO[bytes], matcher: Matcher | None) -> None:
    while True:
        try:
            request = _read(requests)
        except EOFError:
            return
        _write(answers, _outcome(request, matcher))


def serve_family(pipes: Sequence[tuple[IO[bytes], IO[bytes]]]) -> None:
    """`_Worker.family`'s process: read the matcher from the first pipe, compile it and load the parser, then
    fork a worker for each other pair of pipes (it has all that, copied on write) and serve the first."""
    try:
        matcher = _read_matcher(pipes[0][0])
    except EOFError:
        return
    try:  # what each worker would do first: done once here, before the fork
        load_readers()
        if matcher is not None:
            matcher.compile()
            import monitor.cues  # noqa: F401 - the cue phrases that a first reading would compile in each worker
    except Exception:  # noqa: BLE001 - a matcher that cannot compile: the store matches (and records the fault)
        matcher = None
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the forked workers
    for index, (requests, answers) in enumerate(pipes[1:], start=1):
        if os.fork() == 0:
            try:
                for other, (their_requests, their_answers) in enumerate(pipes):
                    if other != index:
                        their_requests.close()
                        their_answers.close()
                _answer_all(requests, answers, matcher)
            finally:
                os._exit(0)
        requests.close()
        answers.close()
    _answer_all(*pipes[0], matcher)


def _main() -> None:
    fds = [int(arg) for arg in sys.argv[1:]]
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever a library prints goes to stderr, never into the answers
    sys.stdout = sys.stderr
    try:
        if not fds:
            serve(sys.stdin.buffer, answers)
        else:
            answers.close()
            serve_family([(os.fdopen(fds[i], "rb"), os.fdopen(fds[i + 1], "wb")) for i in range(0, len(fds), 2)])
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: the poll says it stopped, not its workers
        sys.exit(130)
    # Its input closed: every answer is written. Out at once, as the forked workers go, rather than through the
    # interpreter's shutdown (tens of milliseconds of freeing what it loaded), for which the poll would wait.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    # Run as the imported module, not as __main__: what it defines must pickle under its real name.
    from monitor import parse_worker

    parse_worker._main()
