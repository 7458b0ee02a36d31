"""The fake Bot API behaves as Telegram documents it, seen through python-telegram-bot's real HTTP stack."""

from __future__ import annotations

import asyncio
import datetime as dtm
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest
from telegram import Bot, LinkPreviewOptions, Update
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import ApplicationBuilder, CommandHandler, ContextTypes
from telegram.warnings import PTBDeprecationWarning

from tests.botapi import FakeBotAPI, Limit, RateLimits, parse_html

TOKEN = "123456:AAF-secret-token-for-tests"
T = TypeVar("T")


class Clock:
    """POSIX seconds that move only when the test says so (drives dates and rate limits)."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake() -> Iterator[FakeBotAPI]:
    with FakeBotAPI(TOKEN) as running:
        yield running


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    """PTB 22 warns (an error under our warning filter) when RetryAfter is built, unless opted in to timedelta."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


def with_bot(fake: FakeBotAPI, action: Callable[[Bot], Awaitable[T]], token: str = TOKEN) -> T:
    async def main() -> T:
        async with Bot(token, base_url=fake.base_url) as bot:
            return await action(bot)

    return asyncio.run(main())


def send(fake: FakeBotAPI, chat_id: int, text: str, **kwargs: Any) -> Any:
    return with_bot(fake, lambda bot: bot.send_message(chat_id, text, **kwargs))


async def eventually(condition: Callable[[], object], limit: float = 5.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)


# --- getMe, tokens, methods, parameters ------------------------------------------------------------------------


def test_get_me_is_a_bot_user(fake: FakeBotAPI) -> None:
    me = with_bot(fake, lambda bot: bot.get_me())
    assert me.is_bot and me.id == 123456 and me.username == "guarantee_watch_bot" and me.can_join_groups


def test_wrong_token_is_unauthorized(fake: FakeBotAPI, raw: httpx.Client) -> None:
    with pytest.raises(InvalidToken):
        with_bot(fake, lambda bot: bot.get_me(), token="654321:wrong")
    answer = raw.post(f"{fake.base_url}654321:wrong/getMe")
    assert answer.status_code == 401
    assert answer.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}


def test_unknown_method_is_not_found(fake: FakeBotAPI, raw: httpx.Client) -> None:
    with pytest.raises(EndPointNotFound):
        with_bot(fake, lambda bot: bot.do_api_request("noSuchMethod"))
    answer = raw.get(f"{fake.base_url}{TOKEN}/noSuchMethod")
    assert (answer.status_code, answer.json()) == (404, {"ok": False, "error_code": 404, "description": "Not Found"})


def test_parameters_arrive_as_query_form_multipart_or_json(fake: FakeBotAPI, raw: httpx.Client) -> None:
    fake.add_chat(42)
    fake.set_limits(RateLimits.off())  # five messages at once to one chat would exceed the burst
    url = f"{fake.base_url}{TOKEN}/sendMessage"
    answers = [
        raw.get(url, params={"chat_id": "42", "text": "query"}),
        raw.post(url, data={"chat_id": "42", "text": "form"}),
        raw.post(url, data={"chat_id": "42", "text": "multipart"}, files={"doc": ("a.txt", b"x")}),
        raw.post(url, json={"chat_id": 42, "text": "json"}),
        raw.post(url.replace("sendMessage", "SENDMESSAGE"), json={"chat_id": 42, "text": "any case"}),
    ]
    assert [a.json()["result"]["text"] for a in answers] == ["query", "form", "multipart", "json", "any case"]
    assert [m.text for m in fake.sent(42)] == ["query", "form", "multipart", "json", "any case"]


def test_the_token_is_never_echoed(fake: FakeBotAPI, capfd: pytest.CaptureFixture[str]) -> None:
    fake.add_chat(42)
    send(fake, 42, "hello")
    with pytest.raises(InvalidToken):
        with_bot(fake, lambda bot: bot.get_me(), token=TOKEN + "x")
    fake.drop_connection_next(method="sendMessage")
    with pytest.raises(NetworkError):
        send(fake, 42, "dropped")
    out, err = capfd.readouterr()
    secret = TOKEN.split(":")[1]
    assert secret not in out + err + repr(fake) + fake.base_url
    assert all(secret not in repr(call) for call in fake.calls())


# --- sendMessage -----------------------------------------------------------------------------------------------


def test_send_message_returns_the_message_and_records_it(clock: Clock) -> None:
    with FakeBotAPI(TOKEN, clock=clock) as fake:
        fake.add_chat(42)
        message = send(
            fake,
            42,
            "<b>Status</b> &amp; news",
            parse_mode="HTML",
            link_preview_options=LinkPreviewOptions(is_disabled=True),
        )
    assert message.text == "Status & news" and message.chat.id == 42 and message.from_user.is_bot
    assert message.date == dtm.datetime.fromtimestamp(clock.now, dtm.UTC)
    assert [(e.type, e.offset, e.length) for e in message.entities] == [("bold", 0, 6)]
    (sent,) = fake.sent(42)
    assert (sent.text, sent.plain_text, sent.parse_mode) == ("<b>Status</b> &amp; news", "Status & news", "HTML")
    assert sent.message_id == message.message_id and sent.date == int(clock.now)
    assert sent.link_preview_options == {"is_disabled": True}


ACCEPTED = [
    ("x" * 4096, None, "x" * 4096),
    ("<b>" + "x" * 4095 + "</b>&amp;", "HTML", "x" * 4095 + "&"),  # tags do not count, an entity counts once
    ("😀" * 2048, None, "😀" * 2048),  # length is in UTF-16 code units
    (
        "<b>b</b><strong>s</strong><i>i</i><em>e</em><u>u</u><ins>n</ins><s>s</s><strike>k</strike><del>d</del>",
        "HTML",
        "bsieunskd",
    ),
    (
        '<span class="tg-spoiler">a</span><tg-spoiler>b</tg-spoiler><a href="https://x.org/?a=1&amp;b=2">c</a>',
        "HTML",
        "abc",
    ),
    (
        '<code>c</code><pre><code class="language-python">p</code></pre><blockquote expandable>q</blockquote>',
        "HTML",
        "cpq",
    ),
    ('<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji> &lt;&gt;&amp;&quot;&#33;&#x21; >', "HTML", '👍 <>&"!! >'),
    ("*MarkdownV2 is passed through*", "MarkdownV2", "*MarkdownV2 is passed through*"),
]

REJECTED = [
    ("x" * 4097, None, "Bad Request: message is too long"),
    ("<b>" + "x" * 4096 + "</b>&amp;", "HTML", "Bad Request: message is too long"),
    ("😀" * 2049, None, "Bad Request: message is too long"),
    ("   ", None, "Bad Request: message text is empty"),
    ("<b></b>", "HTML", "Bad Request: message text is empty"),
    ("<p>x</p>", "HTML", 'Bad Request: can\'t parse entities: Unsupported start tag "p" at byte offset 0'),
    ("Hello <foo>", "HTML", 'Bad Request: can\'t parse entities: Unsupported start tag "foo" at byte offset 6'),
    ("<b>bold", "HTML", "Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"b\""),
    ("x</b>", "HTML", "Bad Request: can't parse entities: Unexpected end tag at byte offset 1"),
    (
        "<b>x</i>",
        "HTML",
        'Bad Request: can\'t parse entities: Unmatched end tag at byte offset 4, expected "</b>", found "</i>"',
    ),
    ("1 < 2", "HTML", 'Bad Request: can\'t parse entities: Unsupported start tag "" at byte offset 2'),
    ("a <b", "HTML", "Bad Request: can't parse entities: Unclosed start tag at byte offset 2"),
    (
        "<span>x</span>",
        "HTML",
        'Bad Request: can\'t parse entities: Tag "span" must have class "tg-spoiler" at byte offset 0',
    ),
    (
        "Q&A",
        "HTML",
        "Bad Request: can't parse entities: Unescaped \"&\" at byte offset 1 (the fake's strict "
        "mode: Telegram would show it as typed; write &amp;)",
    ),
    ("x", "HTML5", "Bad Request: unsupported parse_mode HTML5"),
]


@pytest.fixture(scope="module")
def raw() -> Iterator[httpx.Client]:
    """Plain HTTP, to read the exact bodies (one client for the module: building one costs an SSL context)."""
    with httpx.Client() as client:
        yield client


@pytest.mark.parametrize(("text", "parse_mode", "description"), REJECTED)
def test_send_message_rejection_bodies_are_telegrams(
    fake: FakeBotAPI, raw: httpx.Client, text: str, parse_mode: str | None, description: str
) -> None:
    fake.add_chat(42)
    data = {"chat_id": "42", "text": text} | ({"parse_mode": parse_mode} if parse_mode else {})
    answer = raw.post(f"{fake.base_url}{TOKEN}/sendMessage", data=data)
    assert answer.status_code == 400
    assert answer.json() == {"ok": False, "error_code": 400, "description": description}
    assert fake.sent(42) == []


def test_send_message_rejections_raise_bad_request(fake: FakeBotAPI) -> None:
    fake.add_chat(42)

    async def reject_all(bot: Bot) -> list[str]:
        messages = []
        for text, parse_mode, _ in REJECTED:
            with pytest.raises(BadRequest) as caught:
                await bot.send_message(42, text, parse_mode=parse_mode)
            messages.append(caught.value.message)
        return messages

    # PTB drops "Bad Request: " and capitalizes the rest, which lower-cases everything after the first letter
    expected = [description.removeprefix("Bad Request: ").capitalize() for _, _, description in REJECTED]
    assert with_bot(fake, reject_all) == expected


def test_send_message_accepts_4096_and_every_documented_tag(fake: FakeBotAPI) -> None:
    for chat_id in range(len(ACCEPTED)):
        fake.add_chat(chat_id)

    async def accept_all(bot: Bot) -> list[str | None]:
        return [
            (await bot.send_message(chat_id, text, parse_mode=parse_mode)).text
            for chat_id, (text, parse_mode, _) in enumerate(ACCEPTED)
        ]

    assert with_bot(fake, accept_all) == [plain for _, _, plain in ACCEPTED]


def test_html_errors_match_tdlib_byte_offsets() -> None:
    # cases from TDLib's test/message_entities.cpp (the parser behind the Bot API)
    for text, reason in [
        ("🏟 🏟&lt;<abacaba", "Unclosed start tag at byte offset 13"),
        ("🏟 🏟&lt;<abac aba>", 'Unsupported start tag "abac" at byte offset 13'),
        ("🏟 🏟&lt;<i   =aba>", 'Empty attribute name in the tag "i" at byte offset 13'),
        ("🏟 🏟&lt;<i    aba  =  ", 'Unclosed start tag "i" at byte offset 13'),
        ("🏟 🏟&lt;<i    aba  =  190azAz-.,", "Unexpected end of name token at byte offset 27"),
        ('🏟 🏟&lt;<i    aba  =  "&lt;&gt;&quot;>', "Unclosed start tag at byte offset 13"),
        ("🏟 🏟&lt;</", "Unexpected end tag at byte offset 13"),
        ("🏟 🏟&lt;<b></b></", "Unexpected end tag at byte offset 20"),
        ("🏟 🏟&lt;<i>a</i   ", "Unclosed end tag at byte offset 17"),
        ("🏟 🏟&lt;<i>a</em   >", 'Unmatched end tag at byte offset 17, expected "</i>", found "</em>"'),
    ]:
        with pytest.raises(ValueError) as caught:
            parse_html(text)
        assert str(caught.value) == reason
    assert parse_html("&lt;&gt;&amp;&quot;&laquo;&#12345678;") == ('<>&"&laquo;&#12345678;', [])  # Telegram's leniency
    assert parse_html("🏟 🏟<i>🏟 &gt;<b aba   =   caba>&lt🏟</b></i>") == (
        "🏟 🏟🏟 ><🏟",
        [{"offset": 5, "length": 7, "type": "italic"}, {"offset": 9, "length": 3, "type": "bold"}],
    )


def test_unknown_chat_is_not_found(fake: FakeBotAPI) -> None:
    with pytest.raises(BadRequest, match="Chat not found"):
        send(fake, 999, "hello")


def test_blocked_user_and_kicked_group_are_forbidden(fake: FakeBotAPI) -> None:
    fake.add_chat(42)
    fake.add_chat(-100, "group")
    fake.block(42)
    fake.kick(-100)
    with pytest.raises(Forbidden, match="^Forbidden: bot was blocked by the user$"):
        send(fake, 42, "hello")
    with pytest.raises(Forbidden, match="^Forbidden: bot was kicked from the group chat$"):
        send(fake, -100, "hello")
    fake.unblock(42)
    assert send(fake, 42, "again").text == "again"


def test_migrated_group_raises_chat_migrated(fake: FakeBotAPI) -> None:
    fake.migrate(-100, -1001234567890)
    with pytest.raises(ChatMigrated) as caught:
        send(fake, -100, "hello")
    assert caught.value.new_chat_id == -1001234567890
    assert send(fake, -1001234567890, "hello").chat.type == "supergroup"


# --- rate limits and network faults ----------------------------------------------------------------------------


@pytest.mark.usefixtures("ptb_timedelta")
def test_private_chat_limit_answers_retry_after(clock: Clock) -> None:
    with FakeBotAPI(TOKEN, limits=RateLimits.strict(), clock=clock) as fake:
        fake.add_chat(42)
        fake.add_chat(43)
        send(fake, 42, "one")
        with pytest.raises(RetryAfter) as caught:
            send(fake, 42, "two")
        assert caught.value.retry_after == dtm.timedelta(seconds=1)
        send(fake, 43, "another chat is not limited")
        clock.now += 1
        send(fake, 42, "two")
        assert [m.text for m in fake.sent(42)] == ["one", "two"]


@pytest.mark.usefixtures("ptb_timedelta")
def test_group_allows_twenty_a_minute_and_the_bot_thirty_a_second(clock: Clock) -> None:
    with FakeBotAPI(TOKEN, clock=clock) as fake:
        fake.add_chat(-100, "group")

        async def burst(bot: Bot) -> None:
            for n in range(20):
                await bot.send_message(-100, f"{n}")
            with pytest.raises(RetryAfter) as caught:
                await bot.send_message(-100, "21st")
            assert caught.value.retry_after == dtm.timedelta(seconds=3)

        with_bot(fake, burst)
        fake.set_limits(RateLimits(overall=Limit(30, 30), private_chat=None, group_chat=None))
        for chat_id in range(1, 32):
            fake.add_chat(chat_id)

        async def broadcast(bot: Bot) -> None:
            for chat_id in range(1, 31):
                await bot.send_message(chat_id, "news")
            with pytest.raises(RetryAfter):
                await bot.send_message(31, "news")

        with_bot(fake, broadcast)


def test_retry_after_without_ptb_timedelta_turns_into_a_deprecation_error(
    fake: FakeBotAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PTB_TIMEDELTA", raising=False)
    fake.add_chat(42)
    fake.rate_limit_next(7)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PTBDeprecationWarning)
        with pytest.raises(PTBDeprecationWarning):
            send(fake, 42, "hello")


@pytest.mark.usefixtures("ptb_timedelta")
def test_injected_failures_map_to_ptb_errors(fake: FakeBotAPI) -> None:
    fake.add_chat(42)
    fake.rate_limit_next(7)
    with pytest.raises(RetryAfter) as retry:
        send(fake, 42, "hello")
    assert retry.value.retry_after == dtm.timedelta(seconds=7)
    fake.fail_next(method="sendMessage")
    with pytest.raises(NetworkError) as gateway:
        send(fake, 42, "hello")
    assert type(gateway.value) is NetworkError and gateway.value.message == "Bad Gateway"
    fake.drop_connection_next(method="sendMessage")
    with pytest.raises(NetworkError) as dropped:
        send(fake, 42, "hello")
    assert type(dropped.value) is NetworkError and "RemoteProtocolError" in dropped.value.message
    assert fake.sent(42) == []


def test_a_timed_out_send_may_still_be_delivered(fake: FakeBotAPI) -> None:
    fake.add_chat(42)
    fake.delay_next(0.5, method="sendMessage")
    with pytest.raises(TimedOut):
        send(fake, 42, "slow", read_timeout=0.1)
    asyncio.run(eventually(lambda: fake.sent(42)))


# --- getUpdates ------------------------------------------------------------------------------------------------


def test_get_updates_offset_confirms_and_limit_caps(fake: FakeBotAPI) -> None:
    for text in ("a", "b", "c"):
        fake.send_user_message(42, text)

    async def poll(bot: Bot) -> list[list[int]]:
        seen = [
            await bot.get_updates(),
            await bot.get_updates(limit=1),
            await bot.get_updates(offset=2),
            await bot.get_updates(),
            await bot.get_updates(offset=-1),
            await bot.get_updates(offset=4),
        ]
        return [[u.update_id for u in batch] for batch in seen]

    assert with_bot(fake, poll) == [[1, 2, 3], [1], [2, 3], [2, 3], [3], []]
    assert fake.pending_updates() == []


def test_get_updates_long_poll_returns_when_a_message_arrives(fake: FakeBotAPI) -> None:
    writer = threading.Timer(0.3, fake.send_user_message, (42, "/start@guarantee_watch_bot now"))

    async def poll(bot: Bot) -> tuple[float, tuple[Update, ...], float]:
        started = time.monotonic()
        empty = await bot.get_updates(timeout=1)
        waited = time.monotonic() - started
        assert empty == ()
        writer.start()
        started = time.monotonic()
        return waited, await bot.get_updates(timeout=10), time.monotonic() - started

    waited, (update,), early = with_bot(fake, poll)
    writer.join()
    assert waited >= 0.9 and early < 3
    assert update.message is not None and update.message.text == "/start@guarantee_watch_bot now"
    assert [(e.type, e.offset, e.length) for e in update.message.entities] == [("bot_command", 0, 26)]
    assert update.message.date.timestamp() == pytest.approx(time.time(), abs=5)


def test_a_second_poller_terminates_the_first(fake: FakeBotAPI) -> None:
    async def two_instances() -> None:
        async with Bot(TOKEN, base_url=fake.base_url) as first, Bot(TOKEN, base_url=fake.base_url) as second:
            polling = asyncio.create_task(first.get_updates(timeout=5))
            await asyncio.sleep(0.2)
            assert await second.get_updates(timeout=0) == ()
            with pytest.raises(Conflict, match="terminated by other getUpdates request"):
                await polling

    asyncio.run(two_instances())


# --- the other methods a bot uses ------------------------------------------------------------------------------


def test_commands_webhook_and_chat_members(fake: FakeBotAPI) -> None:
    fake.send_user_message(-100, "hi", user_id=7, chat_type="group", username="ann", first_name="Ann")
    fake.set_admins(-100, [7], owner_id=1)

    async def use(bot: Bot) -> None:
        assert await bot.set_my_commands([("start", "Subscribe"), ("stop", "Unsubscribe")])
        with pytest.raises(BadRequest):
            await bot.set_my_commands([("Start", "capitals are invalid")])
        assert await bot.delete_webhook()
        assert await bot.set_webhook("https://example.org/hook")
        with pytest.raises(Conflict, match="webhook is active"):
            await bot.get_updates()
        assert await bot.delete_webhook(drop_pending_updates=True)
        assert (await bot.get_chat_member(-100, 1)).status == "creator"
        assert (await bot.get_chat_member(-100, 7)).status == "administrator"
        assert (await bot.get_chat_member(-100, 7)).user.username == "ann"
        assert (await bot.get_chat_member(-100, 8)).status == "member"

    with_bot(fake, use)
    assert fake.commands() == [
        {"command": "start", "description": "Subscribe"},
        {"command": "stop", "description": "Unsubscribe"},
    ]
    assert fake.pending_updates() == []


def test_send_photo_uploads_bytes_with_a_caption(fake: FakeBotAPI) -> None:
    fake.add_chat(42)
    png = b"\x89PNG\r\n\x1a\n" + b"x" * 100
    message = with_bot(fake, lambda bot: bot.send_photo(42, png, caption="timeline"))
    assert message.caption == "timeline" and message.photo[0].file_size == len(png)
    assert fake.photos == [{"chat_id": 42, "data": png, "caption": "timeline"}]
    with pytest.raises(BadRequest, match="caption is too long"):
        with_bot(fake, lambda bot: bot.send_photo(42, png, caption="x" * 1025))


def test_an_application_answers_start_by_long_polling(fake: FakeBotAPI) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_chat is not None
        await context.bot.send_message(update.effective_chat.id, "Welcome")

    async def main() -> None:
        app = ApplicationBuilder().token(TOKEN).base_url(fake.base_url).build()
        app.add_handler(CommandHandler("start", start))
        await app.initialize()
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0.05, timeout=1)
        try:
            fake.send_user_message(42, "/start")
            await eventually(lambda: fake.sent(42))
        finally:
            await app.updater.stop()
            await app.stop()
            await app.shutdown()

    asyncio.run(main())
    assert [m.plain_text for m in fake.sent(42)] == ["Welcome"]
    assert fake.calls("deleteWebhook") and fake.pending_updates() == []
