"""Every database read and write, one module per concern.

    db          engine factory, SQLite pragmas, transactions off the event loop, Alembic upgrade, run lock
    models      the SQLModel tables (no reads or writes)
    items       feeds (sources), their leases and poll runs, stored items, counts
    bulk        the poll's batched writes: items, matches and status changes for a whole feed at once
    history     proposals, matches, the status history and the event outbox it appends to
    outbox      subscribers, digests and their parts, claims of a sender
    review      an analyst's confirm, reject and set-status
    queries     the read-only questions analysts ask (tables, search, exports, timelines)
    search_pg   full-text search on PostgreSQL

Functions take a keyword-only `session`; callers own the transaction. The pure stages (parse, match, status,
digest, ...) import nothing from here.
"""
