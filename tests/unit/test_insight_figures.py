"""The report's figures from warehouse rows: funnel shares, time buckets, reasons, the charts'
markdown for the artifacts."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd

from tasks.insight.artifact import charts_markdown
from tasks.insight.figures import (
    CampaignFigures,
    bucket_of,
    cost_by_country,
    funnel_of,
    reasons_of,
    timeline_of,
)

OUTCOMES = pd.DataFrame(
    [
        ("excluded", "excluded_no_consent", "no_opt_in", 2),
        ("sent", "read", None, 6),
        ("sent", "delivered", None, 2),
        ("failed", "send_failed", "1013", 1),
        ("planned", "planned", None, 1),
    ],
    columns=["kind", "outcome", "reason", "customers"],
)


def _events(*rows: tuple[str, str]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=["event", "at"])
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    frame["messages"] = 1
    return frame


def test_funnel_keeps_a_share_per_stage_and_shows_planned_only_for_dry_runs() -> None:
    funnel = funnel_of(OUTCOMES).set_index("stage")
    assert funnel.loc["customers read", "customers"] == 12
    assert funnel.loc["consenting", "customers"] == 10
    assert funnel.loc["planned (dry run)", "customers"] == 1
    assert funnel.loc["sent", "customers"] == 8
    assert funnel.loc["read", "share"] == 0.5 and funnel.loc["read", "kept"] == 0.75
    assert "planned (dry run)" not in set(funnel_of(OUTCOMES.iloc[:4])["stage"])


def test_timeline_picks_minutes_hours_or_days_by_the_span() -> None:
    short = _events(("sent", "2026-11-29 12:00:05"), ("read", "2026-11-29 14:59:00"))
    assert bucket_of(short) == "minute"
    assert (
        bucket_of(_events(("sent", "2026-11-29 12:00"), ("read", "2026-11-29 12:04"))) == "second"
    )
    assert bucket_of(_events(("sent", "2026-11-29 12:00"), ("read", "2026-11-30 12:00"))) == "hour"
    assert bucket_of(_events(("sent", "2026-11-01 12:00"), ("read", "2026-11-29 12:00"))) == "day"
    frame, bucket = timeline_of(
        _events(
            ("sent", "2026-11-29 12:00:05"),
            ("send_failed", "2026-11-29 12:00:30"),
            ("failed", "2026-11-29 14:10:00"),
            ("delivered", "2026-11-29 13:00:00"),
        ),
        "hour",
    )
    assert bucket == "hour" and list(frame.columns) == ["sent", "delivered", "read", "failed"]
    assert frame.to_numpy().tolist() == [[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 0, 1]]
    empty, _ = timeline_of(_events())
    assert empty.empty


def test_reasons_leave_out_the_sent_and_sort_the_most_frequent_first() -> None:
    reasons = reasons_of(OUTCOMES)
    assert list(reasons["label"]) == ["excluded_no_consent: no_opt_in", "send_failed: 1013"]
    assert list(reasons["customers"]) == [2, 1]


def test_cost_by_country_sums_markets_and_keeps_an_unpriced_one_unknown() -> None:
    costs = pd.DataFrame(
        [
            ("marketing", "BR", 3, Decimal("0.2346")),
            ("utility", "BR", 1, Decimal("0.0085")),
            ("marketing", "*", 2, None),
        ],
        columns=["category", "market", "billable_messages", "cost_usd"],
    )
    rows = cost_by_country(costs).set_index("market")
    assert rows.loc["BR", "billable_messages"] == 4
    assert rows.loc["BR", "cost_usd"] == Decimal("0.2431")
    assert rows.loc["*", "cost_usd"] is None


def test_charts_markdown_carries_png_images_not_svg() -> None:
    events = _events(("sent", "2026-11-29 12:00:05"), ("read", "2026-11-29 12:03:00"))
    timeline, bucket = timeline_of(events)
    figures = CampaignFigures(
        campaign_id="spring",
        funnel=funnel_of(OUTCOMES),
        timeline=timeline,
        bucket=bucket,
        reasons=reasons_of(OUTCOMES),
        costs=pd.DataFrame(columns=["market", "billable_messages", "cost_usd"]),
        runs=pd.DataFrame(),
    )
    text = charts_markdown(figures)
    assert text.count("](data:image/png;base64,iVBOR") == 3  # funnel, timeline, reasons
    assert "<svg" not in text and "Cost by country" not in text
