"""The warehouse side of costs: the rate card priced with, each run's estimate, and what the
view `wa_campaign_costs` says billable deliveries cost so far."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Final

import pandas as pd
from sqlalchemy import Engine, Integer, Numeric, String, column, delete, insert, select, table

from connectors.pricing.card import REST_OF_WORLD, RateCard
from connectors.warehouse.schema import cost_estimates, rate_card
from connectors.warehouse.upsert import upsert

# The view of migration 0006 (not in schema.metadata: create_all must not make it a table).
campaign_costs_view: Final = table(
    "wa_campaign_costs",
    column("campaign_id", String),
    column("category", String),
    column("market", String),
    column("billable_messages", Integer),
    column("cost_usd", Numeric(14, 6)),
)
ACTUAL_COLUMNS: Final = ("category", "market", "billable_messages", "cost_usd")
ESTIMATED_COLUMNS: Final = ("category", "market", "messages", "usd")


def save_rate_card(engine: Engine, card: RateCard) -> int:
    """Make `wa_rate_card` this card, in one transaction (the view prices with it); returns
    how many rates."""
    rows = [
        {"market": r.market, "category": r.category, "usd": r.usd, "as_of": r.as_of} for r in card
    ]
    with engine.begin() as conn:
        conn.execute(delete(rate_card))
        if rows:
            conn.execute(insert(rate_card), rows)
    return len(rows)


def save_estimate(
    engine: Engine,
    *,
    run_id: str,
    attempt: int,
    campaign_id: str,
    frame: pd.DataFrame,
    now: datetime,
) -> int:
    """Upsert a run attempt's estimate (`estimate`'s frame), one row per category and market;
    returns how many rows."""
    if now.tzinfo is None:
        raise ValueError("save_estimate: `now` is naive; pass a timezone-aware UTC datetime")
    rows = [
        {
            "run_id": run_id,
            "attempt": attempt,
            "category": str(category),
            "market": str(market),
            "campaign_id": campaign_id,
            "messages": int(messages),
            "usd": _decimal(usd),
            "estimated_at": now,
        }
        for category, market, messages, usd in zip(
            frame["category"], frame["market"], frame["messages"], frame["usd"], strict=True
        )
    ]
    with engine.begin() as conn:
        upsert(conn, cost_estimates, rows)
    return len(rows)


def campaign_costs(engine: Engine, campaign_id: str) -> pd.DataFrame:
    """What the campaign's billable deliveries cost so far, per category and market (a delivery
    with no market is under `*`; cost_usd None: no rate)."""
    v = campaign_costs_view.c
    stmt = select(v.category, v.market, v.billable_messages, v.cost_usd).where(
        v.campaign_id == campaign_id
    )
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    frame = _frame(rows, ACTUAL_COLUMNS, "billable_messages", "cost_usd")
    frame["market"] = frame["market"].fillna(REST_OF_WORLD)
    # Two rows can meet under `*` only if the card once had a market literally named "*".
    return _sorted(frame)


def estimated_costs(engine: Engine, campaign_id: str, run_id: str, attempt: int) -> pd.DataFrame:
    """The estimate a run attempt of the campaign saved, in `estimate`'s columns."""
    c = cost_estimates.c
    stmt = select(c.category, c.market, c.messages, c.usd).where(
        c.campaign_id == campaign_id, c.run_id == run_id, c.attempt == attempt
    )
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return _sorted(_frame(rows, ESTIMATED_COLUMNS, "messages", "usd"))


def _frame(rows: Any, columns: tuple[str, ...], count: str, usd: str) -> pd.DataFrame:
    """Rows as a frame: names as object columns, the count as int64, USD as Decimal or None."""
    frame = pd.DataFrame.from_records(list(rows), columns=list(columns))
    frame["category"] = frame["category"].astype(object)
    frame["market"] = frame["market"].astype(object)
    frame[count] = frame[count].astype("int64")
    frame[usd] = pd.Series([_decimal(v) for v in frame[usd]], index=frame.index, dtype=object)
    return frame


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["category", "market"], ignore_index=True)


def _decimal(value: Any) -> Decimal | None:
    """A USD amount as a Decimal, None where missing (NaN included)."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return value if isinstance(value, Decimal) else Decimal(str(value))
