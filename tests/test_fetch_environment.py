"""The poller honours what the environment says of a host, as curl and aiohttp's `trust_env` do: HTTP_PROXY (with
its credentials) unless NO_PROXY names the host, and the host's credentials in .netrc unless the feed's URL
carries its own. A real proxy and a real origin on 127.0.0.1: the proxy is a `FeedServer` whose routes are the
absolute URLs a client asks a proxy for."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest

from monitor.config import PollSettings
from monitor.feedserver import FeedServer, Response
from monitor.fetch import FetchRequest, FetchResult, fetch_all, make_session

from .conftest import rss

ORIGIN_ONLY = rss(("o1", "From the origin", "Fetched directly."))
PROXIED = rss(("p1", "From the proxy", "Fetched through the proxy."))
FAR_AWAY = "http://feeds.invalid/world.xml"  # no such host: only a proxy can answer for it


def fetch(*urls: str) -> list[FetchResult]:
    settings = PollSettings(concurrency=4, per_host=2, connect_timeout=2, read_timeout=2, total_timeout=5)

    async def go() -> list[FetchResult]:
        requests = [FetchRequest(f"s{n}", url) for n, url in enumerate(urls)]
        async with make_session(settings) as session:
            found = [result async for result in fetch_all(session, requests, settings)]
        return sorted(found, key=lambda result: result.request.source_id)

    return asyncio.run(go())


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("ALL_PROXY", raising=False)
    monkeypatch.delenv("NETRC", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    return monkeypatch


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_http_proxy_carries_every_request_to_a_host_it_does_not_exempt(clean_env: pytest.MonkeyPatch) -> None:
    with FeedServer() as proxy:
        proxy.serve(FAR_AWAY, Response(PROXIED))
        proxy.serve("http://feeds.invalid/europe.xml", Response(PROXIED))
        clean_env.setenv("HTTP_PROXY", proxy.base_url.replace("http://", "http://watch:s3cret@"))

        results = fetch(FAR_AWAY, "http://feeds.invalid/europe.xml", FAR_AWAY)

        assert [(result.error, result.status, result.content) for result in results] == [(None, 200, PROXIED)] * 3
        asked = [request.path for request in proxy.requests]
        assert sorted(asked) == sorted([FAR_AWAY, "http://feeds.invalid/europe.xml", FAR_AWAY])
        assert {request.headers.get("Proxy-Authorization") for request in proxy.requests} == {basic("watch", "s3cret")}


def test_no_proxy_exempts_a_host(clean_env: pytest.MonkeyPatch) -> None:
    with FeedServer() as proxy, FeedServer() as origin:
        url = origin.serve("/direct.xml", Response(ORIGIN_ONLY))
        proxy.serve(FAR_AWAY, Response(PROXIED))
        clean_env.setenv("HTTP_PROXY", proxy.base_url)
        clean_env.setenv("NO_PROXY", "127.0.0.1")

        direct, far = fetch(url, FAR_AWAY)

        assert (direct.error, direct.content) == (None, ORIGIN_ONLY)
        assert (far.error, far.content) == (None, PROXIED)
        assert [request.path for request in origin.requests] == ["/direct.xml"]
        assert [request.path for request in proxy.requests] == [FAR_AWAY]


def test_without_a_proxy_a_host_that_does_not_resolve_is_that_feeds_error(clean_env: pytest.MonkeyPatch) -> None:
    (far,) = fetch(FAR_AWAY)

    assert far.error is not None and far.content == b""


def test_netrc_credentials_go_to_their_host_unless_the_url_has_its_own(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login reader password from-netrc\n")
    netrc.chmod(0o600)
    clean_env.setenv("NETRC", str(netrc))
    with FeedServer() as origin:
        plain = origin.serve("/plain.xml", Response(ORIGIN_ONLY))
        own = origin.serve("/own.xml", Response(ORIGIN_ONLY)).replace("http://", "http://owner:in-url@")

        results = fetch(plain, own)

        assert [result.error for result in results] == [None, None]
        sent = {request.path: request.headers.get("Authorization") for request in origin.requests}
        assert sent == {"/plain.xml": basic("reader", "from-netrc"), "/own.xml": basic("owner", "in-url")}
