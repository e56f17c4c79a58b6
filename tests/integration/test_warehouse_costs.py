"""Costs in the warehouse on each dialect: the rate card replaced whole, estimates upserted, the
view `wa_campaign_costs` pricing billable deliveries by market or `*`, and the market a claim
records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import insert, select

from connectors.pricing.card import RateCard, load_rate_card
from connectors.pricing.estimate import estimate
from connectors.warehouse import lease, ledger
from connectors.warehouse.connect import warehouse
from connectors.warehouse.costs import (
    campaign_costs,
    estimated_costs,
    save_estimate,
    save_rate_card,
)
from connectors.warehouse.schema import deliveries, rate_card

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)


def _card(tmp_path: Path, *lines: str) -> RateCard:
    path = tmp_path / f"card{len(lines)}.csv"
    path.write_text("\n".join(["market,category,usd,as_of", *lines]) + "\n")
    return load_rate_card(path)


CARD_LINES = (
    "BR,marketing,0.0782,2026-01-01",
    "AR,marketing,0.0773,2026-01-01",
    "BR,utility,0.0085,2026-01-01",
    "*,marketing,0.0500,2026-01-01",
)


def _delivery(
    n: int,
    market: str | None,
    category: str | None,
    pricing_type: str | None,
    billable: bool | None,
    campaign: str = "spring",
) -> dict[str, Any]:
    return {
        "campaign_id": campaign,
        "phone_e164": f"+1000000{n:04d}",
        "customer_id": str(n),
        "state": "sent",
        "retryable": False,
        "attempts": 1,
        "run_id": "run-1",
        "market": market,
        "pricing_model": "PMP" if category else None,
        "pricing_category": category,
        "pricing_type": pricing_type,
        "billable": billable,
    }


def test_saving_a_rate_card_replaces_the_previous_one(any_db_url: str, tmp_path: Path) -> None:
    engine = warehouse(any_db_url)
    assert save_rate_card(engine, _card(tmp_path, *CARD_LINES)) == 4
    newer = _card(tmp_path, "BR,marketing,0.0700,2026-04-01", "CL,utility,0.0250,2026-04-01")
    assert save_rate_card(engine, newer) == 2
    with engine.connect() as conn:
        rows = conn.execute(select(rate_card).order_by(rate_card.c.market)).all()
    assert [tuple(r) for r in rows] == [
        ("BR", "marketing", Decimal("0.0700"), "2026-04-01"),
        ("CL", "utility", Decimal("0.0250"), "2026-04-01"),
    ]


def test_an_estimate_is_upserted_and_read_back_exactly(any_db_url: str, tmp_path: Path) -> None:
    engine = warehouse(any_db_url)
    card = _card(tmp_path, "BR,marketing,0.0782,2026-01-01")
    phones = pd.Series(["+5511987654321", "+5521987654321", "+14155550100"], dtype="str")
    first = estimate(phones[:1], "MARKETING", card)
    save_estimate(engine, run_id="r1", attempt=1, campaign_id="spring", frame=first, now=NOW)
    frame = estimate(phones, "MARKETING", card)
    saved = save_estimate(
        engine, run_id="r1", attempt=1, campaign_id="spring", frame=frame, now=NOW
    )
    assert saved == 2
    save_estimate(engine, run_id="r1", attempt=2, campaign_id="spring", frame=first, now=NOW)

    found = estimated_costs(engine, "spring", "r1", 1)
    assert list(found.columns) == ["category", "market", "messages", "usd"]
    assert [tuple(r) for r in found.itertuples(index=False)] == [
        ("marketing", "BR", 2, Decimal("0.1564")),
        ("marketing", "US", 1, None),
    ]
    assert len(estimated_costs(engine, "spring", "r1", 2)) == 1
    assert estimated_costs(engine, "autumn", "r1", 1).empty


def test_the_cost_view_prices_billable_deliveries_by_market_or_rest_of_world(
    any_db_url: str, tmp_path: Path
) -> None:
    engine = warehouse(any_db_url)
    save_rate_card(engine, _card(tmp_path, *CARD_LINES))
    rows = [
        *(_delivery(i, "BR", "marketing", "regular", True) for i in range(3)),
        _delivery(3, "BR", "marketing", "free_customer_service", False),
        *(_delivery(i, "AR", "marketing", "regular", True) for i in (4, 5)),
        _delivery(6, "US", "marketing", "regular", True),  # no US rate: the `*` one
        _delivery(7, None, "marketing", "regular", True),  # no market: `*` too
        _delivery(8, "BR", "utility", None, True),  # before `type`: billable says
        _delivery(9, "BR", "utility", None, False),
        _delivery(10, "BR", "utility", "free_customer_service", None),
        _delivery(11, "CL", "utility", "regular", True),  # no CL rate, no `*` utility rate
        *(_delivery(i, "BR", None, None, None) for i in (12, 13)),  # no status with pricing yet
        _delivery(14, "BR", "marketing", "regular", True, campaign="autumn"),
    ]
    with engine.begin() as conn:
        conn.execute(insert(deliveries), rows)

    costs = campaign_costs(engine, "spring")

    assert list(costs.columns) == ["category", "market", "billable_messages", "cost_usd"]
    assert [tuple(r) for r in costs.itertuples(index=False)] == [
        ("marketing", "*", 1, Decimal("0.0500")),
        ("marketing", "AR", 2, Decimal("0.1546")),
        ("marketing", "BR", 3, Decimal("0.2346")),
        ("marketing", "US", 1, Decimal("0.0500")),
        ("utility", "BR", 1, Decimal("0.0085")),
        ("utility", "CL", 1, None),
    ]
    assert [type(v) for v in costs["cost_usd"] if v is not None] == [Decimal] * 5
    assert campaign_costs(engine, "winter").empty


def test_a_claim_records_the_market_of_its_number(any_db_url: str) -> None:
    engine = warehouse(any_db_url)
    held = lease.acquire(engine, "spring", "run-a#1", timedelta(seconds=30))
    claims = [
        ledger.Claim("+5511987654321", "1", "5511987654321", 1, NOW, NOW, market="BR"),
        ledger.Claim("+80012345678", "2", "80012345678", 1, NOW, NOW),
    ]
    ledger.advance(engine, held, "run-a", results=[], claims=claims)
    with engine.connect() as conn:
        found = dict(conn.execute(select(deliveries.c.phone_e164, deliveries.c.market)).all())
    assert found == {"+5511987654321": "BR", "+80012345678": None}


def test_a_run_without_a_template_category_still_records_the_card_that_prices_its_bill(
    sqlite_url: str,
) -> None:
    from pydantic import SecretStr
    from sqlalchemy import func

    from connectors.warehouse.schema import cost_estimates
    from tasks.costs import estimate_task

    priced = estimate_task.fn({"BR": 1}, None, SecretStr(sqlite_url), "run-1", 1, "c")

    assert priced.empty
    engine = warehouse(sqlite_url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(rate_card)).scalar_one() > 0
        assert conn.execute(select(func.count()).select_from(cost_estimates)).scalar_one() == 0
