"""A ledger transaction the database rolled back in a conflict is run again, once per failure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pymysql.err
import pytest
from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError

from connectors.vocabulary import LedgerState
from connectors.warehouse import lease, ledger
from connectors.warehouse.connect import warehouse

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _conflicts(engine: Engine, count: int) -> list[str]:
    """Make the first `count` statements fail as a MySQL deadlock; returns the statements seen."""
    seen: list[str] = []

    def fail(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)
        if len(seen) <= count:
            orig = pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock")
            raise OperationalError(statement, None, orig)

    event.listen(engine, "before_cursor_execute", fail)
    return seen


def _claim(phone: str) -> ledger.Claim:
    return ledger.Claim(phone, "c1", phone[1:], 1, NOW, NOW, None, "onprem:test", "DE")


def test_a_conflict_is_retried_and_the_claim_is_won_once(tmp_path: Path) -> None:
    engine = warehouse(f"sqlite:///{tmp_path}/w.sqlite")
    held = lease.acquire(engine, "c", "run-1", timedelta(minutes=5))
    seen = _conflicts(engine, 1)

    won = ledger.advance(engine, held, "run-1", results=[], claims=[_claim("+4915100001")])

    assert won == {"+4915100001"}
    assert len(seen) > 1  # the first statement failed, the transaction ran again
    rows = ledger.load(engine, "c")
    assert rows["state"].tolist() == [LedgerState.SENDING]
    assert rows["attempts"].tolist() == [1]


def test_an_error_that_is_no_conflict_is_raised_at_once(tmp_path: Path) -> None:
    engine = warehouse(f"sqlite:///{tmp_path}/w.sqlite")
    held = lease.acquire(engine, "c", "run-1", timedelta(minutes=5))
    seen: list[str] = []

    def fail(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)
        orig = pymysql.err.OperationalError(2003, "Can't connect to MySQL server")
        raise OperationalError(statement, None, orig)

    event.listen(engine, "before_cursor_execute", fail)
    with pytest.raises(OperationalError):
        ledger.advance(engine, held, "run-1", results=[], claims=[_claim("+4915100001")])
    assert len(seen) == 1
