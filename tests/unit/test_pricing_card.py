"""The rate card: the shipped file loads, each kind of bad line is refused by file, line and
field, and a market without a rate of its own falls back to `*`."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from connectors.pricing.card import (
    ENV_VAR,
    SHIPPED,
    RateCardError,
    load_rate_card,
)

HEADER = "market,category,usd,as_of"


def _card_file(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "card.csv"
    path.write_text("\n".join(["# a comment", HEADER, *lines]) + "\n", encoding="utf-8")
    return path


def test_the_shipped_card_loads_with_the_documented_january_2026_rates() -> None:
    card = load_rate_card(environ={})
    assert card.source == str(SHIPPED)
    assert card.rate("BR", "marketing") == Decimal("0.0782")
    assert card.rate("BR", "utility") == Decimal("0.0085")
    assert card.rate("AR", "marketing") == Decimal("0.0773")
    assert card.rate("AR", "utility") == Decimal("0.0325")
    assert card.rate("CL", "marketing") == Decimal("0.1112")
    assert card.rate("CL", "utility") == Decimal("0.0250")
    assert {r.as_of for r in card} == {"2026-01-01"}


def test_the_environment_variable_names_another_card(tmp_path: Path) -> None:
    path = _card_file(tmp_path, "DE,marketing,0.1,2026-04-01")
    card = load_rate_card(environ={ENV_VAR: str(path)})
    assert card.source == str(path)
    assert card.rate("DE", "marketing") == Decimal("0.1")
    assert card.rate("BR", "marketing") is None


def test_an_explicit_path_wins_over_the_environment(tmp_path: Path) -> None:
    path = _card_file(tmp_path, "DE,marketing,0.1,2026-04-01")
    card = load_rate_card(path, environ={ENV_VAR: str(tmp_path / "missing.csv")})
    assert len(card) == 1


def test_comments_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = _card_file(tmp_path, "", "# BR next", "BR,utility,0.0085,2026-01-01", "   ")
    assert load_rate_card(path).rate("BR", "utility") == Decimal("0.0085")


def test_a_market_without_its_own_rate_falls_back_to_the_rest_of_world(tmp_path: Path) -> None:
    path = _card_file(
        tmp_path,
        "BR,marketing,0.0782,2026-01-01",
        "*,marketing,0.05,2026-01-01",
        "BR,utility,0.0085,2026-01-01",
    )
    card = load_rate_card(path)
    assert card.rate("BR", "marketing") == Decimal("0.0782")
    assert card.rate("US", "marketing") == Decimal("0.05")
    assert card.rate(None, "marketing") == Decimal("0.05")
    assert card.rate("US", "utility") is None  # no US rate and no `*` one: unknown
    assert card.rate("BR", "authentication") is None


def test_rates_of_prices_a_column_of_markets_at_once(tmp_path: Path) -> None:
    path = _card_file(tmp_path, "BR,marketing,0.0782,2026-01-01", "*,marketing,0.05,2026-01-01")
    markets = pd.Series(["BR", "US", None, "BR"], index=[10, 11, 12, 13], dtype=object)
    rates = load_rate_card(path).rates_of(markets, "marketing")
    assert list(rates.index) == [10, 11, 12, 13]
    assert list(rates) == [Decimal("0.0782"), Decimal("0.05"), Decimal("0.05"), Decimal("0.0782")]
    assert list(load_rate_card(path).rates_of(markets, "utility")) == [None] * 4


@pytest.mark.parametrize(
    ("line", "field", "value"),
    [
        ("BR,promotional,0.05,2026-01-01", "category", "promotional"),
        ("BR,Marketing,0.05,2026-01-01", "category", "Marketing"),
        ("BR,marketing,-0.01,2026-01-01", "usd", "-0.01"),
        ("BR,marketing,five cents,2026-01-01", "usd", "five cents"),
        ("BR,marketing,NaN,2026-01-01", "usd", "NaN"),
        ("BR,marketing,0.0000001,2026-01-01", "usd", "0.0000001"),
        ("BR,marketing,0.05,2026-13-01", "as_of", "2026-13-01"),
        ("BR,marketing,0.05,01/01/2026", "as_of", "01/01/2026"),
        ("BR,marketing,0.05,", "as_of", ""),
        ("Brazil,marketing,0.05,2026-01-01", "market", "Brazil"),
        ("br,marketing,0.05,2026-01-01", "market", "br"),
    ],
)
def test_a_bad_field_is_refused_naming_file_line_field_and_value(
    tmp_path: Path, line: str, field: str, value: str
) -> None:
    path = _card_file(tmp_path, "AR,marketing,0.0773,2026-01-01", line)
    with pytest.raises(RateCardError) as refused:
        load_rate_card(path)
    message = str(refused.value)
    assert str(path) in message
    assert "line 4" in message  # comment, header, AR, then the bad line
    assert f"field {field}: {value!r}" in message


def test_a_duplicate_market_and_category_is_refused_naming_both_lines(tmp_path: Path) -> None:
    path = _card_file(
        tmp_path,
        "BR,marketing,0.0782,2026-01-01",
        "BR,utility,0.0085,2026-01-01",
        "BR,marketing,0.07,2026-04-01",
    )
    with pytest.raises(RateCardError, match=r"line 5, field market\+category: .*already on line 3"):
        load_rate_card(path)


def test_a_line_with_the_wrong_number_of_fields_is_refused(tmp_path: Path) -> None:
    path = _card_file(tmp_path, "BR,marketing,0.0782")
    with pytest.raises(RateCardError, match="line 3: 3 fields; each line needs 4"):
        load_rate_card(path)


def test_a_wrong_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "card.csv"
    path.write_text("country,category,usd,as_of\nBR,marketing,0.0782,2026-01-01\n")
    with pytest.raises(RateCardError, match="line 1: header is 'country,category,usd,as_of'"):
        load_rate_card(path)


def test_a_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.csv"
    with pytest.raises(RateCardError, match=f"rate card {missing}: cannot read it"):
        load_rate_card(environ={ENV_VAR: str(missing)})
