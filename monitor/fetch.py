"""Feed requests -> `FetchResult`s, over an `httpx.AsyncClient` that the caller passes in.

Conditional GET (ETag, Last-Modified), redirects followed by hand (so that a permanent move is seen and only
http and https are ever followed), bounded concurrency overall and per host, connect/read timeouts plus a total
deadline, and a body limit counted after decompression. Never raises for a feed's fault: the result carries a
`FetchError`. Does not parse, schedule or store anything.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from monitor.config import PollSettings
from monitor.errors import (
    BodyTooLarge,
    FetchError,
    FetchHTTPError,
    FetchTimeout,
    RedirectError,
    UnsupportedURL,
)

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, application/xml;q=0.9, "
    "text/xml;q=0.9, */*;q=0.5"
)
PERMANENT = frozenset({301, 308})
REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class FetchRequest:
    source_id: str
    url: str
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None  # the digest of the last body stored (parse_pool.body_digest)


@dataclass(frozen=True)
class FetchResult:
    """What the server said. `content` is the decompressed body of a 200; empty otherwise."""

    request: FetchRequest
    url: str
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes = b""
    moved_to: str | None = None
    error: FetchError | None = None
    elapsed: float = 0.0

    @property
    def not_modified(self) -> bool:
        return self.status == 304 and self.error is None

    @property
    def ok(self) -> bool:
        return self.error is None


@functools.cache
def _tls() -> ssl.SSLContext:
    """httpx's default TLS context (certifi's roots, SSL_CERT_FILE honoured), built once: loading the roots takes
    25 ms, and a poll makes a client per host."""
    return httpx.create_ssl_context()


def make_client(
    settings: PollSettings, transport: httpx.AsyncBaseTransport | None = None, *, connections: int | None = None
) -> httpx.AsyncClient:
    """The client the poller uses: timeouts, connection limits and a User-Agent that names the project."""
    connections = connections or settings.concurrency
    return httpx.AsyncClient(
        verify=_tls(),
        timeout=httpx.Timeout(
            connect=settings.connect_timeout,
            read=settings.read_timeout,
            write=settings.read_timeout,
            pool=settings.total_timeout,
        ),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        headers={"User-Agent": settings.user_agent, "Accept": ACCEPT},
        follow_redirects=False,
        transport=transport,
    )


class HostClients:
    """A client per host, each with `per_host` connections, closed together: httpcore's pool looks over all of
    its connections each time a request starts or ends, so one pool of a poll's 40 connections spends more CPU
    than twenty pools of two."""

    def __init__(self, settings: PollSettings) -> None:
        self.settings = settings
        self._clients: dict[str, httpx.AsyncClient] = {}

    def __call__(self, host: str) -> httpx.AsyncClient:
        client = self._clients.get(host)
        if client is None:
            client = self._clients[host] = make_client(self.settings, connections=self.settings.per_host)
        return client

    async def aclose(self) -> None:
        await asyncio.gather(*(client.aclose() for client in self._clients.values()))
        self._clients.clear()


async def fetch_all(
    client_for: Callable[[str], httpx.AsyncClient],
    requests: Iterable[FetchRequest],
    settings: PollSettings,
    more: Callable[[], Awaitable[Sequence[FetchRequest]]] | None = None,
) -> AsyncIterator[FetchResult]:
    """Fetch every request, at most `concurrency` at once and `per_host` per host, with the client that
    `client_for(host)` gives (a `HostClients`); yield results as they end.

    With `more`, ask it for further requests whenever fewer than `concurrency` are left waiting for a slot, until
    it gives none: a poll that leases its feeds a batch at a time keeps every slot busy across batches, without
    holding more feeds than it can soon fetch."""
    overall = asyncio.Semaphore(settings.concurrency)
    per_host: dict[str, asyncio.Semaphore] = {}
    waiting = 0  # started, not yet fetching

    async def one(request: FetchRequest) -> FetchResult:
        nonlocal waiting
        host = _host(request.url)
        host_slot = per_host.setdefault(host, asyncio.Semaphore(settings.per_host))
        http = client_for(host)
        async with host_slot, overall:
            waiting -= 1
            return await fetch_feed(http, request, settings)

    tasks: set[asyncio.Task[FetchResult]] = set()

    def start(batch: Iterable[FetchRequest]) -> None:
        nonlocal waiting
        for request in batch:
            waiting += 1
            tasks.add(asyncio.ensure_future(one(request)))

    refill: asyncio.Future[Sequence[FetchRequest]] | None = None
    start(requests)
    try:
        while tasks or refill is not None:
            if more is not None and refill is None and waiting < settings.concurrency:
                refill = asyncio.ensure_future(more())
            watched: set[asyncio.Future[Any]] = {*tasks, *([refill] if refill is not None else [])}
            done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            if refill is not None and refill in done:
                batch, refill = refill.result(), None
                more = more if batch else None
                start(batch)
            for task in tasks & done:
                tasks.discard(task)
                yield task.result()
    finally:
        left: list[asyncio.Future[Any]] = [*tasks, *([refill] if refill is not None else [])]
        for future in left:
            future.cancel()
        await asyncio.gather(*left, return_exceptions=True)


async def fetch_feed(client: httpx.AsyncClient, request: FetchRequest, settings: PollSettings) -> FetchResult:
    """One conditional GET, redirects included, within the total deadline."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(settings.total_timeout):
            result = await _follow(client, request, settings)
    except TimeoutError:
        result = FetchResult(
            request, request.url, error=FetchTimeout(f"no complete answer within {settings.total_timeout:g}s")
        )
    except FetchError as exc:
        result = FetchResult(request, request.url, error=exc)
    except httpx.TimeoutException as exc:
        result = FetchResult(request, request.url, error=FetchTimeout(_describe(exc)))
    except httpx.HTTPError as exc:
        result = FetchResult(request, request.url, error=FetchError(_describe(exc)))
    except Exception as exc:  # whatever else goes wrong is this feed's fault alone, never the run's
        while isinstance(exc, ExceptionGroup) and exc.exceptions:  # anyio wraps the socket's own error
            exc = exc.exceptions[0]
        result = FetchResult(request, request.url, error=FetchError(f"{type(exc).__name__}: {exc}"))
    return FetchResult(
        request=result.request,
        url=result.url,
        status=result.status,
        headers=result.headers,
        content=result.content,
        moved_to=result.moved_to,
        error=result.error,
        elapsed=time.monotonic() - started,
    )


async def _follow(client: httpx.AsyncClient, request: FetchRequest, settings: PollSettings) -> FetchResult:
    url = request.url
    seen = {url}
    moved_to: str | None = None
    still_permanent = True
    for _hop in range(settings.max_redirects + 1):
        _check_scheme(url)
        headers = {}
        if request.etag:
            headers["If-None-Match"] = request.etag
        if request.last_modified:
            headers["If-Modified-Since"] = request.last_modified
        try:
            async with client.stream("GET", url, headers=headers) as response:
                if response.status_code in REDIRECTS and "location" in response.headers:
                    target = urljoin(url, response.headers["location"])
                    if target in seen:
                        raise RedirectError(f"redirect loop at {target}")
                    _check_scheme(target, redirect=True)
                    still_permanent = still_permanent and response.status_code in PERMANENT
                    if still_permanent:
                        moved_to = target
                    seen.add(target)
                    url = target
                    continue
                return await _answer(request, url, response, moved_to, settings)
        except httpx.InvalidURL as exc:
            # httpx resolves a Location into its next request even when it does not follow it.
            raise RedirectError(f"invalid redirect from {url}: {exc}") from None
    raise RedirectError(f"more than {settings.max_redirects} redirects")


async def _answer(
    request: FetchRequest, url: str, response: httpx.Response, moved_to: str | None, settings: PollSettings
) -> FetchResult:
    status = response.status_code
    headers = {key.lower(): value for key, value in response.headers.items()}
    if status == 304:
        await response.aread()  # nothing, but read to its end: the connection then serves the host's next feed
        return FetchResult(request, url, status, headers, moved_to=moved_to)
    if status != 200:
        # Retry-After stays in the headers: the scheduler reads it, in either form, with the clock.
        error = FetchHTTPError(f"HTTP {status} {response.reason_phrase}".strip(), status=status)
        return FetchResult(request, url, status, headers, moved_to=moved_to, error=error)
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.max_bytes and "content-encoding" not in headers:
        raise BodyTooLarge(f"body of {int(declared):,} bytes exceeds the limit of {settings.max_bytes:,}")
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > settings.max_bytes:
            raise BodyTooLarge(f"body exceeds the limit of {settings.max_bytes:,} bytes (after decompression)")
    return FetchResult(request, url, status, headers, bytes(body), moved_to=moved_to)


def _check_scheme(url: str, *, redirect: bool = False) -> None:
    try:
        scheme = httpx.URL(url).scheme.lower()
    except httpx.InvalidURL as exc:
        raise (RedirectError if redirect else UnsupportedURL)(f"invalid URL {url}: {exc}") from None
    if scheme not in ("http", "https"):
        if redirect:
            raise RedirectError(f"redirect to a {scheme or 'relative'} URL refused: only http and https")
        raise UnsupportedURL(f"{scheme or 'no'} scheme: only http and https URLs are fetched")


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:  # an invalid URL: fetch_feed reports it
        return ""


def _describe(exc: httpx.HTTPError) -> str:
    kinds = {
        httpx.ConnectTimeout: "connection timed out",
        httpx.ReadTimeout: "read timed out",
        httpx.WriteTimeout: "write timed out",
        httpx.PoolTimeout: "no free connection in time",
        httpx.ConnectError: "cannot connect",
        httpx.RemoteProtocolError: "broken HTTP answer",
        httpx.ReadError: "connection failed while reading",
        httpx.DecodingError: "cannot decode the body",
        httpx.TooManyRedirects: "too many redirects",
        httpx.UnsupportedProtocol: "unsupported URL",
    }
    kind = next((text for cls, text in kinds.items() if isinstance(exc, cls)), type(exc).__name__)
    detail = str(exc).splitlines()[0] if str(exc) else ""
    return f"{kind}: {detail}" if detail else kind
