"""The estimate: a send's numbers counted by market and priced exactly (Decimal) by the card."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from connectors.pricing.card import RateCard, load_rate_card
from connectors.pricing.estimate import card_category, estimate, total_usd

BR = ["+5511987654321", "+5521987654321", "+5531987654321"]
AR = ["+5491123456789", "+5491187654321"]
US = ["+14155550100"]


@pytest.fixture
def card(tmp_path: Path) -> RateCard:
    path = tmp_path / "card.csv"
    path.write_text(
        "market,category,usd,as_of\n"
        "BR,marketing,0.0782,2026-01-01\n"
        "AR,marketing,0.0773,2026-01-01\n"
        "BR,utility,0.0085,2026-01-01\n"
        "*,utility,0.0100,2026-01-01\n"
    )
    return load_rate_card(path)


def test_numbers_are_counted_and_priced_by_market(card: RateCard) -> None:
    frame = estimate(pd.Series(BR + AR + US, dtype="str"), "MARKETING", card)
    assert list(frame.columns) == ["category", "market", "messages", "usd"]
    rows = {m: (c, n, usd) for c, m, n, usd in frame.itertuples(index=False)}
    assert rows == {
        "AR": ("marketing", 2, Decimal("0.1546")),
        "BR": ("marketing", 3, Decimal("0.2346")),
        "US": ("marketing", 1, None),  # no US rate and no `*` marketing rate
    }
    assert total_usd(frame) == Decimal("0.3892")


def test_a_market_without_its_own_rate_is_priced_at_the_rest_of_world_rate(
    card: RateCard,
) -> None:
    frame = estimate(pd.Series(BR + AR + US, dtype="str"), "UTILITY", card)
    usd = dict(zip(frame["market"], frame["usd"], strict=True))
    assert usd == {"AR": Decimal("0.0200"), "BR": Decimal("0.0255"), "US": Decimal("0.0100")}
    assert total_usd(frame) == Decimal("0.0555")


def test_a_number_without_a_region_is_counted_under_the_rest_of_world(card: RateCard) -> None:
    frame = estimate(pd.Series(["+80012345678", None, *US], dtype="str"), "utility", card)
    assert list(frame["market"]) == ["*", "US"]
    assert list(frame["messages"]) == [1, 1]
    assert list(frame["usd"]) == [Decimal("0.0100"), Decimal("0.0100")]


def test_no_numbers_make_an_empty_estimate(card: RateCard) -> None:
    frame = estimate(pd.Series([], dtype="str"), "MARKETING", card)
    assert frame.empty
    assert list(frame.columns) == ["category", "market", "messages", "usd"]
    assert total_usd(frame) is None


def test_template_categories_map_to_card_categories() -> None:
    assert card_category("MARKETING") == "marketing"
    assert card_category("UTILITY") == "utility"
    assert card_category("AUTHENTICATION") == "authentication"
    with pytest.raises(ValueError, match="'SERVICE' has no rate card category"):
        card_category("SERVICE")
