"""Alembic environment: the models' metadata, batch mode for SQLite, and the monitor's own engine."""

from __future__ import annotations

from sqlmodel import SQLModel

import monitor.store.models  # noqa: F401  (registers the tables)
from alembic import context
from monitor.config import load_config
from monitor.store.db import create_db_engine
from monitor.store.schema import include_object, migration_transaction

config = context.config
target_metadata = SQLModel.metadata


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or load_config().database_url


def _configure(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        include_object=include_object,
    )


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, render_as_batch=True, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        context.run_migrations()
        return
    engine = create_db_engine(_url())
    try:
        with migration_transaction(engine) as connection:
            _configure(connection)
            context.run_migrations()
    finally:
        engine.dispose()  # a PostgreSQL connection left to the garbage collector is a resource leak


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
