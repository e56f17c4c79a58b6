"""What a send is expected to cost before it starts: its numbers counted by market and priced.

A number's market is its ISO region read from the number itself (`regions_of`). A number with no
region (e.g. +800, or a code no region owns) is counted under `*` and priced at the card's `*`
rate, as the view `wa_campaign_costs` prices a delivery whose market is NULL.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

import pandas as pd

from connectors.pricing.card import CATEGORIES, REST_OF_WORLD, RateCard
from tasks.phones.regions import regions_of

ESTIMATE_COLUMNS: Final = ("category", "market", "messages", "usd")


def card_category(template_category: str) -> str:
    """The card's category of a template's category (MARKETING -> marketing)."""
    category = template_category.strip().lower()
    if category not in CATEGORIES:
        raise ValueError(
            f"template category {template_category!r} has no rate card category; "
            f"use one of {', '.join(c.upper() for c in CATEGORIES[:3])}"
        )
    return category


def estimate(phones: pd.Series, category: str, card: RateCard) -> pd.DataFrame:
    """One row per market of the numbers: how many messages and their USD (None: no rate);
    `category` is the template's (MARKETING) or the card's (marketing)."""
    priced = card_category(category)
    present = phones.dropna()
    markets = regions_of(present).fillna(REST_OF_WORLD).astype(object)
    counts = markets.value_counts(sort=False).sort_index()
    rates = card.rates_of(pd.Series(counts.index, dtype=object), priced)
    usd = [
        rate * Decimal(int(n)) if isinstance(rate, Decimal) else None
        for rate, n in zip(rates, counts.to_numpy(), strict=True)
    ]
    return pd.DataFrame(
        {
            "category": pd.Series([priced] * len(counts), dtype=object),
            "market": pd.Series(list(counts.index), dtype=object),
            "messages": pd.Series(counts.to_numpy(), dtype="int64"),
            "usd": pd.Series(usd, dtype=object),
        },
        columns=list(ESTIMATE_COLUMNS),
    )


def total_usd(frame: pd.DataFrame) -> Decimal | None:
    """The estimate's USD over the markets with a rate; None when no market has one."""
    known = [v for v in frame["usd"] if isinstance(v, Decimal)]
    return sum(known, Decimal(0)) if known else None
