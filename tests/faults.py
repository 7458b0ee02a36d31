"""Fault handlers for `FeedServer` routes: servers that stall, drip, hang up, lie about sizes or redirect badly.

Each handler is a callable route (`server.serve(path, handler)`) that writes its own answer through the
`BaseHTTPRequestHandler`. Handlers that wait do so on an event with a bound, so that releasing them (or the
bound running out) lets the server thread finish; none of them raises into the server when the client has
already hung up.
"""

from __future__ import annotations

import gzip
import socket
import threading
import time
from contextlib import closing
from http.server import BaseHTTPRequestHandler

from monitor.feedserver import Response

_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class Stall:
    """Read the request, then answer nothing until released (or `limit` seconds pass): a read timeout."""

    def __init__(self, limit: float = 10.0) -> None:
        self.limit = limit
        self._released = threading.Event()

    def __call__(self, handler: BaseHTTPRequestHandler) -> None:
        self._released.wait(self.limit)
        handler.close_connection = True

    def release(self) -> None:
        self._released.set()


class Drip:
    """Send the headers at once, then one byte every `every` seconds: never a read timeout, only a deadline."""

    def __init__(self, every: float = 0.1, limit: float = 10.0) -> None:
        self.every = every
        self.limit = limit
        self._released = threading.Event()

    def __call__(self, handler: BaseHTTPRequestHandler) -> None:
        handler.close_connection = True
        deadline = time.monotonic() + self.limit
        try:
            handler.send_response(200)
            handler.send_header("Content-Type", "application/rss+xml")
            handler.send_header("Content-Length", "1000")
            handler.end_headers()
            handler.wfile.flush()
            while time.monotonic() < deadline and not self._released.wait(self.every):
                handler.wfile.write(b" ")
                handler.wfile.flush()
        except _GONE:
            pass

    def release(self) -> None:
        self._released.set()


def hang_up(handler: BaseHTTPRequestHandler) -> None:
    """Close the connection without a word: the client sees a broken HTTP exchange."""
    handler.close_connection = True


class Unsized:
    """A 200 whose body is sent without Content-Length, ended by closing the connection."""

    def __init__(self, body: bytes, content_type: str = "application/rss+xml") -> None:
        self.body = body
        self.content_type = content_type

    def __call__(self, handler: BaseHTTPRequestHandler) -> None:
        handler.close_connection = True
        try:
            handler.send_response(200)
            handler.send_header("Content-Type", self.content_type)
            handler.send_header("Connection", "close")
            handler.end_headers()
            for start in range(0, len(self.body), 65536):
                handler.wfile.write(self.body[start : start + 65536])
        except _GONE:
            pass


def gzipped(body: bytes, content_type: str = "application/rss+xml; charset=utf-8") -> Response:
    """A 200 whose body is gzip-compressed on the wire (Content-Encoding: gzip)."""
    return Response(gzip.compress(body, compresslevel=9), content_type, headers={"Content-Encoding": "gzip"})


def redirect(location: str, status: int = 301) -> Response:
    return Response(b"", "text/plain", status=status, headers={"Location": location})


def status(code: int, headers: dict[str, str] | None = None, body: bytes = b"") -> Response:
    return Response(body, "text/plain; charset=utf-8", status=code, headers=dict(headers or {}))


def closed_port_url(path: str = "/feed.xml") -> str:
    """A URL on 127.0.0.1 where nothing listens: the port was bound, then released."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


class OneWrite:
    """Serve a `Response` with one send: status line, headers and body together.

    FeedServer's own writer sends the headers and the body in two writes; on a kept-alive connection Nagle's
    algorithm then holds the body back until the client's delayed ACK, about 40 ms per response. That wait
    dominates a run over thousands of small files; the bytes on the wire are the same either way.
    """

    def __init__(self, response: Response) -> None:
        self.response = response

    def __call__(self, handler: BaseHTTPRequestHandler) -> None:
        response = self.response
        reason = handler.responses.get(response.status, ("",))[0]
        lines = [
            f"HTTP/1.1 {response.status} {reason}",
            f"Content-Type: {response.content_type}",
            *(f"{name}: {value}" for name, value in response.headers.items()),
            f"Content-Length: {len(response.body)}",
        ]
        handler.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body)
