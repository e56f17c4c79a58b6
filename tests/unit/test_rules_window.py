"""Quiet hours: who is deferred, until when, in every zone a number may be in."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pandas as pd
import pytest

from connectors.vocabulary import NOT_BEFORE, OUTCOME, REASON, Outcome, Reason
from tasks.campaign import SendWindow
from tasks.rules.window import (
    defer_outside_window,
    next_open,
    zones_of,
    zones_of_number,
)

ChunkOf = Callable[..., pd.DataFrame]
DAY = SendWindow(start="09:00", end="20:00")
NIGHT = SendWindow(start="22:00", end="06:00")
NEW_YORK, LOS_ANGELES = "+12125550123", "+14155550123"
SYDNEY = "+61298765432"  # a Sydney landline: one zone
PERTH_OR_ADELAIDE = "+61893334444"  # a +61 8 landline: Adelaide and Perth
AU_MOBILE = "+61412345678"  # non-geographic: the eight zones of +61
NO_ZONE = "+80012345678"  # international freephone: no zone


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def deferrals(frame: pd.DataFrame) -> list[tuple[object, object, object]]:
    """(outcome, reason, not_before) per row, None for nulls."""
    return [
        tuple(None if pd.isna(v) else v for v in row)
        for row in frame[[OUTCOME, REASON, NOT_BEFORE]].itertuples(index=False)
    ]


def later(when: datetime) -> tuple[str, str, pd.Timestamp]:
    return (Outcome.DEFERRED, Reason.OUTSIDE_SEND_WINDOW, pd.Timestamp(when))


def test_zones_come_from_the_number() -> None:
    zones = zones_of(pd.Series([NEW_YORK, AU_MOBILE, PERTH_OR_ADELAIDE, None, NO_ZONE]))
    assert zones.tolist() == [
        ("America/New_York",),
        (
            "Australia/Adelaide",
            "Australia/Brisbane",
            "Australia/Eucla",
            "Australia/Lord_Howe",
            "Australia/Perth",
            "Australia/Sydney",
            "Indian/Christmas",
            "Indian/Cocos",
        ),
        ("Australia/Adelaide", "Australia/Perth"),
        (),
        (),
    ]


def test_zones_are_looked_up_once_per_prefix() -> None:
    looked_up: list[str] = []

    def counting(e164: str) -> tuple[str, ...]:
        looked_up.append(e164)
        return zones_of_number(e164)

    phones = [f"+1212555{i:04d}" for i in range(500)] + [f"+1415555{i:04d}" for i in range(500)]
    zones = zones_of(pd.Series(phones, dtype="str"), lookup=counting)
    assert looked_up == ["+12125550000", "+14155550000"]
    assert zones.value_counts().to_dict() == {
        ("America/New_York",): 500,
        ("America/Los_Angeles",): 500,
    }


def test_us_and_australian_audience_at_one_moment(chunk_of: ChunkOf) -> None:
    chunk = chunk_of([NEW_YORK, LOS_ANGELES, SYDNEY, PERTH_OR_ADELAIDE, AU_MOBILE])
    # 23:00 UTC: New York 18:00, Los Angeles 15:00, Sydney 10:00, Perth 07:00, Cocos 05:30.
    out = defer_outside_window(chunk, DAY, utc(2026, 1, 15, 23))
    assert deferrals(out) == [
        (None, None, None),
        (None, None, None),
        (None, None, None),
        later(utc(2026, 1, 16, 1)),  # 09:00 in Perth, Adelaide already open
        later(utc(2026, 1, 16, 2, 30)),  # 09:00 on the Cocos Islands, the last +61 zone
    ]
    assert out[NOT_BEFORE].dtype == "datetime64[ns, UTC]"
    assert out[OUTCOME].dtype == "str"


def test_everyone_waits_for_their_own_morning(chunk_of: ChunkOf) -> None:
    chunk = chunk_of([NEW_YORK, LOS_ANGELES, SYDNEY])
    out = defer_outside_window(chunk, DAY, utc(2026, 1, 15, 13))
    assert deferrals(out) == [
        later(utc(2026, 1, 15, 14)),
        later(utc(2026, 1, 15, 17)),
        later(utc(2026, 1, 15, 22)),
    ]


def test_a_window_over_midnight(chunk_of: ChunkOf) -> None:
    chunk = chunk_of([NEW_YORK, LOS_ANGELES, SYDNEY])
    # 04:00 UTC: New York 23:00 (open), Los Angeles 20:00, Sydney 15:00.
    out = defer_outside_window(chunk, NIGHT, utc(2026, 1, 15, 4))
    assert deferrals(out) == [
        (None, None, None),
        later(utc(2026, 1, 15, 6)),
        later(utc(2026, 1, 15, 11)),
    ]


def test_the_start_is_inclusive_and_the_end_exclusive() -> None:
    new_york = ("America/New_York",)
    assert next_open(new_york, NIGHT, utc(2026, 1, 15, 3)) is None  # 22:00
    assert next_open(new_york, NIGHT, utc(2026, 1, 15, 10, 59)) is None  # 05:59
    assert next_open(new_york, NIGHT, utc(2026, 1, 15, 11)) == utc(2026, 1, 16, 3)  # 06:00


def test_a_number_in_several_zones_waits_until_open_in_all(chunk_of: ChunkOf) -> None:
    chunk = chunk_of([PERTH_OR_ADELAIDE])
    # 00:00 UTC: Adelaide 10:30 (open), Perth 08:00 (closed).
    deferred = defer_outside_window(chunk, DAY, utc(2026, 1, 16, 0))
    assert deferrals(deferred) == [later(utc(2026, 1, 16, 1))]
    sent = defer_outside_window(chunk, DAY, utc(2026, 1, 16, 1))
    assert deferrals(sent) == [(None, None, None)]
    both = ("America/New_York", "America/Los_Angeles")
    assert next_open(both, DAY, utc(2026, 1, 15, 15)) == utc(2026, 1, 15, 17)


def test_zones_whose_windows_never_overlap_wait_for_the_last_to_open() -> None:
    # 09:00–10:00 is 00:00–01:00 UTC in Tokyo and 14:00–15:00 UTC in New York.
    never = SendWindow(start="09:00", end="10:00")
    zones = ("Asia/Tokyo", "America/New_York")
    assert next_open(zones, never, utc(2026, 1, 15, 12)) == utc(2026, 1, 16, 0)


def test_a_skipped_opening_on_the_spring_forward_day_is_the_change_itself() -> None:
    # New York, 8 March 2026: 02:00 EST jumps to 03:00 EDT at 07:00 UTC; 02:30 never happens.
    early = SendWindow(start="02:30", end="04:00")
    assert next_open(("America/New_York",), early, utc(2026, 3, 8, 5)) == utc(2026, 3, 8, 7)
    assert next_open(("America/New_York",), early, utc(2026, 3, 7, 5)) == utc(2026, 3, 7, 7, 30)
    assert next_open(("America/New_York",), DAY, utc(2026, 3, 8, 12)) == utc(2026, 3, 8, 13)


def test_the_opening_after_sydney_leaves_summer_time() -> None:
    # Sydney, 5 April 2026: 03:00 AEDT falls back to 02:00 AEST; 09:00 is 23:00 UTC, not 22:00.
    sydney = ("Australia/Sydney",)
    assert next_open(sydney, DAY, utc(2026, 4, 4, 10)) == utc(2026, 4, 4, 23)
    assert next_open(sydney, DAY, utc(2026, 4, 3, 10)) == utc(2026, 4, 3, 22)


def test_rows_with_an_outcome_are_untouched(chunk_of: ChunkOf) -> None:
    chunk = chunk_of([SYDNEY, SYDNEY, None])
    chunk.loc[1, OUTCOME] = Outcome.EXCLUDED_DUPLICATE
    chunk.loc[1, REASON] = "same_number"
    out = defer_outside_window(chunk, DAY, utc(2026, 1, 15, 13))
    assert deferrals(out) == [
        later(utc(2026, 1, 15, 22)),
        (Outcome.EXCLUDED_DUPLICATE, "same_number", None),
        (None, None, None),
    ]


def test_a_number_with_no_known_zone_is_sent(chunk_of: ChunkOf) -> None:
    out = defer_outside_window(chunk_of([NO_ZONE, SYDNEY]), DAY, utc(2026, 1, 15, 13))
    assert deferrals(out) == [(None, None, None), later(utc(2026, 1, 15, 22))]


def test_no_window_changes_nothing(chunk_of: ChunkOf) -> None:
    chunk = chunk_of([SYDNEY])
    out = defer_outside_window(chunk, None, utc(2026, 1, 15, 13))
    assert out is not chunk
    pd.testing.assert_frame_equal(out, chunk)


def test_a_naive_now_is_refused(chunk_of: ChunkOf) -> None:
    with pytest.raises(ValueError, match="now="):
        defer_outside_window(chunk_of([SYDNEY]), DAY, datetime(2026, 1, 15, 13))
    with pytest.raises(ValueError, match="now="):
        next_open(("Australia/Sydney",), DAY, datetime(2026, 1, 15, 13))
