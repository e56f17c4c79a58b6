"""Which sender each number goes through, and each sender's pace."""

from __future__ import annotations

import pandas as pd
import pytest

from connectors.whatsapp import PhoneFacts, WhatsAppSettings
from tasks.send.senders import (
    DEFAULT_RATE_PER_S,
    MIN_CONCURRENCY,
    assign_senders,
    default_concurrency,
    describe_plan,
    plan_senders,
    sender_rate,
)

PHONES = pd.Series(
    [
        "+5511987654321",
        "+14155550100",
        "+4915112345678",
        "+919812345678",
        "+61412345678",
        "+447700900123",
    ]
)
SENDERS = ["cloud:1", "cloud:2", "cloud:3"]


def _many(count: int) -> pd.Series:
    return pd.Series([f"+55119{i:08d}" for i in range(count)], dtype="str")


def test_the_assignment_is_a_pure_function_of_number_and_sender_ids() -> None:
    # Pinned: a re-run in any process on any machine must give the same numbers the same sender.
    expected = ["cloud:3", "cloud:1", "cloud:2", "cloud:3", "cloud:1", "cloud:2"]
    assert list(assign_senders(PHONES, SENDERS)) == expected
    assert list(assign_senders(PHONES[::-1], SENDERS)) == expected[::-1]
    assert list(assign_senders(PHONES, SENDERS[::-1])) == expected  # the list's order is moot


def test_numbers_spread_evenly_over_the_senders() -> None:
    counts = assign_senders(_many(40_000), [*SENDERS, "cloud:4"]).value_counts()
    assert set(counts.index) == {"cloud:1", "cloud:2", "cloud:3", "cloud:4"}
    assert counts.min() > 0.95 * 10_000 and counts.max() < 1.05 * 10_000


def test_removing_a_sender_moves_only_its_own_numbers() -> None:
    phones = _many(5_000)
    before = assign_senders(phones, SENDERS)
    after = assign_senders(phones, SENDERS[:2])
    kept = before != "cloud:3"
    assert (after[kept] == before[kept]).all()
    assert set(after[~kept]) == {"cloud:1", "cloud:2"}


def test_one_sender_takes_every_number_and_missing_numbers_still_get_one() -> None:
    assert set(assign_senders(PHONES, ["onprem:a"])) == {"onprem:a"}
    odd = pd.Series(["+14155550100", None, pd.NA], dtype="object")
    assert assign_senders(odd, SENDERS).isin(SENDERS).all()
    with pytest.raises(ValueError, match="no sender ids"):
        assign_senders(PHONES, [])


def _facts(level: str | None, quality: str = "GREEN") -> PhoneFacts:
    return PhoneFacts("1", throughput_level=level, quality_rating=quality)


@pytest.mark.parametrize(
    ("facts", "campaign", "rate"),
    [
        (None, None, DEFAULT_RATE_PER_S),
        (None, 250.0, 250.0),
        (_facts("HIGH"), None, 1000.0),
        (_facts("STANDARD"), None, 80.0),
        (_facts("STANDARD"), 250.0, 80.0),  # the campaign's rate never exceeds the number's
        (_facts("HIGH"), 250.0, 250.0),
        (_facts("NOT_APPLICABLE"), 120.0, 120.0),
    ],
)
def test_a_senders_rate(facts: PhoneFacts | None, campaign: float | None, rate: float) -> None:
    assert sender_rate(facts, campaign) == rate


def test_in_flight_keeps_up_with_the_rate_at_a_fifth_of_a_second_per_answer() -> None:
    assert default_concurrency(50) == MIN_CONCURRENCY
    assert default_concurrency(1000) == 202


def test_a_red_number_is_planned_stopped_and_the_others_keep_their_own_pace() -> None:
    def cloud(number: str) -> WhatsAppSettings:
        return WhatsAppSettings(
            api="cloud",
            base_url="https://graph.example",
            token="t0ken",  # type: ignore[arg-type]
            phone_number_id=number,
            waba_id="9",
        )

    senders = [cloud("1"), cloud("2")]
    facts = {"cloud:1": _facts("HIGH"), "cloud:2": _facts("STANDARD", quality="RED")}

    plans = plan_senders(senders, facts, rate_per_s=None, concurrency=None)

    assert [(p.sender_id, p.rate_per_s, p.concurrency) for p in plans] == [
        ("cloud:1", 1000.0, 202),
        ("cloud:2", 80.0, 18),
    ]
    assert plans[0].stopped is None
    assert plans[1].stopped is not None and "quality rating RED" in plans[1].stopped
    assert describe_plan(plans[0]) == "cloud:1 at 1000/s, 202 in flight"
    assert describe_plan(plans[1]).startswith("cloud:2 at 80/s, 18 in flight (not used: sender")
    fixed = plan_senders(senders, facts, rate_per_s=100, concurrency=8)
    assert [(p.rate_per_s, p.concurrency) for p in fixed] == [(100, 8), (80, 8)]
