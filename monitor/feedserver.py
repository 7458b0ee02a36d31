"""A small HTTP server on 127.0.0.1 that serves feed files the way a well-behaved news site does.

`monitor demo` serves the bundled sample feeds with it, and the tests serve real corpus files and faults
with it. It answers conditional GETs (ETag, Last-Modified -> 304) and records every request it receives.
A route may be a `Response` or a callable that writes its own answer (for fault injection).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType


@dataclass
class Response:
    body: bytes
    content_type: str = "application/rss+xml; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    last_modified: float | None = None  # a POSIX time; enables If-Modified-Since

    @classmethod
    def from_file(cls, path: Path, content_type: str = "application/rss+xml") -> Response:
        return cls(path.read_bytes(), content_type, last_modified=path.stat().st_mtime)

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:20] + '"'


Handler = Callable[[BaseHTTPRequestHandler], None]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    client_port: int = 0  # the client's end of the connection: requests on one kept-alive connection share it


class FeedServer:
    """Serve routes on 127.0.0.1 in a background thread: `with FeedServer() as server: server.url("/x")`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.routes: dict[str, Response | Handler] = {}
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in separate writes: don't wait 40 ms

            def do_GET(self) -> None:  # the http.server protocol
                with server._lock:
                    recorded = RecordedRequest("GET", self.path, dict(self.headers.items()), self.client_address[1])
                    server.requests.append(recorded)
                    route = server.routes.get(self.path)
                if route is None:
                    _send(self, Response(b"not found\n", "text/plain", status=404))
                elif isinstance(route, Response):
                    _send(self, route)
                else:
                    route(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = _Server((host, port), _Handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="feedserver", daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def serve(self, path: str, route: Response | Handler) -> str:
        with self._lock:
            self.routes[path] = route
        return self.url(path)

    def requests_for(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [request for request in self.requests if request.path == path]

    def start(self) -> FeedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many feeds on one host connect at once


def _send(handler: BaseHTTPRequestHandler, response: Response) -> None:
    headers = {"Content-Type": response.content_type, **response.headers}
    if response.status == 200:
        headers["ETag"] = response.etag
        if response.last_modified is not None:
            headers["Last-Modified"] = formatdate(response.last_modified, usegmt=True)
        if _not_modified(handler, response):
            handler.send_response(304)
            for name in ("ETag", "Last-Modified"):
                if name in headers:
                    handler.send_header(name, headers[name])
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
    handler.send_response(response.status)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(response.body)))
    handler.end_headers()
    handler.wfile.write(response.body)


def _not_modified(handler: BaseHTTPRequestHandler, response: Response) -> bool:
    if_none_match = handler.headers.get("If-None-Match")
    if if_none_match is not None:
        return response.etag in [tag.strip() for tag in if_none_match.split(",")] or if_none_match.strip() == "*"
    since = handler.headers.get("If-Modified-Since")
    if since and response.last_modified is not None:
        try:
            return int(response.last_modified) <= parsedate_to_datetime(since).timestamp()
        except (TypeError, ValueError):
            return False
    return False
