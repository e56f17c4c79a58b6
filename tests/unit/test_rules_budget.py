"""The 24-hour messaging limit over a run's chunks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pandas as pd

from connectors.vocabulary import NOT_BEFORE, OUTCOME, REASON
from tasks.rules.budget import Budget, apply_budget

ChunkOf = Callable[..., pd.DataFrame]
NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)


def numbers(first: int, count: int) -> list[str]:
    return [f"+55119{n:08d}" for n in range(first, first + count)]


def test_a_limit_of_250_with_400_numbers_sends_250_and_defers_150(chunk_of: ChunkOf) -> None:
    chunks = [chunk_of(numbers(0, 150)), chunk_of(numbers(150, 250))]
    out, deferred = apply_budget(chunks, Budget(250), NOW)
    assert deferred == 150
    assert [int(c[OUTCOME].isna().sum()) for c in out] == [150, 100]
    late = out[1].loc[out[1][OUTCOME].notna()]
    assert set(late[REASON]) == {"messaging_limit"}
    assert set(late[NOT_BEFORE]) == {pd.Timestamp(NOW + timedelta(hours=24))}


def test_numbers_messaged_in_the_window_cost_no_place_and_the_window_frees_from_its_first(
    chunk_of: ChunkOf,
) -> None:
    earlier = {p: NOW - timedelta(hours=h) for p, h in zip(numbers(0, 3), (20, 5, 1), strict=True)}
    out, deferred = apply_budget([chunk_of(numbers(0, 6))], Budget(4, earlier), NOW)
    # 3 of the 4 places are taken; the 3 numbers messaged already go again, one new one fits.
    assert deferred == 2
    assert out[0][OUTCOME].isna().tolist() == [True, True, True, True, False, False]
    assert set(out[0][NOT_BEFORE].dropna()) == {pd.Timestamp(NOW + timedelta(hours=4))}


def test_no_limit_defers_nobody_and_a_full_window_defers_everyone_new(chunk_of: ChunkOf) -> None:
    frame = chunk_of(numbers(0, 5))
    assert apply_budget([frame], Budget(None), NOW)[1] == 0
    full = {p: NOW for p in numbers(100, 10)}
    assert apply_budget([frame], Budget(10, full), NOW)[1] == 5


def test_customers_already_settled_take_no_place(chunk_of: ChunkOf) -> None:
    frame = chunk_of(numbers(0, 3))
    frame.loc[0, OUTCOME] = "excluded_duplicate"
    out, deferred = apply_budget([frame], Budget(2), NOW)
    assert deferred == 0
    assert out[0][OUTCOME].isna().tolist() == [False, True, True]
