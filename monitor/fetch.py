"""Feed requests -> `FetchResult`s, over an `aiohttp.ClientSession` (`make_session`).

Conditional GET (ETag, Last-Modified), redirects followed by hand (so that a permanent move is seen and only
http and https are ever followed), bounded concurrency overall and per host, connect/read timeouts plus a total
deadline, a body limit counted after decompression, and the environment's proxy and .netrc credentials, read
once per host (`_Environment`). Never raises for a feed's fault: the result carries a
`FetchError`. Does not parse, schedule or store anything.

aiohttp rather than httpx (which python-telegram-bot uses): its HTTP parser is C, and a conditional GET costs
about a tenth of the CPU (on a 304: 0.1 ms against 2 ms), which is most of a cron run where nothing changed.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.helpers import basicauth_from_netrc, get_env_proxy_for_url, netrc_from_env
from yarl import URL

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


def make_session(settings: PollSettings) -> aiohttp.ClientSession:
    """The session the poller uses: at most `concurrency` connections and `per_host` to a host, the timeouts
    (waiting for a free connection counts against the total deadline), a User-Agent that names the project,
    and what the environment says of each host (`_Environment`): its proxy (HTTP_PROXY, HTTPS_PROXY, NO_PROXY,
    as curl reads them) and its credentials in .netrc."""
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=settings.concurrency, limit_per_host=settings.per_host),
        timeout=aiohttp.ClientTimeout(
            total=None,
            connect=settings.total_timeout,
            sock_connect=settings.connect_timeout,
            sock_read=settings.read_timeout,
        ),
        headers={"User-Agent": settings.user_agent, "Accept": ACCEPT},
    )
    _ENVIRONMENTS[session] = _Environment()
    return session


class _Environment:
    """What aiohttp's `trust_env` reads for a request (the proxy variables, the host's entry in .netrc), read
    once per host for the session: `trust_env` reads both again for every request, each in a hop to a worker
    thread (about 0.1 s of CPU in a first poll of 300 feeds, on the thread that also stores them)."""

    def __init__(self) -> None:
        self._netrc: list[Any] = []  # the parsed .netrc (or None), once read
        self._hosts: dict[tuple[str, str | None, int | None], tuple[dict[str, Any], dict[str, str]]] = {}

    async def options(self, url: str) -> tuple[dict[str, Any], dict[str, str]]:
        """`session.get`'s keyword arguments for `url` (`proxy`, and `proxy_headers` for an https one), and the
        headers to add to its request (`Authorization` from .netrc, `Proxy-Authorization` for an http one)."""
        target = URL(url)
        key = (target.scheme, target.host, target.port)
        if key not in self._hosts:
            self._hosts[key] = await asyncio.to_thread(self._read, target)
        return self._hosts[key]

    def _read(self, target: URL) -> tuple[dict[str, Any], dict[str, str]]:
        options: dict[str, Any] = {}
        headers: dict[str, str] = {}
        try:
            options["proxy"], credentials = get_env_proxy_for_url(target)
        except LookupError:  # no proxy for this host
            credentials = None
        if credentials is not None:  # an https request's go to the proxy in its CONNECT, an http one's with it
            if target.scheme == "https":
                options["proxy_headers"] = {"Proxy-Authorization": credentials.encode()}
            else:
                headers["Proxy-Authorization"] = credentials.encode()
        if target.host is not None and target.user is None:  # credentials in the URL come first, as in aiohttp
            if not self._netrc:
                self._netrc.append(netrc_from_env())
            try:
                headers["Authorization"] = basicauth_from_netrc(self._netrc[0], target.host).encode()
            except LookupError:  # no .netrc, or no entry for this host
                pass
        return options, headers


_ENVIRONMENTS: weakref.WeakKeyDictionary[aiohttp.ClientSession, _Environment] = weakref.WeakKeyDictionary()


async def fetch_all(
    session: aiohttp.ClientSession,
    requests: Iterable[FetchRequest],
    settings: PollSettings,
    more: Callable[[], Awaitable[Sequence[FetchRequest]]] | None = None,
) -> AsyncIterator[FetchResult]:
    """Fetch every request over `session`, at most `concurrency` at once and `per_host` per host; yield results
    as they end.

    With `more`, ask it for further requests whenever fewer than `concurrency` are left waiting for a slot, until
    it gives none: a poll that leases its feeds a batch at a time keeps every slot busy across batches, without
    holding more feeds than it can soon fetch."""
    overall = asyncio.Semaphore(settings.concurrency)
    per_host: dict[str, asyncio.Semaphore] = {}
    waiting = 0  # started, not yet fetching

    async def one(request: FetchRequest) -> FetchResult:
        nonlocal waiting
        host_slot = per_host.setdefault(_host(request.url), asyncio.Semaphore(settings.per_host))
        async with host_slot, overall:
            waiting -= 1
            return await fetch_feed(session, request, settings)

    # In the order started: fetches that ended while the caller was busy are yielded in that order, so that one
    # fetch at a time (concurrency 1) stores the feeds in the order they were leased.
    tasks: dict[asyncio.Task[FetchResult], None] = {}

    def start(batch: Iterable[FetchRequest]) -> None:
        nonlocal waiting
        for request in batch:
            waiting += 1
            tasks[asyncio.ensure_future(one(request))] = None

    refill: asyncio.Future[Sequence[FetchRequest]] | None = None
    start(requests)
    try:
        while True:
            if more is not None and refill is None and waiting < settings.concurrency:
                refill = asyncio.ensure_future(more())  # also when every fetch ended in one wait below
            if not tasks and refill is None:
                break
            watched: set[asyncio.Future[Any]] = {*tasks, *([refill] if refill is not None else [])}
            done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            if refill is not None and refill in done:
                batch, refill = refill.result(), None
                more = more if batch else None
                start(batch)
            for task in [task for task in tasks if task in done]:
                del tasks[task]
                yield task.result()
    finally:
        left: list[asyncio.Future[Any]] = [*tasks, *([refill] if refill is not None else [])]
        for future in left:
            future.cancel()
        await asyncio.gather(*left, return_exceptions=True)


async def fetch_feed(session: aiohttp.ClientSession, request: FetchRequest, settings: PollSettings) -> FetchResult:
    """One conditional GET, redirects included, within the total deadline."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(settings.total_timeout):
            result = await _follow(session, request, settings)
    except FetchError as exc:
        result = FetchResult(request, request.url, error=exc)
    except aiohttp.ServerTimeoutError as exc:  # a TimeoutError too: the connect or read timeout, not the total
        result = FetchResult(request, request.url, error=FetchTimeout(_describe(exc)))
    except TimeoutError:
        result = FetchResult(
            request, request.url, error=FetchTimeout(f"no complete answer within {settings.total_timeout:g}s")
        )
    except aiohttp.ClientError as exc:
        result = FetchResult(request, request.url, error=FetchError(_describe(exc)))
    except Exception as exc:  # whatever else goes wrong is this feed's fault alone, never the run's
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


async def _follow(session: aiohttp.ClientSession, request: FetchRequest, settings: PollSettings) -> FetchResult:
    url = request.url
    seen = {url}
    moved_to: str | None = None
    still_permanent = True
    for _hop in range(settings.max_redirects + 1):
        _check_url(url)
        headers = {}
        if request.etag:
            headers["If-None-Match"] = request.etag
        if request.last_modified:
            headers["If-Modified-Since"] = request.last_modified
        environment = _ENVIRONMENTS.get(session)
        options: dict[str, Any] = {}
        if environment is not None:
            options, extra = await environment.options(url)
            headers.update(extra)
        async with session.get(url, headers=headers, allow_redirects=False, **options) as response:
            location = response.headers.get("Location")
            if response.status in REDIRECTS and location is not None:
                target = urljoin(url, location)
                if target in seen:
                    raise RedirectError(f"redirect loop at {target}")
                _check_url(target, redirect=True)
                still_permanent = still_permanent and response.status in PERMANENT
                if still_permanent:
                    moved_to = target
                seen.add(target)
                url = target
                continue
            return await _answer(request, url, response, moved_to, settings)
    raise RedirectError(f"more than {settings.max_redirects} redirects")


async def _answer(
    request: FetchRequest, url: str, response: aiohttp.ClientResponse, moved_to: str | None, settings: PollSettings
) -> FetchResult:
    status = response.status
    headers: dict[str, str] = {}
    for key, value in response.headers.items():  # a repeated header's values joined, as HTTP allows
        key = key.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    if status == 304:
        await response.read()  # nothing, but read to its end: the connection then serves the host's next feed
        return FetchResult(request, url, status, headers, moved_to=moved_to)
    if status != 200:
        # Retry-After stays in the headers: the scheduler reads it, in either form, with the clock.
        error = FetchHTTPError(f"HTTP {status} {response.reason or ''}".strip(), status=status)
        return FetchResult(request, url, status, headers, moved_to=moved_to, error=error)
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.max_bytes and "content-encoding" not in headers:
        raise BodyTooLarge(f"body of {int(declared):,} bytes exceeds the limit of {settings.max_bytes:,}")
    body = bytearray()
    async for chunk in response.content.iter_any():  # decompressed as it comes
        body += chunk
        if len(body) > settings.max_bytes:
            raise BodyTooLarge(f"body exceeds the limit of {settings.max_bytes:,} bytes (after decompression)")
    return FetchResult(request, url, status, headers, bytes(body), moved_to=moved_to)


def _check_url(url: str, *, redirect: bool = False) -> None:
    """Only http and https URLs with a host and a valid port are requested."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port outside 0-65535 or not a number
    except ValueError as exc:
        raise (RedirectError if redirect else UnsupportedURL)(f"invalid URL {url}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        if redirect:
            raise RedirectError(f"redirect to a {scheme or 'relative'} URL refused: only http and https")
        raise UnsupportedURL(f"{scheme or 'no'} scheme: only http and https URLs are fetched")
    if not parts.hostname:
        raise (RedirectError if redirect else UnsupportedURL)(f"invalid URL {url}: no host")


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:  # an invalid URL: fetch_feed reports it
        return ""


def _describe(exc: aiohttp.ClientError) -> str:
    kinds: dict[type[aiohttp.ClientError], str] = {
        aiohttp.ConnectionTimeoutError: "connection timed out",
        aiohttp.SocketTimeoutError: "read timed out",
        aiohttp.ServerTimeoutError: "timed out",
        aiohttp.ClientConnectorError: "cannot connect",
        aiohttp.ServerDisconnectedError: "broken HTTP answer",
        aiohttp.ClientResponseError: "broken HTTP answer",
        aiohttp.ClientPayloadError: "cannot read the body",
        aiohttp.ClientOSError: "connection failed",
        aiohttp.InvalidURL: "invalid URL",
    }
    kind = next((text for cls, text in kinds.items() if isinstance(exc, cls)), type(exc).__name__)
    detail = str(exc).splitlines()[0] if str(exc) else ""
    return f"{kind}: {detail}" if detail else kind
