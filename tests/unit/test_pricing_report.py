"""The cost table: estimate beside actual per category and market, with a total."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd

from connectors.pricing.report import ALIGN, HEADER, cost_lines


def _estimate() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "category": ["marketing", "marketing", "marketing"],
            "market": ["AR", "BR", "US"],
            "messages": [2, 3, 1],
            "usd": pd.Series([Decimal("0.1546"), Decimal("0.2346"), None], dtype=object),
        }
    )


def test_estimate_and_actual_sit_side_by_side_with_a_total() -> None:
    actual = pd.DataFrame(
        {
            "category": ["marketing", "marketing"],
            "market": ["BR", "CL"],
            "billable_messages": [2, 1],
            "cost_usd": pd.Series([Decimal("0.1564"), Decimal("0.1112")], dtype=object),
        }
    )
    assert cost_lines(_estimate(), actual) == [
        HEADER,
        ALIGN,
        "| marketing | AR | 2 | 0.1546 | – | – |",
        "| marketing | BR | 3 | 0.2346 | 2 | 0.1564 |",
        "| marketing | CL | – | – | 1 | 0.1112 |",
        "| marketing | US | 1 | no rate | – | – |",
        "| **total** | | 6 | 0.3892 + unpriced | 3 | 0.2676 |",
    ]


def test_without_actual_costs_only_the_estimate_is_shown() -> None:
    lines = cost_lines(_estimate(), None)
    assert lines[2] == "| marketing | AR | 2 | 0.1546 | – | – |"
    assert lines[-1] == "| **total** | | 6 | 0.3892 + unpriced | – | – |"


def test_nothing_to_show_makes_no_lines() -> None:
    empty = pd.DataFrame(columns=["category", "market", "messages", "usd"])
    assert cost_lines(empty, None) == []
