"""Partitioning changes nobody's outcome: `prepare` over chunks and number partitions gives every
customer what the list-based stages give on the whole audience at once, on a real CRM and
warehouse (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pydantic import SecretStr
from sqlalchemy import create_engine, insert

from connectors.demo import DEFAULT_NOW, DemoCustomer, demo_customers, seed_demo_crm
from connectors.vocabulary import (
    CUSTOMER_ID,
    DUPLICATE_OF,
    MESSAGE_ID,
    NOT_BEFORE,
    OUTCOME,
    PHONE_E164,
    REASON,
    LedgerState,
    Outcome,
    Reason,
)
from connectors.warehouse import ledger
from connectors.warehouse.connect import warehouse
from connectors.warehouse.events import opted_out_numbers
from connectors.warehouse.lease import acquire
from connectors.warehouse.schema import deliveries, opt_outs
from flows.stages import PlainRunner, prepare
from tasks.campaign import Campaign
from tasks.consent import apply_consent, apply_opt_outs
from tasks.extract import extract
from tasks.partition.split import AUDIENCE_ROW
from tasks.partition.store import Store
from tasks.phones.dedupe import dedupe
from tasks.phones.normalise import normalise
from tasks.plan import apply_ledger, mark_planned, require_params
from tasks.rules.task import Rules, apply_rules
from tasks.send.task import ready_name

CHUNK = 100  # the smallest chunk a campaign takes: 1,200 customers make 12 chunks and partitions
CAMPAIGN = "partitioned"
# Ids divisible by 97 come out NULL: customers without an id, in several chunks.
AUDIENCE = (
    "SELECT CASE WHEN id % 97 = 0 THEN NULL ELSE id END AS customer_id, mobile AS phone_raw, "
    "cc AS country, optin AS opt_in_at, optout AS opt_out_at, fname AS param_first_name "
    "FROM crm_contacts"
)
COMPARED = (CUSTOMER_ID, OUTCOME, REASON, PHONE_E164, DUPLICATE_OF, MESSAGE_ID, NOT_BEFORE)


def _campaign() -> Campaign:
    return Campaign.model_validate(
        {
            "campaign_id": CAMPAIGN,
            "template": {"name": "spring_sale", "language": "en", "body_params": ["first_name"]},
            "audience": {"query": AUDIENCE},
            "default_region": "US",
            "dry_run": True,
            "chunk_size": CHUNK,
            # Expires the oldest few opt-ins whatever today's date (the demo's are before its now).
            "consent_max_age_days": (datetime.now(UTC) - DEFAULT_NOW).days + 960,
        }
    )


def _ledger_row(
    campaign: str, phone: str, state: str, at: datetime, **extra: Any
) -> dict[str, Any]:
    return {
        "campaign_id": campaign,
        "phone_e164": phone,
        "customer_id": f"earlier-{phone}",
        "state": state,
        "attempts": 1,
        "run_id": "earlier",
        "first_attempt_at": at,
        "last_attempt_at": at,
        "sent_at": at if state == LedgerState.SENT else None,
        "message_id": f"wamid.{phone[1:]}" if state == LedgerState.SENT else None,
        "error_code": None,
        "retryable": False,
    } | extra  # every row the same keys: an executemany takes the first row's


def _history(warehouse_url: str, kept: list[str], now: datetime) -> list[str]:
    """What earlier runs left: this campaign's sends (sent, failed for good, failed for now, in
    doubt), other campaigns' sends in the messaging limit's window, and WhatsApp opt-outs."""
    old, recent = now - timedelta(days=3), now - timedelta(hours=2)
    sent, lost, retry, sending, unknown, stopped, window = (
        kept[0:20],
        kept[20:30],
        kept[30:40],
        kept[40:45],
        kept[45:50],
        kept[50:65],
        kept[65:95],
    )
    rows = [_ledger_row(CAMPAIGN, p, LedgerState.SENT, old) for p in sent]
    failed = LedgerState.SEND_FAILED
    rows += [_ledger_row(CAMPAIGN, p, failed, old, error_code="1013") for p in lost]
    rows += [
        _ledger_row(CAMPAIGN, p, failed, old, error_code="1026", retryable=True) for p in retry
    ]
    rows += [_ledger_row(CAMPAIGN, p, LedgerState.SENDING, old) for p in sending]
    rows += [_ledger_row(CAMPAIGN, p, LedgerState.UNKNOWN, old) for p in unknown]
    outside = [f"+1202555{n:04d}" for n in range(30)]  # messaged, not in this audience
    rows += [_ledger_row("other", p, LedgerState.SENT, recent) for p in window + outside]
    engine = warehouse(warehouse_url)
    with engine.begin() as conn:
        conn.execute(insert(deliveries), rows)
        conn.execute(
            insert(opt_outs),
            [
                {"phone_e164": p, "wa_id": p[1:], "keyword": "STOP", "opted_out_at": old}
                | {"received_at": old}
                for p in stopped
            ],
        )
    return window


def _list_based(
    campaign: Campaign, crm_url: str, warehouse_url: str, rules: Rules, now: datetime
) -> tuple[pd.DataFrame, int]:
    """The whole audience through the list-based stages at once, as before partitions."""
    params = campaign.template.param_columns
    days = campaign.consent_max_age_days
    chunks = extract(crm_url, campaign.audience, campaign.chunk_size, required_params=params)
    chunks = [
        normalise(
            apply_consent(c, max_age=timedelta(days=days) if days else None),
            default_region=campaign.default_region,
        )
        for c in chunks
    ]
    engine = warehouse(warehouse_url)
    stopped = opted_out_numbers(engine)
    chunks = dedupe([apply_opt_outs(c, stopped) for c in chunks])
    history = ledger.load(engine, CAMPAIGN)
    chunks = [
        require_params(apply_ledger(c, history, resend_unknown=False), params) for c in chunks
    ]
    ruled, stats = apply_rules(chunks, rules, engine, now)
    return pd.concat([mark_planned(c) for c in ruled], ignore_index=True), stats.over_limit


def _verdicts(frame: pd.DataFrame) -> dict[str, tuple[object, ...]]:
    """Each customer's verdict, nulls as None."""
    rows = frame[list(COMPARED)].astype(object).where(frame[list(COMPARED)].notna(), None)
    return {str(row[0]): tuple(row[1:]) for row in rows.itertuples(index=False)}


def _kept_numbers(customers: list[DemoCustomer]) -> list[str]:
    """Numbers the demo sends to, those shared by several customers first."""
    shared = Counter(c.expected_e164 for c in customers if c.expected_e164)
    kept = [c.expected_e164 for c in customers if c.expected_outcome == "sent" and c.expected_e164]
    return sorted(set(kept), key=lambda p: (-shared[p], p))


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_partitioning_gives_every_customer_what_the_whole_audience_at_once_gives(
    db: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if db == "sqlite":
        crm_url, warehouse_url = (
            f"sqlite:///{tmp_path}/crm.sqlite",
            f"sqlite:///{tmp_path}/wh.sqlite",
        )
    else:
        crm_url = warehouse_url = str(request.getfixturevalue("postgres_url"))
    customers = demo_customers(1200, seed=23)
    engine = create_engine(crm_url)
    seed_demo_crm(engine, customers)
    engine.dispose()
    now = datetime.now(UTC)
    window = _history(warehouse_url, _kept_numbers(customers), now)
    # MARKETING: the US numbers are paused; the limit leaves 250 places for new numbers.
    rules = Rules(category="MARKETING", paused_regions=("US",), messaging_limit=60 + 250)
    lease = acquire(warehouse(warehouse_url), CAMPAIGN, "run-1#1", timedelta(minutes=5))
    store = Store.for_run(tmp_path / "runs", CAMPAIGN, "run-1-1")
    campaign = _campaign()

    prepared = prepare(
        PlainRunner(workers=4),
        campaign,
        SecretStr(crm_url),
        SecretStr(warehouse_url),
        lease,
        store,
        rules=rules,
        now=now,
    )

    assert prepared.partitions == list(range(12))
    assert prepared.in_doubt == 5  # the `sending` rows: their run died mid-call
    ready = [store.read(ready_name(p)) for p in prepared.partitions]
    assert all(len(frame) for frame in ready)
    leftovers = sorted(p.name for p in Path(store.root).rglob("*.pkl"))
    assert leftovers == ["ready.pkl"] * 12  # chunks, pieces and shaped frames were removed
    got = pd.concat(ready, ignore_index=True).sort_values(AUDIENCE_ROW)
    assert got[AUDIENCE_ROW].tolist() == list(range(len(customers)))

    expected, over_limit = _list_based(campaign, crm_url, warehouse_url, rules, now)

    want, have = _verdicts(expected), _verdicts(got)
    assert len(have) == len(want) == len(customers)
    wrong = [(c, want[c], have.get(c)) for c in want if have.get(c) != want[c]]
    assert not wrong, f"{len(wrong)} customers differ, first: {wrong[:5]}"
    assert prepared.rules.over_limit == over_limit
    assert (expected[REASON] == Reason.MESSAGING_LIMIT).sum() == over_limit
    first_names = expected.set_index(CUSTOMER_ID)["param_first_name"]
    assert (
        got.set_index(CUSTOMER_ID)["param_first_name"]
        .reindex(first_names.index)
        .equals(first_names)
    )
    # The audience had each case the partitions must get right.
    reasons = Counter(expected[REASON].dropna())
    for reason in (
        Reason.MISSING_CUSTOMER_ID,
        Reason.DUPLICATE,
        Reason.OPTED_OUT_VIA_WHATSAPP,
        Reason.ALREADY_SENT,
        Reason.SEND_IN_DOUBT,
        Reason.MISSING_PARAMETER,
        Reason.MARKETING_PAUSED_IN_REGION,
        Reason.MESSAGING_LIMIT,
        Reason.CONSENT_EXPIRED,
        "1013",
    ):
        assert reasons[reason] > 0, f"no customer with reason {reason}: {reasons}"
    assert Counter(expected[OUTCOME])[Outcome.EXCLUDED_INVALID_NUMBER] > 0
    planned = expected.loc[expected[OUTCOME] == Outcome.PLANNED, PHONE_E164]
    assert (~planned.isin(window)).sum() == 250  # numbers messaged in the window cost no place
    dupes = expected.loc[expected[PHONE_E164].notna()]
    chunks_per_number = (dupes[AUDIENCE_ROW] // CHUNK).groupby(dupes[PHONE_E164]).nunique()
    assert (chunks_per_number > 1).sum() > 10  # duplicates of one number in several chunks
