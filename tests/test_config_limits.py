"""The configuration is refused where the database could not hold it: ids and status names longer than their
columns, whose lengths are read from the models. One line per problem, naming file, line, key and limit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlmodel import SQLModel

import monitor.store.models  # noqa: F401  (registers the tables)
from monitor.cli import cli
from monitor.config import parse_config
from monitor.errors import ConfigError

TABLES = SQLModel.metadata.tables


def _length(column: sa.Column[Any]) -> int | None:
    """The declared length of a string column (SQLModel's AutoString wraps a String)."""
    kind = column.type.impl_instance if isinstance(column.type, sa.types.TypeDecorator) else column.type
    assert isinstance(kind, sa.String), column
    return kind.length


ID = _length(TABLES["source"].c.id)
PROPOSAL_ID = _length(TABLES["proposal"].c.id)
STATUS = _length(TABLES["proposal"].c.status)
SOURCE = "sources:\n  - {{id: {}, name: A, url: 'https://e.org/'}}\n"
PROPOSAL = "proposals:\n  - {{id: {}, title: P}}\n"
LADDER = "settings:\n  status:\n    ladder: [discussion, {}]\n    corroboration: {{}}\n"

CASES = [  # (what, YAML, the longest accepted, the line and key at fault, the limit, the column)
    ("source id", SOURCE, ID, "2: sources[0].id", "source.id"),
    ("proposal id", PROPOSAL, PROPOSAL_ID, "2: proposals[0].id", "proposal.id"),
    ("ladder status", LADDER, STATUS, "3: settings.status.ladder[1]", "proposal.status"),
]


@pytest.mark.parametrize(("what", "template", "limit", "where", "column"), CASES, ids=[case[0] for case in CASES])
def test_config_limits_refuse_what_the_column_cannot_hold(
    what: str, template: str, limit: int, where: str, column: str
) -> None:
    parse_config(template.format("x" * limit), Path("feeds.yaml"), {})  # at the limit: fine
    with pytest.raises(ConfigError) as caught:
        parse_config(template.format("x" * (limit + 1)), Path("feeds.yaml"), {})
    assert caught.value.problems == [
        f"feeds.yaml:{where}: {limit + 1} characters, longer than the {limit} the database holds ({column})"
    ]


@pytest.mark.parametrize(("what", "template", "limit", "where", "column"), CASES, ids=[case[0] for case in CASES])
def test_config_limits_monitor_check_refuses_in_one_line(
    tmp_path: Path, what: str, template: str, limit: int, where: str, column: str
) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(template.format("x" * (limit + 1)), encoding="utf-8")
    result = CliRunner().invoke(cli, ["check", "--config", str(path)])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert result.output.strip().splitlines() == [
        f"error: {path}:{where}: {limit + 1} characters, longer than the {limit} the database holds ({column})"
    ]


def test_config_limits_are_those_of_every_column_that_stores_an_id_or_a_status() -> None:
    """Wherever a source id, proposal id or status is stored, its column is as long as the configuration allows."""
    stored = {"source.id": ID, "proposal.id": PROPOSAL_ID}
    for table in TABLES.values():
        for column in table.columns:
            for key in column.foreign_keys:
                if key.target_fullname in stored:
                    assert _length(column) == stored[key.target_fullname], f"{table.name}.{column.name}"
            if column.name in ("status", "from_status", "to_status", "min_status"):
                assert _length(column) == STATUS, f"{table.name}.{column.name}"
