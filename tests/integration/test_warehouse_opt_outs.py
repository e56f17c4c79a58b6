"""Opt-outs in `wa_opt_outs` on each dialect: one row per number, the earliest one kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select

from connectors.warehouse.connect import warehouse
from connectors.warehouse.events import OptOut, opted_out_numbers, opted_out_wa_ids
from connectors.warehouse.events.opt_outs import store_opt_outs
from connectors.warehouse.schema import opt_outs

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def store(engine: Engine, found: list[OptOut], now: datetime = T0) -> int:
    with engine.begin() as conn:
        return store_opt_outs(conn, found, now)


def kept(engine: Engine) -> dict[str, tuple[str, str, datetime]]:
    """phone_e164 -> (keyword, message_id, opted_out_at)."""
    o = opt_outs.c
    with engine.connect() as conn:
        rows = conn.execute(select(o.phone_e164, o.keyword, o.message_id, o.opted_out_at))
        return {p: (k, m, at.replace(tzinfo=UTC)) for p, k, m, at in rows}


def test_the_earliest_opt_out_of_a_number_is_kept_in_any_order(any_db_url: str) -> None:
    engine = warehouse(any_db_url)
    early, late = T0 - timedelta(hours=1), T0
    both = [
        OptOut("4915100000013", "STOP", "late", late),
        OptOut("4915100000013", "BAJA", "early", early),
    ]
    assert store(engine, both) == 1  # one statement may not touch a key twice
    assert kept(engine) == {"+4915100000013": ("BAJA", "early", early)}

    assert store(engine, [OptOut("4915100000013", "STOPP", "later", late)]) == 1
    assert kept(engine) == {"+4915100000013": ("BAJA", "early", early)}

    earliest = early - timedelta(days=1)
    store(engine, [OptOut("4915100000013", "СТОП", "earliest", earliest)])
    assert kept(engine) == {"+4915100000013": ("СТОП", "earliest", earliest)}


def test_later_campaigns_read_the_numbers_and_wa_ids_that_opted_out(any_db_url: str) -> None:
    engine = warehouse(any_db_url)
    assert store(engine, []) == 0
    store(
        engine,
        [OptOut("4915100000011", "STOP", "a", T0), OptOut("16315551234", "STOP", "b", T0)],
    )
    assert opted_out_numbers(engine) == {"+4915100000011", "+16315551234"}
    assert opted_out_wa_ids(engine) == {"4915100000011", "16315551234"}
