"""The run summary's cost table: each (category, market) estimated before sending beside what
Meta bills so far (billable deliveries priced by the card, from `wa_campaign_costs`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

import pandas as pd

HEADER: Final = (
    "| category | market | estimated messages | estimated USD | billable so far | actual USD |"
)
ALIGN: Final = "|---|---|---:|---:|---:|---:|"
NO_RATE: Final = "no rate"  # the card has no rate for this market and category, nor a `*` one
ABSENT: Final = "–"  # the row is not in that frame (nothing estimated, or nothing billed yet)


def cost_lines(estimate: pd.DataFrame, actual: pd.DataFrame | None) -> list[str]:
    """Markdown table lines (header, alignment, one row per category and market, total) from
    `estimate`'s frame and `campaign_costs`'s (None: not read, e.g. a dry run)."""
    planned = _by_key(estimate, "messages", "usd")
    billed = _by_key(actual, "billable_messages", "cost_usd") if actual is not None else {}
    keys = sorted(planned.keys() | billed.keys())
    if not keys:
        return []
    lines = [HEADER, ALIGN]
    for key in keys:
        category, market = key
        lines.append(
            f"| {category} | {market} | {_cells(planned.get(key))} | {_cells(billed.get(key))} |"
        )
    lines.append(f"| **total** | | {_total(planned.values())} | {_total(billed.values())} |")
    return lines


_Row = tuple[int, Decimal | None]


def _by_key(frame: pd.DataFrame, messages: str, usd: str) -> dict[tuple[str, str], _Row]:
    """The frame's (count, USD) by (category, market)."""
    return {
        (str(category), str(market)): (int(count), _decimal(amount))
        for category, market, count, amount in zip(
            frame["category"], frame["market"], frame[messages], frame[usd], strict=True
        )
    }


def _decimal(value: Any) -> Decimal | None:
    """A USD value as a Decimal (floats by their shortest repr), None when missing."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _cells(row: _Row | None) -> str:
    """The count and USD cells of one side, or both absent."""
    if row is None:
        return f"{ABSENT} | {ABSENT}"
    count, usd = row
    return f"{count:,} | {_usd(usd) if usd is not None else NO_RATE}"


def _total(rows: Any) -> str:
    """The count and known USD of one side, saying so when the sum leaves unpriced rows out."""
    found = list(rows)
    if not found:
        return f"{ABSENT} | {ABSENT}"
    count = sum(n for n, _ in found)
    known = [usd for _, usd in found if usd is not None]
    unpriced = " + unpriced" if known and len(known) < len(found) else ""
    amount = _usd(sum(known, Decimal(0))) if known else NO_RATE
    return f"{count:,} | {amount}{unpriced}"


def _usd(value: Decimal) -> str:
    """Dollars to the hundredth of a cent (rates have four places)."""
    return f"{value:,.4f}"
