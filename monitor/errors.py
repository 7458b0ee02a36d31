"""The exceptions the monitor raises, all under one base.

    MonitorError
    ├── ConfigError          feeds.yaml or the environment is invalid (one line per problem)
    ├── DatabaseError        the database is unreachable, broken or newer than this code
    │   └── DatabaseBusyError    another process kept the database locked past the busy timeout
    ├── LockedError          another run holds the run lock
    ├── FetchError           a feed could not be fetched
    │   ├── FetchTimeout         connect, read or total deadline exceeded
    │   ├── FetchHTTPError       a non-success HTTP status (carries the status)
    │   ├── BodyTooLarge         the decompressed body exceeded the size limit
    │   ├── RedirectError        a redirect loop, too many hops or a non-http(s) target
    │   └── UnsupportedURL       a scheme other than http or https
    ├── ParseError           the body is not a usable feed
    │   └── NotAFeed             an HTML page or other document where a feed was expected
    ├── TelegramConfigError  Telegram refused the bot token                    (monitor.notify)
    ├── ReviewError          a review action that cannot apply                  (monitor.store.review)
    └── SearchError          a full-text query the index cannot read            (monitor.store.queries)

Every message is a single line that names what is at fault (the file and line, the feed, or the field).
"""

from __future__ import annotations


class MonitorError(Exception):
    """Base of every error the monitor reports to its user."""


class ConfigError(MonitorError):
    """The configuration is invalid. `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class DatabaseError(MonitorError):
    """The database cannot be used as it is."""


class DatabaseBusyError(DatabaseError):
    """Another process held the database's write lock for longer than the busy timeout; nothing was written."""


class LockedError(MonitorError):
    """Another run is already working."""


class FetchError(MonitorError):
    """A feed could not be fetched."""


class FetchTimeout(FetchError):
    """A connect, read or total deadline was exceeded."""


class FetchHTTPError(FetchError):
    """The server answered with a status that carries no feed."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class BodyTooLarge(FetchError):
    """The decompressed body is larger than the configured limit."""


class RedirectError(FetchError):
    """The redirects loop, go on too long or leave http(s)."""


class UnsupportedURL(FetchError):
    """Only http and https URLs are fetched."""


class ParseError(MonitorError):
    """The body could not be read as a feed."""


class NotAFeed(ParseError):
    """The body is an HTML page or another document, not RSS or Atom."""
