"""What a send is expected to cost before it starts: its numbers counted by market and priced.

A number's market is its ISO region read from the number itself (`regions_of`). A number with no
region (e.g. +800, or a code no region owns) is counted under `*` and priced at the card's `*`
rate, as the view `wa_campaign_costs` prices a delivery whose market is NULL.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def market_counts(phones: pd.Series) -> dict[str, int]:
    """How many of these numbers each market has (`*`: numbers no region owns)."""
    markets = regions_of(phones.dropna()).fillna(REST_OF_WORLD).astype(object)
    return {str(k): int(v) for k, v in markets.value_counts(sort=False).items()}


def estimate(phones: pd.Series, category: str, card: RateCard) -> pd.DataFrame:
    """One row per market of the numbers: how many messages and their USD (None: no rate);
    `category` is the template's (MARKETING) or the card's (marketing)."""
    return estimate_counts(market_counts(phones), category, card)


def estimate_counts(counts: Mapping[str, int], category: str, card: RateCard) -> pd.DataFrame:
    """`estimate` from messages per market (summed over partitions, say)."""
    priced = card_category(category)
    markets = sorted(m for m, n in counts.items() if n)
    rates = card.rates_of(pd.Series(markets, dtype=object), priced)
    sizes = [int(counts[m]) for m in markets]
    usd = [
        rate * Decimal(n) if isinstance(rate, Decimal) else None
        for rate, n in zip(rates, sizes, strict=True)
    ]
    return pd.DataFrame(
        {
            "category": pd.Series([priced] * len(markets), dtype=object),
            "market": pd.Series(markets, dtype=object),
            "messages": pd.Series(sizes, dtype="int64"),
            "usd": pd.Series(usd, dtype=object),
        },
        columns=list(ESTIMATE_COLUMNS),
    )


def total_usd(frame: pd.DataFrame) -> Decimal | None:
    """The estimate's USD over the markets with a rate; None when no market has one."""
    known = [v for v in frame["usd"] if isinstance(v, Decimal)]
    return sum(known, Decimal(0)) if known else None
