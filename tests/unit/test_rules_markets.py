"""The marketing rules on a chunk: paused markets, marketing opt-outs, the per-user limit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pandas as pd

from connectors.vocabulary import NOT_BEFORE, OUTCOME, REASON
from tasks.rules.markets import (
    defer_marketing_limited,
    exclude_paused_markets,
    exclude_stopped_marketing,
    is_marketing,
)

ChunkOf = Callable[..., pd.DataFrame]
NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)
US, CA, BR, GU = "+14155550123", "+14165550123", "+5511987654321", "+16715550123"


def pairs(frame: pd.DataFrame) -> list[tuple[object, object]]:
    return [
        (None if pd.isna(o) else o, None if pd.isna(r) else r)
        for o, r in zip(frame[OUTCOME], frame[REASON], strict=True)
    ]


def test_only_marketing_templates_take_the_marketing_rules() -> None:
    assert is_marketing("MARKETING") and is_marketing("marketing")
    assert not any(is_marketing(c) for c in ("UTILITY", "AUTHENTICATION", None))


def test_us_numbers_are_excluded_by_their_area_code_not_canadas_nor_guams(
    chunk_of: ChunkOf,
) -> None:
    out = exclude_paused_markets(chunk_of([US, CA, BR, GU]), ["US"])
    policy = ("excluded_policy", "marketing_paused_in_region")
    assert pairs(out) == [policy, (None, None), (None, None), (None, None)]


def test_the_region_comes_from_the_number_not_the_crms_country(chunk_of: ChunkOf) -> None:
    frame = chunk_of([US, BR])
    frame["country"] = pd.Series(["BR", "US"], dtype="str")
    out = exclude_paused_markets(frame, ["US"])
    assert pairs(out)[0][0] == "excluded_policy" and pairs(out)[1] == (None, None)


def test_no_paused_regions_and_settled_rows_are_left_alone(chunk_of: ChunkOf) -> None:
    frame = chunk_of([US, US])
    frame.loc[1, OUTCOME], frame.loc[1, REASON] = "excluded_duplicate", "duplicate"
    assert pairs(exclude_paused_markets(frame, []))[0] == (None, None)
    assert pairs(exclude_paused_markets(frame, ["US"]))[1] == ("excluded_duplicate", "duplicate")


def test_stopped_numbers_are_no_consent_stopped_marketing(chunk_of: ChunkOf) -> None:
    out = exclude_stopped_marketing(chunk_of([BR, CA]), {BR})
    assert pairs(out) == [("excluded_no_consent", "stopped_marketing"), (None, None)]


def test_a_limited_number_waits_24_hours_from_its_131049(chunk_of: ChunkOf) -> None:
    limited_at = NOW - timedelta(hours=1)
    out = defer_marketing_limited(chunk_of([BR, CA]), {BR: limited_at})
    assert pairs(out) == [("deferred", "marketing_limited"), (None, None)]
    assert out[NOT_BEFORE].iloc[0] == pd.Timestamp(limited_at + timedelta(hours=24))
    assert pd.isna(out[NOT_BEFORE].iloc[1])
