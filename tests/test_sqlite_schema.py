"""A new SQLite file is built from `monitor/store/sqlite_schema.sql` in one step: the script is what the
migrations build (it fails here when a migration changes the schema and the script was not written again), a
file made from it equals one made by Alembic row for row, a stale script is left alone, and a script that
fails half way leaves the file empty."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.store import sqlite_schema
from monitor.store.revisions import head_revision
from monitor.store.schema import open_database, schema_state

pytestmark = pytest.mark.sqlite_only  # SQLite's own file; PostgreSQL is always migrated by Alembic


@pytest.fixture(scope="module")
def by_alembic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("alembic") / "m.db"
    sqlite_schema.migrated_by_alembic(path)
    return path


def _contents(path: Path) -> dict[str, object]:
    """Every schema row and every table's rows (FTS5's own tables too), in a comparable form."""
    with sqlite3.connect(path) as connection:
        master = connection.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
        tables = [name for type_, name, _, sql in master if type_ == "table" and "VIRTUAL" not in (sql or "")]
        rows = {name: sorted(connection.execute(f'SELECT * FROM "{name}"').fetchall()) for name in tables}
    schema = sorted(((type_, name, table, _normal(sql)) for type_, name, table, sql in master), key=repr)
    return {"sqlite_master": schema, **rows}


def _normal(sql: str | None) -> object:
    """A CREATE TABLE as the set of its columns and constraints (a batch migration writes the constraints in
    no fixed order), anything else with its white space collapsed."""
    if sql is None:
        return None
    text = " ".join(sql.split())
    if not text.startswith("CREATE TABLE"):
        return text
    head, _, body = text.partition("(")
    parts, depth, part = [], 0, ""
    for char in body.rstrip(")").rstrip():
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            parts.append(part.strip())
            part = ""
        else:
            part += char
    parts.append(part.strip())
    return head.strip(), frozenset(parts)


def test_the_script_is_what_the_migrations_build(by_alembic: Path, tmp_path: Path) -> None:
    stale = "monitor/store/sqlite_schema.sql is stale: run `python -m monitor.store.sqlite_schema`"
    script = sqlite_schema.script_for(head_revision() or "")
    assert script is not None, stale
    with sqlite3.connect(tmp_path / "m.db", isolation_level=None) as connection:
        sqlite_schema.create(connection, script)
    assert _contents(tmp_path / "m.db") == _contents(by_alembic), stale
    assert _contents(tmp_path / "m.db") == _contents(_rendered_again(by_alembic, tmp_path))


def _rendered_again(path: Path, folder: Path) -> Path:
    """A file made from the script `render` writes of `path`: what `python -m monitor.store.sqlite_schema` does."""
    again = folder / "again.db"
    with sqlite3.connect(again, isolation_level=None) as connection:
        sqlite_schema.create(connection, sqlite_schema.render(path))
    return again


def test_a_file_made_from_the_script_equals_one_made_by_alembic(by_alembic: Path, tmp_path: Path) -> None:
    engine = open_database(f"sqlite:///{tmp_path / 'm.db'}")
    current, head = schema_state(engine)
    engine.dispose()
    assert current == head
    made = _contents(tmp_path / "m.db")
    assert made == _contents(by_alembic)
    assert {"item", "item_fts", "item_fts_data", "item_fts_pending", "v_current_status"} <= {
        row[1]
        for row in made["sqlite_master"]  # type: ignore[attr-defined]
    }


def test_a_new_file_needs_no_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    code = f"import sys; from monitor.store.schema import open_database; open_database({url!r}).dispose(); "
    code += "print('alembic' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.strip() == "False"


def test_a_stale_script_is_left_alone(by_alembic: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "stale.sql"
    text = sqlite_schema.SCRIPT.read_text(encoding="utf-8")
    stale.write_text(text.replace("-- revision: ", "-- revision: 0000_before_", 1).replace("CREATE TABLE", "X", 1))
    monkeypatch.setattr(sqlite_schema, "SCRIPT", stale)
    assert sqlite_schema.script_for(head_revision() or "") is None
    open_database(f"sqlite:///{tmp_path / 'm.db'}").dispose()  # Alembic builds it, as before the script
    assert _contents(tmp_path / "m.db") == _contents(by_alembic)


def test_a_script_that_fails_half_way_leaves_the_file_empty(tmp_path: Path) -> None:
    script = sqlite_schema.SCRIPT.read_text(encoding="utf-8") + "\nCREATE TABLE item (id INTEGER);\n"
    with sqlite3.connect(tmp_path / "m.db", isolation_level=None) as connection:
        with pytest.raises(sqlite3.OperationalError, match="already exists"):
            sqlite_schema.create(connection, script)
        assert connection.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)
    open_database(f"sqlite:///{tmp_path / 'm.db'}").dispose()  # and the next command builds it whole
    assert _contents(tmp_path / "m.db")["alembic_version"] == [(head_revision(),)]


def _rebuilt(path: Path, constraints: list[str], indexes: list[str]) -> Path:
    """A file as a batch migration may leave it: a table's constraints and indexes in the order given."""
    columns = ["\tid INTEGER NOT NULL", "\ta INTEGER", "\tb INTEGER"]
    body = ", \n".join(columns + [f"\tCONSTRAINT {clause}" for clause in constraints])
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        connection.execute("INSERT INTO alembic_version VALUES ('0001_x')")
        connection.execute("CREATE TABLE other (id INTEGER NOT NULL, CONSTRAINT pk_other PRIMARY KEY (id))")
        connection.execute(f'CREATE TABLE "thing" (\n{body}\n)')
        for name in indexes:
            connection.execute(f"CREATE INDEX {name} ON thing ({name.rsplit('_', 1)[1]})")
    return path


def test_the_script_is_the_same_whatever_order_a_batch_migration_left(tmp_path: Path) -> None:
    # Alembic rebuilds a table with its constraints (and recreates its indexes) in set order, which differs from
    # one run to the next: the script is written in one order, primary key first, so it does not churn.
    pk, fk_a, fk_b = (
        "pk_thing PRIMARY KEY (id)",
        "fk_thing_a_other FOREIGN KEY(a) REFERENCES other (id)",
        "fk_thing_b_other FOREIGN KEY(b) REFERENCES other (id)",
    )
    one = sqlite_schema.render(_rebuilt(tmp_path / "one.db", [pk, fk_a, fk_b], ["ix_thing_a", "ix_thing_b"]))
    two = sqlite_schema.render(_rebuilt(tmp_path / "two.db", [fk_b, fk_a, pk], ["ix_thing_b", "ix_thing_a"]))
    assert one == two
    assert one.index(pk) < one.index(fk_a) < one.index(fk_b) and one.index("ix_thing_a") < one.index("ix_thing_b")
    with sqlite3.connect(tmp_path / "from_script.db") as rebuilt:
        sqlite_schema.create(rebuilt, one)  # still a script SQLite runs
        assert [row[2] for row in rebuilt.execute("PRAGMA foreign_key_list(thing)")] == ["other", "other"]
