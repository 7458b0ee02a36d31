"""A fake Telegram Bot API server on 127.0.0.1, written from the Bot API documentation, for tests.

python-telegram-bot's real HTTP stack talks to it: `Bot(token, base_url=fake.base_url)` or
`ApplicationBuilder().token(token).base_url(fake.base_url)`. It serves `{base_url}{token}/{method}` (method names
in any case) by GET or POST, with parameters in the query string, a urlencoded or multipart form, or a JSON body,
and answers like Telegram: `{"ok": true, "result": ...}`, or `{"ok": false, "error_code": N, "description": ...,
"parameters": {...}}` with HTTP status N. A wrong token gets 401 "Unauthorized", an unknown method 404 "Not Found".

Methods served, the ones the monitor's bot and sender call: getMe, getUpdates (offset confirms, negative offset
keeps the tail, limit, timeout long-polls, allowed_updates filters later updates, a newer poll ends a waiting one
with 409 Conflict), sendMessage, sendPhoto, getChatMember, setMyCommands, setWebhook / deleteWebhook (an active
webhook makes getUpdates answer 409). Any other method answers 404, so a new call in the monitor shows up here.

The test's side:
    add_chat(id, type) / send_user_message(chat_id, text, ...)   make a chat known; a user writes (a message
                                                                  update; "/cmd" gets a bot_command entity)
    set_admins(chat_id, user_ids, owner_id=)                     who getChatMember names
    sent(chat_id) -> [SentMessage] / photos                      what the bot delivered
    calls(method) / commands() / pending_updates()
    block(id) / unblock(id) / kick(id)                           403 Forbidden
    migrate(id, new_id)                                          400 with parameters.migrate_to_chat_id
    set_limits(RateLimits(...)) / RateLimits.strict() / .off()   429 with parameters.retry_after
    rate_limit_next(seconds) / fail_next(n, status=, body=)      any answer, once or n times (per method)
    drop_connection_next() / delay_next(seconds)                 hang up unanswered / answer late
Dates are Unix seconds from `clock` (also the rate limits' clock; pass a fake one for determinism).

Known chats: a chat is known once a user wrote in it (`send_user_message`) or a test registered it
(`add_chat`); sending anywhere else answers 400 "chat not found", as Telegram does for chats the bot never saw.

HTML (`parse_mode=HTML`) is parsed by a port of TDLib's `parse_html`, which the Bot API server uses, so error
descriptions and byte offsets match Telegram's. One deliberate difference, on by default (`strict_html=True`):
a `&` that does not start `&lt;`, `&gt;`, `&amp;`, `&quot;` or a numeric reference is rejected, where Telegram
would show it as typed; an unescaped `&` is a bug in our renderer even when Telegram forgives it.
Text length is counted, like entity offsets, in UTF-16 code units after parsing (4096 at most); MarkdownV2
text is not parsed.

Example:

    with FakeBotAPI(token=TOKEN) as fake:
        fake.send_user_message(42, "/start")
        async with Bot(TOKEN, base_url=fake.base_url) as bot:
            await bot.send_message(42, "<b>hi</b>", parse_mode="HTML")
        assert fake.sent(42)[0].plain_text == "hi"

The token never appears in anything the server prints, records or answers.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import math
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

JSON = dict[str, Any]
MAX_TEXT_LENGTH = 4096


class ApiError(Exception):
    """An unsuccessful Bot API answer: HTTP status = error_code, with a description and optional parameters."""

    def __init__(self, status: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def body(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


class HtmlError(ValueError):
    """TDLib's reason for rejecting a text; the Bot API prefixes it with "Bad Request: can't parse entities: "."""


# --- HTML, as TDLib parses it (td/telegram/MessageEntity.cpp: parse_html, decode_html_entity) -----------------

_TAGS = {
    "a",
    "b",
    "strong",
    "i",
    "em",
    "s",
    "strike",
    "del",
    "u",
    "ins",
    "tg-spoiler",
    "tg-emoji",
    "span",
    "pre",
    "code",
    "blockquote",
    "tg-time",
}
_SIMPLE = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}
_NAMED = {b"lt": "<", b"gt": ">", b"amp": "&", b"quot": '"'}
_SPACE = b" \t\r\n\v\0"


def _decode_entity(data: bytes, pos: int, strict: bool) -> tuple[int, int]:
    """(code point, position after it) for the reference at `pos`, or (0, pos) when it is none."""
    end = pos + 1
    code = 0
    if data[end : end + 1] == b"#":
        end += 1
        digits, base = (b"0123456789abcdefABCDEF", 16) if data[end : end + 1] == b"x" else (b"0123456789", 10)
        if base == 16:
            end += 1
        start = end
        while end < len(data) and data[end] in digits:
            end += 1
        code = int(data[start:end], base) if end > start else 0
        if code == 0 or code >= 0x10FFFF or end - pos >= 10:
            return 0, pos
    else:
        while end < len(data) and chr(data[end]).isalpha() and data[end] < 128:
            end += 1
        name = _NAMED.get(data[pos + 1 : end])
        if name is None:
            return 0, pos
        code = ord(name)
    if data[end : end + 1] == b";":
        return code, end + 1
    return (0, pos) if strict else (code, end)


def parse_html(text: str, *, strict: bool = False) -> tuple[str, list[JSON]]:
    """The plain text and Bot API entities of `text` in parse_mode HTML; raises HtmlError as Telegram would."""
    return _HtmlParser(text.encode(), strict).parse()


class _HtmlParser:
    """TDLib's parse_html over UTF-8 bytes: offsets in errors are byte offsets, entity offsets UTF-16 units."""

    def __init__(self, data: bytes, strict: bool) -> None:
        self.data = data
        self.strict = strict
        self.i = 0
        self.out = bytearray()
        self.utf16 = 0
        self.entities: list[JSON] = []
        self.stack: list[tuple[str, str, int, int]] = []  # tag, argument, utf16 offset, offset in `out`

    def at(self, k: int) -> int:
        return self.data[k] if k < len(self.data) else 0  # TDLib reads a C string: 0 ends it

    def space(self, k: int) -> bool:
        return self.at(k) in _SPACE

    def skip_spaces(self) -> None:
        while self.at(self.i) != 0 and self.space(self.i):
            self.i += 1

    def parse(self) -> tuple[str, list[JSON]]:
        while self.i < len(self.data):
            c = self.data[self.i]
            if c == 0x26 and self._reference():  # &
                continue
            if c != 0x3C:  # not <
                if c & 0xC0 != 0x80:  # the first byte of a character
                    self.utf16 += 1 + (c >= 0xF0)
                self.out.append(c)
                self.i += 1
            elif self.at(self.i + 1) == 0x2F:  # </
                self._end_tag()
            else:
                self._start_tag()
        if self.stack:
            raise HtmlError(f'Can\'t find end tag corresponding to start tag "{self.stack[-1][0]}"')
        for entity in self.entities:
            if entity["type"] == "code":
                entity.pop("language", None)
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return self.out.decode(errors="replace"), self.entities

    def _reference(self) -> bool:
        code, after = _decode_entity(self.data, self.i, self.strict)
        if not code:
            if self.strict:
                raise HtmlError(
                    f'Unescaped "&" at byte offset {self.i} (the fake\'s strict mode: Telegram would '
                    f"show it as typed; write &amp;)"
                )
            return False
        if 0xD800 <= code <= 0xDFFF:
            raise HtmlError(
                "Text contains invalid Unicode characters after decoding HTML entities, check for "
                "unmatched surrogate code units"
            )
        self.out += chr(code).encode()
        self.utf16 += 1 + (code > 0xFFFF)
        self.i = after
        return True

    def _start_tag(self) -> None:
        begin = self.i
        self.i += 1
        while not self.space(self.i) and self.at(self.i) != 0x3E:
            self.i += 1
        if self.at(self.i) == 0:
            raise HtmlError(f"Unclosed start tag at byte offset {begin}")
        tag = self.data[begin + 1 : self.i].decode(errors="replace").lower()
        if tag not in _TAGS:
            raise HtmlError(f'Unsupported start tag "{tag}" at byte offset {begin}')
        argument = ""
        while self.at(self.i) != 0x3E:
            self.skip_spaces()
            if self.at(self.i) == 0x3E:
                break
            name, value = self._attribute(tag, begin)
            if value is None:
                if tag == "blockquote" and name == "expandable":
                    argument = "1"
            elif (tag, name) in {("a", "href"), ("tg-emoji", "emoji-id"), ("tg-time", "unix")}:
                argument = value
            elif tag == "code" and name == "class" and value.startswith("language-"):
                argument = value[9:]
            elif tag == "span" and name == "class" and value.startswith("tg-"):
                argument = value[3:]
            elif tag == "blockquote" and name == "expandable":
                argument = "1"
        if tag == "span" and argument != "spoiler":
            raise HtmlError(f'Tag "span" must have class "tg-spoiler" at byte offset {begin}')
        self.stack.append((tag, argument, self.utf16, len(self.out)))
        self.i += 1

    def _attribute(self, tag: str, begin: int) -> tuple[str, str | None]:
        name_begin = self.i
        while not self.space(self.i) and self.at(self.i) not in b"=>/\"'":
            self.i += 1
        name = self.data[name_begin : self.i].decode(errors="replace")
        if not name:
            raise HtmlError(f'Empty attribute name in the tag "{tag}" at byte offset {begin}')
        self.skip_spaces()
        if self.at(self.i) != 0x3D:  # no "=": an attribute without a value
            if self.at(self.i) == 0:
                raise HtmlError(f'Unclosed start tag "{tag}" at byte offset {begin}')
            return name, None
        self.i += 1
        self.skip_spaces()
        if self.at(self.i) == 0:
            raise HtmlError(f'Unclosed start tag "{tag}" at byte offset {begin}')
        if self.at(self.i) not in b"'\"":  # a name token: letters, digits, periods, hyphens
            token_begin = self.i
            while chr(self.at(self.i)).isalnum() and self.at(self.i) < 128 or self.at(self.i) in b".-":
                self.i += 1
            value = self.data[token_begin : self.i].decode().lower()
            if not self.space(self.i) and self.at(self.i) != 0x3E:
                raise HtmlError(f"Unexpected end of name token at byte offset {token_begin}")
        else:  # a string literal, with references decoded
            quote = self.at(self.i)
            self.i += 1
            raw = bytearray()
            while self.at(self.i) != quote and self.at(self.i) != 0:
                code, after = _decode_entity(self.data, self.i, False) if self.at(self.i) == 0x26 else (0, 0)
                if code:
                    raw += chr(code).encode()
                    self.i = after
                else:
                    raw.append(self.at(self.i))
                    self.i += 1
            if self.at(self.i) == quote:
                self.i += 1
            value = raw.decode(errors="replace")
        if self.at(self.i) == 0:
            raise HtmlError(f"Unclosed start tag at byte offset {begin}")
        return name, value

    def _end_tag(self) -> None:
        begin = self.i
        if not self.stack:
            raise HtmlError(f"Unexpected end tag at byte offset {begin}")
        self.i += 1
        while not self.space(self.i) and self.at(self.i) != 0x3E:
            self.i += 1
        end_tag = self.data[begin + 2 : self.i].decode(errors="replace").lower()
        self.skip_spaces()
        if self.at(self.i) != 0x3E:
            raise HtmlError(f"Unclosed end tag at byte offset {begin}")
        tag, argument, offset, out_pos = self.stack.pop()
        if end_tag and end_tag != tag:
            raise HtmlError(f'Unmatched end tag at byte offset {begin}, expected "</{tag}>", found "</{end_tag}>"')
        if self.utf16 > offset:
            inner = self.out[out_pos:].decode(errors="replace")
            entity = _entity(tag, argument, offset, self.utf16 - offset, inner, self.entities)
            if entity is not None:
                self.entities.append(entity)
        self.i += 1


def _entity(tag: str, argument: str, offset: int, length: int, inner: str, done: list[JSON]) -> JSON | None:
    entity: JSON = {"offset": offset, "length": length}
    last = done[-1] if done else None
    same_span = last is not None and (last["offset"], last["length"]) == (offset, length)
    if tag in _SIMPLE:
        entity["type"] = _SIMPLE[tag]
    elif tag == "blockquote":
        entity["type"] = "expandable_blockquote" if argument else "blockquote"
    elif tag == "tg-emoji":
        if not argument.isdigit() or int(argument) == 0:
            raise HtmlError("Invalid custom emoji identifier specified")
        entity.update(type="custom_emoji", custom_emoji_id=argument)
    elif tag == "tg-time":
        entity.update(type="date_time", unix_time=int(argument) if argument.isdigit() else 0)
    elif tag == "a":
        url = argument or inner
        match = re.fullmatch(r"tg://user\?id=(\d+)", url)
        if match:
            entity.update(type="text_mention", user={"id": int(match[1]), "is_bot": False, "first_name": ""})
        elif re.match(r"^[a-z][a-z0-9+.-]*://\S+$|^[\w-]+(\.[\w-]+)+(/\S*)?$", url, re.IGNORECASE):
            entity.update(type="text_link", url=url if "://" in url else f"http://{url}/")
        else:
            return None  # Telegram drops links it cannot check, without an error
    elif tag == "pre":
        if last is not None and same_span and last["type"] == "code" and last.get("language"):
            last["type"] = "pre"
            return None
        entity["type"] = "pre"
    else:  # code
        if last is not None and same_span and last["type"] == "pre" and argument:
            last["language"] = argument
            return None
        entity["type"] = "code"
        if argument:
            entity["language"] = argument  # kept only for a <pre> closing around it; parse_html drops the rest
    return entity


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


_COMMAND = re.compile(r"(?<![\w/<>])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/<>])")


def command_entities(text: str) -> list[JSON]:
    """bot_command entities, as Telegram marks them in a user's message (CommandHandler needs one at 0)."""
    return [
        {"type": "bot_command", "offset": utf16_length(text[: m.start()]), "length": utf16_length(m[0])}
        for m in _COMMAND.finditer(text)
    ]


# --- Configuration and records -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limit:
    """A token bucket: `burst` sends at once, refilled at `rate` per second."""

    rate: float
    burst: int


@dataclass(frozen=True)
class RateLimits:
    """Telegram's documented limits (Bots FAQ): ~30 msg/s overall, 1 msg/s per chat with short bursts tolerated,
    20 msg/min per group. None turns a limit off. Only accepted sendMessage calls count."""

    overall: Limit | None = Limit(30, 30)
    private_chat: Limit | None = Limit(1, 3)
    group_chat: Limit | None = Limit(20 / 60, 20)

    @classmethod
    def strict(cls) -> RateLimits:
        """No bursts per chat: one message a second to a private chat, one every 3 seconds to a group."""
        return cls(Limit(30, 30), Limit(1, 1), Limit(20 / 60, 1))

    @classmethod
    def off(cls) -> RateLimits:
        return cls(None, None, None)


@dataclass(frozen=True)
class SentMessage:
    """A text message the bot delivered."""

    chat_id: int
    message_id: int
    text: str  # as the bot sent it, markup included
    plain_text: str  # what the user sees
    entities: tuple[JSON, ...]
    parse_mode: str | None
    link_preview_options: JSON | None
    date: int


@dataclass(frozen=True)
class ApiCall:
    """One request as the server understood it (method as the client spelled it; never the token)."""

    method: str
    params: JSON


@dataclass
class _Fault:
    kind: str  # "fail", "drop" or "delay"
    count: int
    method: str | None
    status: int = 502
    body: bytes = b""
    seconds: float = 0.0


@dataclass
class _Bucket:
    tokens: float
    stamp: float


# --- Parameters ----------------------------------------------------------------------------------------------


def _read_params(path: str, content_type: str, body: bytes) -> JSON:
    params: JSON = dict(parse_qsl(urlsplit(path).query, keep_blank_values=True))
    kind = content_type.split(";")[0].strip().lower()
    if not body:
        return params
    if kind == "application/json":
        try:
            loaded = json.loads(body)
        except ValueError as exc:
            raise ApiError(400, "Bad Request: can't parse JSON object") from exc
        if isinstance(loaded, dict):
            params.update(loaded)
    elif kind == "application/x-www-form-urlencoded":
        params.update(parse_qsl(body.decode(errors="replace"), keep_blank_values=True))
    elif kind == "multipart/form-data":
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if isinstance(name, str):
                payload = part.get_payload(decode=True)
                if isinstance(payload, bytes) and not part.get_filename():
                    params[name] = payload.decode(errors="replace")
                elif isinstance(payload, bytes):
                    params[name] = payload  # an uploaded file (sendPhoto)
    return params


def _text(params: JSON, name: str) -> str | None:
    value = params.get(name)
    return None if value is None else value if isinstance(value, str) else json.dumps(value)


def _int(params: JSON, name: str, default: int | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ApiError(400, f"Bad Request: invalid {name} specified") from exc


def _flag(params: JSON, name: str) -> bool | None:
    value = params.get(name)
    return None if value is None else value in (True, 1, "true", "True", "1")


def _json(params: JSON, name: str) -> Any:
    value = params.get(name)
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError as exc:
        raise ApiError(400, f"Bad Request: can't parse {name} JSON object") from exc


# --- The server ----------------------------------------------------------------------------------------------


class FakeBotAPI:
    """A Bot API server in a background thread; see the module docstring. Thread-safe for tests."""

    def __init__(
        self,
        token: str = "123456:TEST-token",
        *,
        bot_id: int | None = None,
        username: str = "guarantee_watch_bot",
        first_name: str = "Guarantee Watch",
        limits: RateLimits | None = None,
        strict_html: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._token = token
        head = token.split(":", 1)[0]
        self.bot_user: JSON = {
            "id": bot_id if bot_id is not None else int(head) if head.isdigit() else 123456,
            "is_bot": True,
            "first_name": first_name,
            "username": username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self.strict_html = strict_html
        self._clock = clock
        self._limits = limits or RateLimits()
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._chats: dict[int, JSON] = {}
        self._users: dict[int, JSON] = {}
        self._admins: dict[int, tuple[int | None, list[int]]] = {}
        self._blocked: set[int] = set()
        self._kicked: set[int] = set()
        self._migrated: dict[int, int] = {}
        self._faults: list[_Fault] = []
        self._buckets: dict[object, _Bucket] = {}
        self._updates: list[JSON] = []
        self._update_ids = itertools.count(1)
        self._poll_generation = 0
        self._allowed_updates: list[str] = []
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._deliveries: list[SentMessage] = []
        self.photos: list[JSON] = []  # sendPhoto calls: chat_id, data (bytes of an upload, or a file_id/URL), caption
        self._commands: dict[tuple[str, str], list[JSON]] = {}
        self._webhook_url = ""
        self._calls: list[ApiCall] = []
        self._httpd = _Server(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.02,), name="fake-bot-api", daemon=True
        )

    def __repr__(self) -> str:
        return f"<FakeBotAPI {self.base_url} @{self.bot_user['username']}>"

    # lifecycle

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/bot"

    def start(self) -> FakeBotAPI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            self._lock.notify_all()
        self._httpd.shutdown()
        self._httpd.hang_up_all()
        self._httpd.server_close()
        self._thread.join(5)

    def __enter__(self) -> FakeBotAPI:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # the world: chats, users, admins

    def add_chat(
        self,
        chat_id: int,
        chat_type: str = "private",
        *,
        title: str | None = None,
        username: str | None = None,
        first_name: str | None = None,
    ) -> JSON:
        """Make a chat known (it then accepts messages); returns its Chat object."""
        chat: JSON = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = first_name or f"User {chat_id}"
        else:
            chat["title"] = title or f"Group {chat_id}"
        if username:
            chat["username"] = username
        with self._lock:
            self._chats.setdefault(chat_id, chat)
            return dict(self._chats[chat_id])

    def set_admins(self, chat_id: int, user_ids: Iterable[int], *, owner_id: int | None = None) -> None:
        """Declare a group's administrators (and creator), served by getChatMember."""
        with self._lock:
            self._admins[chat_id] = (owner_id, list(user_ids))

    def _user(self, user_id: int, username: str | None = None, first_name: str | None = None) -> JSON:
        user = self._users.setdefault(
            user_id, {"id": user_id, "is_bot": False, "first_name": first_name or f"User {user_id}"}
        )
        if first_name:
            user["first_name"] = first_name
        if username:
            user["username"] = username
        return dict(user)

    # simulated users

    def send_user_message(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int | None = None,
        chat_type: str = "private",
        username: str | None = None,
        first_name: str | None = None,
    ) -> JSON:
        """A user writes `text` in a chat (a private chat with that user by default); returns the Update."""
        sender = chat_id if user_id is None else user_id
        title = f"Group {chat_id}" if chat_type != "private" else None
        self.add_chat(
            chat_id,
            chat_type,
            title=title,
            first_name=first_name,
            username=username if chat_type == "private" else None,
        )
        with self._lock:
            message: JSON = {
                "message_id": self._next_message_id(chat_id),
                "from": self._user(sender, username, first_name),
                "chat": dict(self._chats[chat_id]),
                "date": int(self._clock()),
                "text": text,
            }
            entities = command_entities(text)
            if entities:
                message["entities"] = entities
            return self._enqueue("message", message)

    def _enqueue(self, kind: str, payload: JSON) -> JSON:
        update = {"update_id": next(self._update_ids), kind: payload}
        if not self._allowed_updates or kind in self._allowed_updates:
            self._updates.append(update)
            self._lock.notify_all()
        return update

    def pending_updates(self) -> list[JSON]:
        with self._lock:
            return list(self._updates)

    # faults

    def block(self, chat_id: int) -> None:
        """The user blocked the bot: sends to this private chat answer 403."""
        with self._lock:
            self._blocked.add(chat_id)

    def unblock(self, chat_id: int) -> None:
        with self._lock:
            self._blocked.discard(chat_id)

    def kick(self, chat_id: int) -> None:
        """The bot was removed from this group: sends answer 403."""
        with self._lock:
            self._kicked.add(chat_id)

    def migrate(self, chat_id: int, new_chat_id: int) -> None:
        """The group became a supergroup: sends to the old id answer 400 with migrate_to_chat_id."""
        old = self.add_chat(chat_id, "group")
        self.add_chat(new_chat_id, "supergroup", title=old.get("title"))
        with self._lock:
            self._migrated[chat_id] = new_chat_id

    def set_limits(self, limits: RateLimits) -> None:
        with self._lock:
            self._limits = limits
            self._buckets.clear()

    def fail_next(
        self,
        n: int = 1,
        *,
        status: int = 502,
        description: str | None = None,
        parameters: JSON | None = None,
        method: str | None = None,
        body: bytes | None = None,
    ) -> None:
        """The next `n` requests (to `method`, or any) get this answer instead (by default a JSON 502)."""
        if body is None:
            text = description or f"{'Bad Gateway' if status == 502 else 'Error'}"
            body = json.dumps(ApiError(status, text, parameters).body()).encode()
        self._add_fault(_Fault("fail", n, method, status=status, body=body))

    def rate_limit_next(self, retry_after: int, n: int = 1, *, method: str | None = "sendMessage") -> None:
        self.fail_next(
            n,
            status=429,
            description=f"Too Many Requests: retry after {retry_after}",
            parameters={"retry_after": retry_after},
            method=method,
        )

    def drop_connection_next(self, n: int = 1, *, method: str | None = None) -> None:
        """The next `n` requests are read, then the connection is closed without an answer."""
        self._add_fault(_Fault("drop", n, method))

    def delay_next(self, seconds: float, n: int = 1, *, method: str | None = None) -> None:
        """The next `n` requests are answered only after `seconds` (cut short when the server stops)."""
        self._add_fault(_Fault("delay", n, method, seconds=seconds))

    def _add_fault(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, method: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method is None or fault.method.lower() == method.lower():
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return replace(fault)
        return None

    # what the bot did

    def sent(self, chat_id: int | None = None) -> list[SentMessage]:
        with self._lock:
            return [m for m in self._deliveries if chat_id in (None, m.chat_id)]

    def calls(self, method: str | None = None) -> list[ApiCall]:
        with self._lock:
            return [c for c in self._calls if method is None or c.method.lower() == method.lower()]

    def commands(self, scope: JSON | None = None, language_code: str = "") -> list[JSON]:
        with self._lock:
            return list(self._commands.get((_scope_key(scope), language_code), []))

    # dispatch

    def _handle(self, token: str, method: str, params: JSON) -> Any:
        if token != self._token:
            raise ApiError(401, "Unauthorized")
        with self._lock:
            self._calls.append(ApiCall(method, dict(params)))
        implementation = getattr(self, f"_api_{method.lower()}", None)
        if implementation is None:
            raise ApiError(404, "Not Found")
        return implementation(params)

    def _api_getme(self, params: JSON) -> JSON:
        return dict(self.bot_user)

    def _api_getupdates(self, params: JSON) -> list[JSON]:
        offset = _int(params, "offset", 0) or 0
        limit = min(max(_int(params, "limit", 100) or 100, 1), 100)
        timeout = max(_int(params, "timeout", 0) or 0, 0)
        allowed = _json(params, "allowed_updates")
        deadline = time.monotonic() + timeout
        with self._lock:
            if self._webhook_url:
                raise ApiError(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                )
            if isinstance(allowed, list):
                self._allowed_updates = [str(kind) for kind in allowed]
            if offset > 0:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            elif offset < 0:
                self._updates = self._updates[offset:]
            self._poll_generation += 1
            generation = self._poll_generation
            self._lock.notify_all()  # a poll already waiting is now superseded
            while not self._updates and not self._stopping.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._lock.wait(remaining)
                if self._poll_generation != generation:
                    raise ApiError(
                        409,
                        "Conflict: terminated by other getUpdates request; make sure that only "
                        "one bot instance is running",
                    )
            return [_copy(u) for u in self._updates[:limit]]

    def _api_deletewebhook(self, params: JSON) -> bool:
        with self._lock:
            self._webhook_url = ""
            if _flag(params, "drop_pending_updates"):
                self._updates.clear()
        return True

    def _api_setwebhook(self, params: JSON) -> bool:
        with self._lock:
            self._webhook_url = _text(params, "url") or ""
        return True

    def _api_setmycommands(self, params: JSON) -> bool:
        commands = _json(params, "commands")
        if not isinstance(commands, list):
            raise ApiError(400, 'Bad Request: parameter "commands" is required')
        for command in commands:
            if not isinstance(command, dict) or not re.fullmatch(r"[a-z0-9_]{1,32}", str(command.get("command"))):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise ApiError(400, "Bad Request: command description is empty")
        with self._lock:
            key = (_scope_key(_json(params, "scope")), _text(params, "language_code") or "")
            self._commands[key] = [{"command": c["command"], "description": c["description"]} for c in commands]
        return True

    def _api_getchatmember(self, params: JSON) -> JSON:
        chat_id = self._chat_id(params)
        user_id = _int(params, "user_id")
        if user_id is None:
            raise ApiError(400, "Bad Request: invalid user_id specified")
        with self._lock:
            owner, admins = self._admins.get(chat_id, (None, []))
            if user_id == owner:
                return self._member("creator", user_id)
            return self._member("administrator" if user_id in admins else "member", user_id)

    def _member(self, status: str, user_id: int) -> JSON:
        member: JSON = {"status": status, "user": self._user(user_id)}
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "administrator":
            member.update(
                can_be_edited=False,
                is_anonymous=False,
                **dict.fromkeys(
                    (
                        "can_manage_chat",
                        "can_delete_messages",
                        "can_manage_video_chats",
                        "can_restrict_members",
                        "can_promote_members",
                        "can_change_info",
                        "can_invite_users",
                        "can_post_stories",
                        "can_edit_stories",
                        "can_delete_stories",
                        "can_pin_messages",
                    ),
                    True,
                ),
            )
        return member

    def _api_sendmessage(self, params: JSON) -> JSON:
        chat_id = self._chat_id(params)
        content = self._content(params)
        with self._lock:
            self._check_reachable(chat_id)
            message: JSON = {
                "message_id": self._next_message_id(chat_id),
                "from": dict(self.bot_user),
                "chat": dict(self._chats[chat_id]),
                "date": int(self._clock()),
                **content.result,
            }
            self._deliveries.append(
                replace(content.record, chat_id=chat_id, message_id=message["message_id"], date=message["date"])
            )
            return _copy(message)

    def _api_sendphoto(self, params: JSON) -> JSON:
        """A photo: an uploaded file (multipart), a file_id or a URL; recorded in `photos`."""
        chat_id = self._chat_id(params)
        photo = params.get("photo")
        if not photo:
            raise ApiError(400, "Bad Request: there is no photo in the request")
        caption = _text(params, "caption") or ""
        if len(caption) > 1024:
            raise ApiError(400, "Bad Request: message caption is too long")
        with self._lock:
            self._check_reachable(chat_id)
            size = len(photo) if isinstance(photo, bytes) else 0
            sizes = [
                {
                    "file_id": f"photo-{chat_id}-{len(self.photos)}",
                    "file_unique_id": f"u{len(self.photos)}",
                    "width": 1280,
                    "height": 720,
                    "file_size": size,
                }
            ]
            message: JSON = {
                "message_id": self._next_message_id(chat_id),
                "from": dict(self.bot_user),
                "chat": dict(self._chats[chat_id]),
                "date": int(self._clock()),
                "photo": sizes,
            }
            if caption:
                message["caption"] = caption
            self.photos.append({"chat_id": chat_id, "data": photo, "caption": caption})
            return _copy(message)

    # sending, step by step

    def _chat_id(self, params: JSON) -> int:
        value = params.get("chat_id")
        if value is None or value == "":
            raise ApiError(400, "Bad Request: chat_id is empty")
        with self._lock:
            if isinstance(value, str) and value.startswith("@"):
                found = [c for c, chat in self._chats.items() if chat.get("username") == value[1:]]
                if found:
                    return found[0]
                raise ApiError(400, "Bad Request: chat not found")
            try:
                chat_id = int(value)
            except (TypeError, ValueError) as exc:
                raise ApiError(400, "Bad Request: chat not found") from exc
            if chat_id not in self._chats:
                raise ApiError(400, "Bad Request: chat not found")
            return chat_id

    def _content(self, params: JSON) -> _Content:
        raw = _text(params, "text") or ""
        parse_mode = _text(params, "parse_mode")
        entities = _json(params, "entities") or []
        plain = raw
        if parse_mode and parse_mode.lower() == "html":
            try:
                plain, entities = parse_html(raw, strict=self.strict_html)
            except HtmlError as exc:
                raise ApiError(400, f"Bad Request: can't parse entities: {exc}") from exc
        elif parse_mode and parse_mode.lower() not in ("markdown", "markdownv2"):
            raise ApiError(400, f"Bad Request: unsupported parse_mode {parse_mode}")
        if not plain.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_length(plain.strip()) > MAX_TEXT_LENGTH:
            raise ApiError(400, "Bad Request: message is too long")
        preview = _json(params, "link_preview_options")
        result: JSON = {"text": plain}
        if entities:
            result["entities"] = entities
        if preview:
            result["link_preview_options"] = preview
        record = SentMessage(0, 0, raw, plain, tuple(entities), parse_mode, preview, 0)
        return _Content(result, record)

    def _check_reachable(self, chat_id: int) -> None:
        """Server-side refusals, in the order Telegram meets them; then the flood limits (lock held)."""
        chat = self._chats[chat_id]
        if chat_id in self._migrated:
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": self._migrated[chat_id]},
            )
        if chat_id in self._kicked:
            kind = "supergroup" if chat["type"] == "supergroup" else "group"
            raise ApiError(403, f"Forbidden: bot was kicked from the {kind} chat")
        if chat_id in self._blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        now = self._clock()
        per_chat = self._limits.private_chat if chat["type"] == "private" else self._limits.group_chat
        buckets = [
            (key, limit) for key, limit in (("overall", self._limits.overall), (chat_id, per_chat)) if limit is not None
        ]
        waits = [self._wait(key, limit, now) for key, limit in buckets]
        if any(waits):
            retry_after = max(waits)
            raise ApiError(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})
        for key, _limit in buckets:
            self._buckets[key].tokens -= 1

    def _wait(self, key: object, limit: Limit, now: float) -> int:
        bucket = self._buckets.setdefault(key, _Bucket(float(limit.burst), now))
        bucket.tokens = min(float(limit.burst), bucket.tokens + (now - bucket.stamp) * limit.rate)
        bucket.stamp = now
        if bucket.tokens >= 1:
            return 0
        return max(1, math.ceil((1 - bucket.tokens) / limit.rate - 1e-9))

    def _next_message_id(self, chat_id: int) -> int:
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))


@dataclass(frozen=True)
class _Content:
    result: JSON
    record: SentMessage


def _copy(obj: JSON) -> JSON:
    copied: JSON = json.loads(json.dumps(obj))
    return copied


def _scope_key(scope: Any) -> str:
    return json.dumps(scope or {"type": "default"}, sort_keys=True)


class _Server(ThreadingHTTPServer):
    """Tracks open connections, so that stopping closes keep-alive sockets and joins every handler thread."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client hanging up is not worth a traceback
            super().handle_error(request, client_address)

    def hang_up_all(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _handler_for(fake: FakeBotAPI) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
        timeout = 30  # an idle keep-alive connection never outlives a test by much

        def do_POST(self) -> None:  # the http.server protocol
            try:
                self._serve()
            except OSError:  # the client hung up, or the server is stopping
                self.close_connection = True

        do_GET = do_POST  # the Bot API accepts both

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path = urlsplit(self.path).path
            token, _, method = path.removeprefix("/bot").partition("/") if path.startswith("/bot") else ("", "", "")
            fault = fake._take_fault(method)
            if fault is not None and fault.kind == "drop":
                self.close_connection = True
                return
            if fault is not None and fault.kind == "delay":
                fake._stopping.wait(fault.seconds)
            if fault is not None and fault.kind == "fail":
                self._answer(fault.status, fault.body)
                return
            try:
                if not method or "/" in method:
                    raise ApiError(404, "Not Found")
                params = _read_params(self.path, self.headers.get("Content-Type", ""), body)
                answer: JSON = {"ok": True, "result": fake._handle(token, method, params)}
                status = 200
            except ApiError as error:
                answer, status = error.body(), error.status
            except Exception as exc:  # a bug in the fake: tell the client rather than hang up
                answer, status = ApiError(500, f"Internal Server Error: fake Bot API failed: {exc!r}").body(), 500
            self._answer(status, json.dumps(answer, ensure_ascii=False).encode())

        def _answer(self, status: int, payload: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()

        def log_message(self, format: str, *args: object) -> None:  # the paths carry the token
            pass

    return _Handler


__all__ = [
    "ApiCall",
    "ApiError",
    "FakeBotAPI",
    "HtmlError",
    "Limit",
    "RateLimits",
    "SentMessage",
    "command_entities",
    "parse_html",
    "utf16_length",
]
