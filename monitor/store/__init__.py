"""Every database read and write, one module per concern.

    db          engine factory, SQLite pragmas, retried transactions and ones off the event loop, locks
    schema      Alembic migrations; `open_database`, an engine on the current schema
    revisions   the head schema revision, read from the migration files without Alembic
    idle        a poll with nothing due, answered from the SQLite file with the standard library alone
    models      the SQLModel tables (no reads or writes)
    sources     feeds, their leases and health, poll runs
    items       stored items, versions and stories, counts; the insert-unless-present helpers
    bulk        the poll's batched writes: items, matches and status changes for a whole feed at once
    history     proposals, matches and the status history
    events      the event outbox that digests are cut from
    outbox      subscribers, digests and their parts, claims of a sender
    review      an analyst's confirm, reject and set-status
    queries     the read-only questions analysts ask: the views, exports, the review queue, timelines
    fulltext    full-text search: SQLite's FTS5, a LIKE search elsewhere
    search_pg   full-text search on PostgreSQL

Functions take a keyword-only `session`; callers own the transaction. The pure stages (parse, match, status,
digest, ...) import nothing from here.
"""
