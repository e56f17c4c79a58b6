"""Which warehouse errors are lost races between transactions, retried by the ledger's writes."""

from __future__ import annotations

import psycopg.errors
import pymysql.err
import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from connectors.warehouse.ledger import write_conflict


@pytest.mark.parametrize(
    ("orig", "conflict"),
    [
        (pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock"), True),
        (pymysql.err.OperationalError(1205, "Lock wait timeout exceeded"), True),
        (psycopg.errors.DeadlockDetected("deadlock detected"), True),
        (psycopg.errors.SerializationFailure("could not serialize access"), True),
        (pymysql.err.OperationalError(2003, "Can't connect to MySQL server"), False),
        (psycopg.errors.UndefinedTable("relation does not exist"), False),
    ],
    ids=[
        "mysql-deadlock",
        "mysql-lock-wait",
        "pg-deadlock",
        "pg-serialization",
        "mysql-down",
        "pg-other",
    ],
)
def test_deadlocks_and_serialization_failures_are_conflicts_others_not(
    orig: Exception, conflict: bool
) -> None:
    assert write_conflict(OperationalError("UPDATE wa_deliveries ...", {}, orig)) is conflict


def test_an_integrity_error_or_a_plain_exception_is_no_conflict() -> None:
    duplicate = pymysql.err.IntegrityError(1062, "Duplicate entry")
    assert not write_conflict(IntegrityError("INSERT ...", {}, duplicate))
    assert not write_conflict(RuntimeError("1213"))
