"""The rules stage against a real warehouse on each dialect, with an injected clock: what the
warehouse learnt (stops, resumes, 131049s, earlier sends) decides who is sent now."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Engine, insert

from connectors.vocabulary import NOT_BEFORE, OUTCOME, REASON, LedgerState
from connectors.warehouse.connect import warehouse
from connectors.warehouse.events import MarketingPreference
from connectors.warehouse.events.marketing import store_preferences
from connectors.warehouse.schema import deliveries, marketing_limited
from tasks.campaign import SendWindow
from tasks.rules.task import Rules, apply_rules

ChunkOf = Callable[..., pd.DataFrame]
T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)  # 09:00 in São Paulo
BUSINESS = "102290129340398"
LIMITED, STOPPED, RESUMED, FRESH = (f"+55119876543{n}{n}" for n in (1, 2, 3, 4))
US = "+14155550123"
MARKETING = Rules(category="MARKETING", business_id=BUSINESS)


def pairs(frame: pd.DataFrame) -> dict[str, tuple[Any, Any]]:
    return {
        p: (None if pd.isna(o) else o, None if pd.isna(r) else r)
        for p, o, r in zip(frame["phone_e164"], frame[OUTCOME], frame[REASON], strict=True)
    }


def learnt(engine: Engine) -> None:
    """A 131049 for LIMITED at T0; STOPPED stopped; RESUMED stopped, then resumed."""
    with engine.begin() as conn:
        conn.execute(
            insert(marketing_limited),
            [{"phone_e164": LIMITED, "message_id": "wamid.1", "limited_at": T0, "received_at": T0}],
        )
        choices = [
            MarketingPreference(BUSINESS, "stop", T0, STOPPED[1:]),
            MarketingPreference(BUSINESS, "stop", T0, RESUMED[1:]),
            MarketingPreference(BUSINESS, "resume", T0 + timedelta(minutes=5), RESUMED[1:]),
        ]
        store_preferences(conn, choices, T0)


def test_marketing_rules_an_hour_and_a_day_after_what_the_warehouse_learnt(
    any_db_url: str, chunk_of: ChunkOf
) -> None:
    engine = warehouse(any_db_url)
    learnt(engine)
    chunk = chunk_of([LIMITED, STOPPED, RESUMED, FRESH, US])

    [hour], _ = apply_rules([chunk], MARKETING, engine, T0 + timedelta(hours=1))
    [day], _ = apply_rules([chunk], MARKETING, engine, T0 + timedelta(hours=25))
    [utility], _ = apply_rules([chunk], Rules(category="UTILITY"), engine, T0)

    assert pairs(hour) == {
        LIMITED: ("deferred", "marketing_limited"),
        STOPPED: ("excluded_no_consent", "stopped_marketing"),
        RESUMED: (None, None),
        FRESH: (None, None),
        US: ("excluded_policy", "marketing_paused_in_region"),
    }
    assert hour.loc[0, NOT_BEFORE] == pd.Timestamp(T0 + timedelta(hours=24))
    assert pairs(day)[LIMITED] == (None, None)
    assert pairs(day)[STOPPED] == ("excluded_no_consent", "stopped_marketing")
    assert set(pairs(utility).values()) == {(None, None)}
    # Another business's account, and v1 (any business): the stop is this business's only.
    other = Rules(category="MARKETING", business_id="998877")
    assert pairs(apply_rules([chunk], other, engine, T0)[0][0])[STOPPED] == (None, None)
    v1 = Rules(category="MARKETING", business_id=None)
    assert pairs(apply_rules([chunk], v1, engine, T0)[0][0])[STOPPED][1] == "stopped_marketing"


def test_the_limit_counts_what_every_campaign_sent_in_the_window_and_frees_a_day_later(
    any_db_url: str, chunk_of: ChunkOf
) -> None:
    engine = warehouse(any_db_url)
    sent = [
        {
            "campaign_id": "other",
            "phone_e164": f"+551190000{n:04d}",
            "customer_id": str(n),
            "state": LedgerState.SENT,
            "attempts": 1,
            "run_id": "r",
            "sent_at": T0 - timedelta(hours=2),
            "last_attempt_at": T0 - timedelta(hours=2),
        }
        for n in range(100)
    ]
    with engine.begin() as conn:
        conn.execute(insert(deliveries), sent)
    audience = [f"+551191111{n:04d}" for n in range(400)]
    rules = Rules(category="UTILITY", messaging_limit=250)

    now, stats = apply_rules([chunk_of(audience)], rules, engine, T0)
    later, fresh = apply_rules([chunk_of(audience)], rules, engine, T0 + timedelta(hours=23))
    assert int(later[0][OUTCOME].isna().sum()) == 250

    assert (stats.over_limit, stats.messaged_in_window) == (250, 100)
    assert int(now[0][OUTCOME].isna().sum()) == 150
    assert set(now[0][NOT_BEFORE].dropna()) == {pd.Timestamp(T0 + timedelta(hours=22))}
    assert (fresh.over_limit, fresh.messaged_in_window) == (150, 0)


def test_quiet_hours_defer_until_the_window_opens_locally(
    any_db_url: str, chunk_of: ChunkOf
) -> None:
    engine = warehouse(any_db_url)
    window = Rules(send_window=SendWindow(start="10:00", end="20:00"))
    [out], _ = apply_rules([chunk_of([FRESH])], window, engine, T0)  # 09:00 in São Paulo
    assert pairs(out)[FRESH] == ("deferred", "outside_send_window")
    assert out.loc[0, NOT_BEFORE] == pd.Timestamp(T0 + timedelta(hours=1))
