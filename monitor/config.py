"""feeds.yaml and the environment -> a typed, validated `Config`.

Pure apart from reading the one file it is given: it does not touch the network, the database or the clock.
Every problem becomes one line, `FILE:LINE: FIELD: message`, collected into a single `ConfigError`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from monitor.env import (
    API_URL_ENV,
    CONFIG_ENV,
    DATABASE_ENV,
    DEFAULT_CONFIG_PATH,
    DEFAULT_DATABASE_URL,
    PROJECT_ROOT,
    TOKEN_ENV,
    config_digest,
    config_path,
)
from monitor.errors import ConfigError
from monitor.vocabulary import ID_LENGTH, STATUS_LENGTH, Frequency, Tier
from monitor.yaml_lines import KeyPath, describe_error, dotted, load_yaml

__all__ = [
    "API_URL_ENV",
    "CONFIG_ENV",
    "DATABASE_ENV",
    "DEFAULT_CONFIG_PATH",
    "PROJECT_ROOT",
    "TOKEN_ENV",
    "Tier",
    "config_path",
]  # read by the modules that import config


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)?\s*$")
_DURATION_UNITS = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {None: 1, "b": 1, "kb": 1000, "mb": 10**6, "gb": 10**9, "kib": 1024, "mib": 2**20, "gib": 2**30}
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def _duration(value: Any) -> float:
    """Seconds from `90`, `"90s"`, `"30m"`, `"2h"`, `"1d"` or `"1w"`."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30m, 2h or 1d")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"expected a duration such as 30m, 2h or 1d, got {value!r}")
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


def _size(value: Any) -> int:
    """Bytes from `1048576`, `"10MB"` or `"512KiB"`."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 10MB")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.match(str(value))
        if not match:
            raise ValueError(f"expected a size such as 10MB or 512KiB, got {value!r}")
        unit = match.group(2).lower() if match.group(2) else None
        size = int(float(match.group(1)) * _SIZE_UNITS[unit])
    if size <= 0:
        raise ValueError("a size must be positive")
    return size


def _identifier(value: str) -> str:
    if not _ID.match(value):
        raise ValueError(f"{value!r} is not an id: use lower-case letters, digits, '-' and '_'")
    return value


def _fits(limit: int, column: str) -> Callable[[str], str]:
    """No longer than the database column it is stored in: SQLite would keep a longer one, PostgreSQL not."""

    def check(value: str) -> str:
        if len(value) > limit:
            raise ValueError(f"{len(value)} characters, longer than the {limit} the database holds ({column})")
        return value

    return check


def _http_url(value: str) -> str:
    if not re.match(r"^https?://[^/\s]+", value, re.IGNORECASE):
        raise ValueError(f"{value!r} is not an http or https URL")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises for a port outside 0-65535 or not a number
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid URL: {exc}") from None
    if not parts.hostname:
        raise ValueError(f"{value!r} names no host")
    return value


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        near = sorted(zone for zone in available_timezones() if zone.lower() == value.lower())
        hint = f" (did you mean {near[0]}?)" if near else " (an IANA name such as Europe/Kyiv or UTC)"
        raise ValueError(f"{value!r} is not a known time zone{hint}") from None
    return value


def _term_group(value: str) -> str:
    if not any(any(c.isalnum() for c in term) for term in value.split("|")):
        raise ValueError(f"{value!r} names no term: give words separated by '|'")
    return value


Duration = Annotated[float, BeforeValidator(_duration)]
Size = Annotated[int, BeforeValidator(_size)]
Identifier = Annotated[str, AfterValidator(_identifier)]
SourceId = Annotated[Identifier, AfterValidator(_fits(ID_LENGTH, "source.id"))]
ProposalId = Annotated[Identifier, AfterValidator(_fits(ID_LENGTH, "proposal.id"))]
StatusName = Annotated[Identifier, AfterValidator(_fits(STATUS_LENGTH, "proposal.status"))]
HttpURL = Annotated[str, AfterValidator(_http_url)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class SourceConfig(_Strict):
    """One news feed to poll."""

    id: SourceId
    name: str = Field(min_length=1)
    url: HttpURL
    tier: Tier = "media"
    language: str = Field(default="en", pattern=r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")
    interval: Duration | None = None
    enabled: bool = True


class Concept(_Strict):
    """The proposal described by what it is: parts that must all occur in one sentence, close together.

    Each part is a group of term alternatives ("troop*|forces|soldiers"); "@actor" in a group stands for the
    proposal's actors. `near` is the most words allowed between two neighbouring parts; `ordered` asks for the
    parts in the order given ("security agreement", not "agreement on security")."""

    parts: list[Annotated[str, AfterValidator(_term_group)]] = Field(min_length=2, max_length=4)
    near: int = Field(default=4, ge=0, le=20)
    ordered: bool = False


class ProposalConfig(_Strict):
    """One tracked proposal and what identifies reports about it."""

    id: ProposalId
    title: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)
    names: list[str] = Field(default_factory=list)
    concepts: list[Concept] = Field(default_factory=list)
    actors: list[str] = Field(default_factory=list)
    required: list[str] = Field(default_factory=list)
    excluded: list[str] = Field(default_factory=list)
    excluded_in_clause: list[str] = Field(default_factory=list)  # explain away only a reading in their own clause
    excluded_in_reading: list[str] = Field(default_factory=list)  # ... only one they stand before or in
    initial_status: str = "discussion"
    # the day the proposal was first reported: an item published before it speaks of something else
    since: date | None = None
    # the last day reports spoke of it in the general words of its aliases: later, those words mean a newer one
    until: date | None = None
    notes: str = ""

    @model_validator(mode="after")
    def _window(self) -> ProposalConfig:
        if self.since is not None and self.until is not None and self.until < self.since:
            raise ValueError(f"until ({self.until}) is before since ({self.since})")
        return self


class PollSettings(_Strict):
    """How feeds are fetched and scheduled."""

    interval: Duration = 1800
    min_interval: Duration = 300
    max_backoff: Duration = 86400
    failing_after: int = Field(default=3, ge=1)
    concurrency: int = Field(default=16, ge=1, le=256)
    per_host: int = Field(default=2, ge=1, le=32)
    connect_timeout: Duration = 10
    read_timeout: Duration = 30
    total_timeout: Duration = 60
    max_bytes: Size = 10 * 2**20
    max_redirects: int = Field(default=5, ge=0, le=20)
    max_items: int = Field(default=5000, ge=1)
    lease: Duration = 900  # a worker's hold on the feeds it polls; a killed worker's feeds are free after this
    batch: int = Field(default=64, ge=1, le=10_000)  # feeds one worker leases at a time
    user_agent: str = "GuaranteeWatch/0.1 (news feed monitor)"


class CorroborationSettings(_Strict):
    """What it takes for a reported status change to count as confirmed."""

    sources: int = Field(default=2, ge=1)
    window: Duration = 7 * 86400
    official_suffices: bool = True


class StatusSettings(_Strict):
    """The status ladder, lowest first, and the corroboration policy per status."""

    ladder: list[StatusName] = Field(default_factory=lambda: ["discussion", "proposal", "signed"], min_length=2)
    corroboration: dict[str, CorroborationSettings] = Field(default_factory=lambda: {"signed": CorroborationSettings()})

    @model_validator(mode="after")
    def _known_statuses(self) -> StatusSettings:
        if len(set(self.ladder)) != len(self.ladder):
            raise ValueError("the ladder lists a status twice")
        unknown = sorted(set(self.corroboration) - set(self.ladder))
        if unknown:
            raise ValueError(f"corroboration names statuses not on the ladder: {', '.join(unknown)}")
        return self


class TelegramSettings(_Strict):
    """The Bot API connection and who administers the bot."""

    api_url: HttpURL = "https://api.telegram.org/bot"
    admin_chats: list[int] = Field(default_factory=list)


class DigestSettings(_Strict):
    """Digest defaults for new subscribers and limits on their length."""

    frequency: Frequency = "daily"
    hour: int = Field(default=8, ge=0, le=23)
    timezone: Annotated[str, AfterValidator(_timezone)] = "UTC"
    max_reports: int = Field(default=40, ge=1)


class Settings(_Strict):
    database_url: str = DEFAULT_DATABASE_URL
    poll: PollSettings = Field(default_factory=PollSettings)
    status: StatusSettings = Field(default_factory=StatusSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    digest: DigestSettings = Field(default_factory=DigestSettings)


class ConfigFile(_Strict):
    settings: Settings = Field(default_factory=Settings)
    sources: list[SourceConfig] = Field(default_factory=list)
    proposals: list[ProposalConfig] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        """`sources:` with nothing under it is an empty list, not an error."""
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data


@dataclass(frozen=True)
class Config:
    """Everything the commands need, after the environment has been applied."""

    path: Path
    settings: Settings
    sources: tuple[SourceConfig, ...]
    proposals: tuple[ProposalConfig, ...]
    telegram_token: str | None = None
    digest: str | None = None  # of the file as read (`monitor.env.config_digest`): what a poll synced

    @property
    def database_url(self) -> str:
        return self.settings.database_url

    def source(self, source_id: str) -> SourceConfig:
        for source in self.sources:
            if source.id == source_id:
                return source
        raise ConfigError([f"{self.path}: sources: no source with id {source_id!r}"])


def load_config(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read, validate and apply environment overrides. Raises `ConfigError` with one line per problem."""
    env = os.environ if env is None else env
    file = config_path(path, env)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{file}: no such configuration file (set {CONFIG_ENV} or pass --config)"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{file}: cannot be read: {exc}"]) from None
    return parse_config(text, file, env)


def parse_config(text: str, file: Path, env: Mapping[str, str]) -> Config:
    duplicate_keys: list[tuple[KeyPath, int]] = []
    data, lines = load_yaml(text, file, duplicate_keys)
    overrides: dict[str, Any] = {}
    if env.get(DATABASE_ENV):
        overrides["database_url"] = env[DATABASE_ENV]
    if env.get(API_URL_ENV):
        overrides["telegram"] = {"api_url": env[API_URL_ENV]}
    if overrides:
        data = dict(data)
        settings = dict(data.get("settings") or {})
        if "telegram" in overrides and isinstance(settings.get("telegram"), dict):
            overrides["telegram"] = {**settings["telegram"], **overrides["telegram"]}
        data["settings"] = {**settings, **overrides}
    problems = _cross_checks(data, lines)
    try:
        parsed = ConfigFile.model_validate(data)
    except ValidationError as exc:
        problems += [describe_error(error, lines) for error in exc.errors()]
    problems += [(line, f"{dotted(path)}: key given twice") for path, line in duplicate_keys]
    if problems:
        raise ConfigError([f"{file}:{line}: {text}" for line, text in sorted(problems)])
    return Config(
        path=file,
        settings=parsed.settings,
        sources=tuple(parsed.sources),
        proposals=tuple(parsed.proposals),
        telegram_token=env.get(TOKEN_ENV) or None,
        digest=config_digest(text),
    )


def _cross_checks(data: Mapping[str, Any], lines: dict[KeyPath, int]) -> list[tuple[int, str]]:
    """What no single field can check: ids used twice, initial statuses off the ladder. Read from the plain
    data, so that these are reported in the same pass as every other problem."""
    problems: list[tuple[int, str]] = []
    for section in ("sources", "proposals"):
        entries = data.get(section)
        seen: set[str] = set()
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            entry_id = entry.get("id") if isinstance(entry, dict) else None
            if not isinstance(entry_id, str):
                continue
            if entry_id in seen:
                line = lines.get((section, index), 1)
                problems.append((line, f"{section}[{index}].id: {entry_id!r} is already used above"))
            seen.add(entry_id)
    settings = data.get("settings")
    status = settings.get("status") if isinstance(settings, dict) else None
    ladder = status.get("ladder") if isinstance(status, dict) else None
    if not isinstance(ladder, list):
        ladder = StatusSettings().ladder
    proposals = data.get("proposals")
    for index, proposal in enumerate(proposals if isinstance(proposals, list) else []):
        initial = proposal.get("initial_status") if isinstance(proposal, dict) else None
        if isinstance(initial, str) and initial.strip() not in ladder:
            line = lines.get(("proposals", index, "initial_status"), 1)
            problems.append(
                (
                    line,
                    f"proposals[{index}].initial_status: {initial.strip()!r} is not on the ladder "
                    f"({', '.join(map(str, ladder))})",
                )
            )
    return problems
