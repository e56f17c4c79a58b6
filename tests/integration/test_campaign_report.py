"""The campaign report on each dialect: the views' rows, the figures behind every chart, and a
self-contained HTML file, from a warehouse filled with known rows."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, insert, text

from connectors.warehouse.connect import warehouse
from connectors.warehouse.schema import (
    campaign_runs,
    deliveries,
    rate_card,
    recipients,
    status_events,
)
from flows.report import main
from tasks.insight.figures import load

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
# (outcome, reason, customers) of campaign "spring"
OUTCOMES = [
    ("excluded_no_consent", "no_opt_in", 3),
    ("excluded_invalid_number", "too_short", 2),
    ("excluded_duplicate", "duplicate", 1),
    ("excluded_not_on_whatsapp", "not_on_whatsapp", 1),
    ("deferred", "messaging_limit", 1),
    ("send_failed", "1013", 1),
    ("sent", None, 1),
    ("delivered", None, 2),
    ("read", None, 3),
    ("failed", "131026", 1),
]
# the messages in order: m0 sent, m1-m2 delivered, m3-m5 read, m6 failed
STATUS_OF = ["sent", "delivered", "delivered", "read", "read", "read", "failed"]
MARKET_OF = ["US", "BR", "BR", "BR", "AR", "AR", "US"]


def _phone(n: int) -> str:
    return f"+49151123456{n:02d}"


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def fill(engine: Engine) -> None:
    """Campaign `spring` with known outcomes, messages, statuses, prices and one run; one
    customer of campaign `other` besides."""
    people: list[dict[str, Any]] = []
    for outcome, reason, n in OUTCOMES:
        people += [{"outcome": outcome, "reason": reason} for _ in range(n)]
    rows = [
        {
            "campaign_id": "spring",
            "customer_id": str(i),
            "phone_e164": _phone(i),
            "run_id": "run-1",
            "updated_at": _at(10),
            **p,
        }
        for i, p in enumerate(people)
    ]
    rows.append({**rows[-1], "campaign_id": "other", "outcome": "read", "reason": None})
    messages = [i for i, p in enumerate(people) if p["outcome"] in STATUS_OF]
    ledger = []
    for m, i in enumerate(messages):
        billable = STATUS_OF[m] in ("delivered", "read") and MARKET_OF[m] != "US"
        ledger.append(
            {
                "campaign_id": "spring",
                "phone_e164": _phone(i),
                "customer_id": str(i),
                "state": "sent",
                "retryable": False,
                "attempts": 1,
                "run_id": "run-1",
                "message_id": f"wamid.{m}",
                "sent_at": _at(0.17 if m < 4 else 1.5),
                "market": MARKET_OF[m],
                "pricing_category": "marketing" if billable else None,
                "pricing_type": "regular" if billable else None,
            }
        )
    refused = next(i for i, p in enumerate(people) if p["outcome"] == "send_failed")
    ledger.append(
        {
            "campaign_id": "spring",
            "phone_e164": _phone(refused),
            "customer_id": str(refused),
            "state": "send_failed",
            "retryable": False,
            "attempts": 1,
            "run_id": "run-1",
            "last_attempt_at": _at(0.33),
        }
    )
    ledger.append({**ledger[1], "campaign_id": "other", "message_id": "wamid.other"})
    events = []
    for m in range(1, 6):
        events.append(("delivered", m, _at(2), _at(2.1)))
    for m in range(3, 6):
        events.append(("read", m, _at(3) if m < 5 else None, _at(3.66)))
    events.append(("failed", 6, _at(65), _at(65)))
    events.append(("read", "other", _at(3), _at(3)))
    keys = {k for row in ledger for k in row}
    ledger = [{k: row.get(k) for k in keys} for row in ledger]
    with engine.begin() as conn:
        conn.execute(insert(recipients), rows)
        conn.execute(insert(deliveries), ledger)
        conn.execute(
            insert(status_events),
            [
                {"message_id": f"wamid.{m}", "status": s, "event_at": at, "received_at": got}
                for s, m, at, got in events
            ],
        )
        conn.execute(
            insert(rate_card),
            [
                {"market": "BR", "category": "marketing", "usd": Decimal("0.0782"), "as_of": "x"},
                {"market": "AR", "category": "marketing", "usd": Decimal("0.0773"), "as_of": "x"},
            ],
        )
        conn.execute(
            insert(campaign_runs),
            {
                "run_id": "run-1",
                "attempt": 1,
                "campaign_id": "spring",
                "template_name": "order_update",
                "dry_run": False,
                "status": "completed",
                "started_at": _at(-1),
                "finished_at": _at(4),
                "customers": 16,
                "messages_sent": 7,
                "excluded_no_consent": 3,
                "excluded_invalid_number": 2,
                "excluded_duplicate": 1,
                "excluded_not_on_whatsapp": 1,
                "deferred": 1,
                "send_failed": 1,
            },
        )


@pytest.fixture
def filled(any_db_url: str) -> Engine:
    engine = warehouse(any_db_url)
    fill(engine)
    return engine


def test_timeline_view_counts_each_campaigns_messages_per_hour(filled: Engine) -> None:
    with filled.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT hour_utc, messages_sent, messages_delivered, messages_read, "
                "messages_failed, sends_failed FROM wa_delivery_timeline "
                "WHERE campaign_id = 'spring' ORDER BY hour_utc"
            )
        ).all()
    hours = [pd.Timestamp(str(r[0])).tz_localize(None) if _naive(r[0]) else r[0] for r in rows]
    assert [pd.Timestamp(h).strftime("%H:%M") for h in hours] == ["12:00", "13:00"]
    assert [tuple(int(v) for v in r[1:]) for r in rows] == [(7, 5, 3, 0, 1), (0, 0, 0, 1, 0)]


def _naive(value: object) -> bool:
    return isinstance(value, str) or getattr(value, "tzinfo", None) is None


def test_outcome_reasons_view_gives_each_outcome_its_kind(filled: Engine) -> None:
    with filled.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT kind, outcome, reason, customers FROM wa_outcome_reasons "
                "WHERE campaign_id = 'spring' ORDER BY outcome"
            )
        ).all()
    kinds = {"excluded", "deferred", "failed", "sent"}
    assert {r[0] for r in rows} == kinds
    got = {(r[1], r[2]): (r[0], int(r[3])) for r in rows}
    assert got[("excluded_no_consent", "no_opt_in")] == ("excluded", 3)
    assert got[("deferred", "messaging_limit")] == ("deferred", 1)
    assert got[("failed", "131026")] == ("failed", 1)
    assert got[("read", None)] == ("sent", 3)
    assert sum(n for _, n in got.values()) == 16


def test_report_figures_behind_every_chart(filled: Engine) -> None:
    figures = load(filled, "spring")
    funnel = dict(zip(figures.funnel["stage"], figures.funnel["customers"], strict=True))
    assert funnel == {
        "customers read": 16,
        "consenting": 13,
        "valid number": 11,
        "unique number": 10,
        "on WhatsApp": 9,
        "allowed by the rules": 8,
        "sent": 7,
        "delivered": 5,
        "read": 3,
    }
    assert figures.funnel["share"].round(4).tolist()[-3:] == [0.4375, 0.3125, 0.1875]
    assert figures.funnel["kept"].round(4).tolist()[-1] == 0.6
    assert figures.bucket == "minute"
    busy = figures.timeline.loc[figures.timeline.sum(axis=1) > 0]
    minutes = ["12:00", "12:01", "12:02", "12:03", "13:05"]
    assert [t.strftime("%H:%M") for t in busy.index] == minutes
    assert busy.to_numpy().tolist() == [
        [4, 0, 0, 1],
        [3, 0, 0, 0],
        [0, 5, 0, 0],
        [0, 0, 3, 0],
        [0, 0, 0, 1],
    ]
    assert len(figures.timeline) == 66  # every minute from 12:00 to 13:05, zeros included
    reasons = list(zip(figures.reasons["label"], figures.reasons["customers"], strict=True))
    assert reasons == [
        ("excluded_no_consent: no_opt_in", 3),
        ("excluded_invalid_number: too_short", 2),
        ("deferred: messaging_limit", 1),
        ("excluded_duplicate: duplicate", 1),
        ("excluded_not_on_whatsapp: not_on_whatsapp", 1),
        ("failed: 131026", 1),
        ("send_failed: 1013", 1),
    ]
    costs = figures.costs.set_index("market")
    assert costs.loc["BR", "billable_messages"] == 3 and costs.loc["AR", "billable_messages"] == 2
    assert costs.loc["BR", "cost_usd"] == Decimal("0.2346")
    assert costs.loc["AR", "cost_usd"] == Decimal("0.1546")
    run = figures.runs.iloc[0]
    assert (run["run_id"], run["customers"], run["messages_sent"]) == ("run-1", 16, 7)
    assert (run["excluded"], run["deferred"], run["send_failed"]) == (7, 1, 1)


def test_report_command_writes_a_self_contained_file(
    filled: Engine, any_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAREHOUSE_DATABASE_URL", any_db_url)
    out = tmp_path / "spring.html"
    assert main(["spring", "--out", str(out)]) == 0
    page = out.read_text()
    assert page.count("<svg") == 4  # funnel, timeline, reasons, cost
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<script" not in page
    assert "16" in page and "43.8%" in page and "$0.23" in page
    assert not re.search(r"\+49151\d{6}", page)
    assert main(["autumn", "--out", str(tmp_path / "autumn.html")]) == 2
