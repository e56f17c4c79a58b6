"""Meta's rate card: USD per delivered billable template message, by market and category.

The card is a CSV `market,category,usd,as_of` (lines starting with `#` are comments): market is
an ISO region (`BR`) or `*` for every market without a row of its own (Meta's "Rest of World"),
category one of `CATEGORIES`. The shipped card is `rate_card.csv` beside this module; the
`WA_RATE_CARD` environment variable names another. A malformed card is refused whole.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Final, NoReturn

import pandas as pd

CATEGORIES: Final = ("marketing", "utility", "authentication", "authentication_international")
"""The card's categories: the webhook's `pricing.category` values Meta bills."""
REST_OF_WORLD: Final = "*"
"""The market whose rates apply where a market has none of its own."""
ENV_VAR: Final = "WA_RATE_CARD"
SHIPPED: Final = Path(__file__).with_name("rate_card.csv")
COLUMNS: Final = ("market", "category", "usd", "as_of")

_MARKET = re.compile(r"[A-Z]{2}|\*")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_USD_PLACES: Final = 6  # wa_rate_card.usd is Numeric(12, 6): more would be rounded silently
_USD_MAX: Final = Decimal("999999")


class RateCardError(ValueError):
    """A rate card file that cannot be used: names the file, line and field."""


@dataclass(frozen=True, slots=True)
class Rate:
    """One line of the card."""

    market: str
    category: str
    usd: Decimal
    as_of: str  # YYYY-MM-DD


@dataclass(frozen=True, slots=True)
class RateCard:
    """The rates by (market, category), with the file they came from."""

    rates: Mapping[tuple[str, str], Rate]
    source: str = field(default="")

    def rate(self, market: str | None, category: str) -> Decimal | None:
        """The market's own rate for the category, else the `*` rate, else None (unknown)."""
        found = self.rates.get((market, category)) if market else None
        found = found or self.rates.get((REST_OF_WORLD, category))
        return found.usd if found else None

    def rates_of(self, markets: pd.Series, category: str) -> pd.Series:
        """The rate of each market of a column for one category (object Decimals; None where
        unknown), looked up once per distinct market."""
        distinct = pd.unique(markets.dropna().astype(str))
        table = {market: self.rate(str(market), category) for market in distinct}
        rest = self.rate(None, category)
        return pd.Series(
            [table.get(m, rest) if isinstance(m, str) else rest for m in markets],
            index=markets.index,
            dtype=object,
        )

    def __iter__(self) -> Iterator[Rate]:
        """The rates in market, category order."""
        return iter(sorted(self.rates.values(), key=lambda r: (r.market, r.category)))

    def __len__(self) -> int:
        return len(self.rates)


def load_rate_card(
    path: Path | None = None, *, environ: Mapping[str, str] | None = None
) -> RateCard:
    """The card at `path`; None: the file `WA_RATE_CARD` names, else the shipped card."""
    env = os.environ if environ is None else environ
    chosen = path or (Path(env[ENV_VAR]) if env.get(ENV_VAR) else SHIPPED)
    try:
        text = chosen.read_text(encoding="utf-8")
    except OSError as exc:
        raise RateCardError(f"rate card {chosen}: cannot read it ({exc.strerror})") from exc
    return RateCard(parse(text.splitlines(), str(chosen)), str(chosen))


def parse(lines: Iterable[str], source: str) -> dict[tuple[str, str], Rate]:
    """The rates of a card's lines; `source` names the file in errors."""
    numbered = [(n, line) for n, line in enumerate(lines, 1) if not _skipped(line)]
    if not numbered:
        raise RateCardError(f"rate card {source}: no header; the first line must be {_header()}")
    header_line, header = numbered[0]
    names = [name.strip() for name in next(csv.reader([header]))]
    if names != list(COLUMNS):
        raise RateCardError(
            f"rate card {source}, line {header_line}: header is {','.join(names)!r}; "
            f"it must be {_header()}"
        )
    rates: dict[tuple[str, str], Rate] = {}
    first_seen: dict[tuple[str, str], int] = {}
    for n, line in numbered[1:]:
        rate = _rate(next(csv.reader([line])), _Where(source, n))
        key = (rate.market, rate.category)
        if key in first_seen:
            raise RateCardError(
                f"{_Where(source, n)}, field market+category: {rate.market},{rate.category} "
                f"is already on line {first_seen[key]}; keep one rate per market and category"
            )
        first_seen[key] = n
        rates[key] = rate
    return rates


@dataclass(frozen=True, slots=True)
class _Where:
    source: str
    line: int

    def __str__(self) -> str:
        return f"rate card {self.source}, line {self.line}"


def _skipped(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _header() -> str:
    return ",".join(COLUMNS)


def _rate(values: list[str], where: _Where) -> Rate:
    """One data line as a Rate, or the error naming its first bad field."""
    if len(values) != len(COLUMNS):
        raise RateCardError(
            f"{where}: {len(values)} fields; each line needs {len(COLUMNS)}: {_header()}"
        )
    market, category, usd, as_of = (v.strip() for v in values)
    if not _MARKET.fullmatch(market):
        _refuse(where, "market", market, "an ISO region in capitals (BR) or * for the rest")
    if category not in CATEGORIES:
        _refuse(where, "category", category, f"one of {', '.join(CATEGORIES)}")
    return Rate(market, category, _usd(usd, where), _as_of(as_of, where))


def _usd(value: str, where: _Where) -> Decimal:
    try:
        usd = Decimal(value)
    except InvalidOperation:
        usd = Decimal("NaN")
    if not usd.is_finite():
        _refuse(where, "usd", value, "a decimal number of US dollars, e.g. 0.0782")
    if usd < 0:
        _refuse(where, "usd", value, "zero or more")
    exponent = usd.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > _USD_PLACES:
        _refuse(where, "usd", value, f"at most {_USD_PLACES} decimal places")
    if usd > _USD_MAX:
        _refuse(where, "usd", value, f"at most {_USD_MAX} per message")
    return usd


def _as_of(value: str, where: _Where) -> str:
    try:
        parsed = date.fromisoformat(value) if _DATE.fullmatch(value) else None
    except ValueError:
        parsed = None
    if parsed is None:
        _refuse(where, "as_of", value, "a date YYYY-MM-DD, e.g. 2026-01-01")
    return value


def _refuse(where: _Where, name: str, value: str, expected: str) -> NoReturn:
    raise RateCardError(f"{where}, field {name}: {value!r} is not {expected}")
