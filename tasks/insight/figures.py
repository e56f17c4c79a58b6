"""The figures behind a campaign's charts, as plain frames built from the warehouse's rows: the
funnel with the share kept at each stage, messages over time, reasons, cost by country, runs."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final

import pandas as pd
from sqlalchemy import Engine

from connectors.vocabulary import Outcome
from connectors.warehouse import views
from connectors.warehouse.costs import campaign_costs

TIMELINE_COLUMNS: Final = ("sent", "delivered", "read", "failed")


class NoCampaignDataError(LookupError):
    """The warehouse holds nothing of this campaign id."""

    def __init__(self, campaign_id: str) -> None:
        super().__init__(
            f"campaign {campaign_id!r} has no customers and no runs in the warehouse; check the "
            "campaign_id and WAREHOUSE_DATABASE_URL"
        )
        self.campaign_id = campaign_id


@dataclass(frozen=True)
class CampaignFigures:
    """Everything the report draws, for one campaign."""

    campaign_id: str
    funnel: pd.DataFrame  # stage, customers, share (of customers read), kept (of the stage before)
    timeline: pd.DataFrame  # index: bucket start (UTC); columns TIMELINE_COLUMNS (messages)
    bucket: str  # "second", "minute", "hour" or "day"
    reasons: pd.DataFrame  # kind, label, customers: exclusions, deferrals and failures
    costs: pd.DataFrame  # market, billable_messages, cost_usd (Decimal, None: no rate)
    runs: pd.DataFrame  # views.RUN_COLUMNS


def load(engine: Engine, campaign_id: str) -> CampaignFigures:
    """The campaign's figures from the warehouse alone; NoCampaignDataError when it has none."""
    outcomes = views.outcome_reasons(engine, campaign_id)
    runs = views.runs(engine, campaign_id)
    if outcomes.empty and runs.empty:
        raise NoCampaignDataError(campaign_id)
    timeline, bucket = timeline_of(views.delivery_events(engine, campaign_id))
    return CampaignFigures(
        campaign_id=campaign_id,
        funnel=funnel_of(outcomes),
        timeline=timeline,
        bucket=bucket,
        reasons=reasons_of(outcomes),
        costs=cost_by_country(campaign_costs(engine, campaign_id)),
        runs=runs,
    )


def funnel_of(outcomes: pd.DataFrame) -> pd.DataFrame:
    """The stages a customer passes, each with the customers still in and the shares kept."""
    per = outcomes.groupby("outcome")["customers"].sum()

    def n(*names: str) -> int:
        return int(sum(int(per.get(name, 0)) for name in names))

    sent = n(Outcome.SENT, Outcome.DELIVERED, Outcome.READ, Outcome.FAILED)
    stages = [("customers read", int(per.sum()))]
    out = [
        ("consenting", (Outcome.EXCLUDED_INVALID_CUSTOMER_ID, Outcome.EXCLUDED_NO_CONSENT)),
        ("valid number", (Outcome.EXCLUDED_INVALID_NUMBER,)),
        ("unique number", (Outcome.EXCLUDED_DUPLICATE,)),
        ("on WhatsApp", (Outcome.EXCLUDED_NOT_ON_WHATSAPP, Outcome.CHECK_FAILED)),
        ("allowed by the rules", (Outcome.EXCLUDED_POLICY, Outcome.DEFERRED)),
    ]
    for label, names in out:
        stages.append((label, stages[-1][1] - n(*names)))
    if n(Outcome.PLANNED):
        stages.append(("planned (dry run)", n(Outcome.PLANNED)))
    stages += [
        ("sent", sent),
        ("delivered", n(Outcome.DELIVERED, Outcome.READ)),
        ("read", n(Outcome.READ)),
    ]
    frame = pd.DataFrame(stages, columns=["stage", "customers"])
    total = frame["customers"].iloc[0]
    frame["share"] = frame["customers"] / total if total else 0.0
    before = frame["customers"].shift(1).fillna(frame["customers"].iloc[0])
    frame["kept"] = (frame["customers"] / before.where(before > 0)).fillna(0.0)
    return frame


def bucket_of(events: pd.DataFrame) -> str:
    """Seconds for a campaign over within 5 minutes, minutes within 3 hours, hours within a
    week, days beyond."""
    if events.empty:
        return "minute"
    span = events["at"].max() - events["at"].min()
    if span <= pd.Timedelta(minutes=5):
        return "second"
    if span <= pd.Timedelta(hours=3):
        return "minute"
    return "hour" if span <= pd.Timedelta(days=7) else "day"


_FREQ: Final = {"second": "s", "minute": "min", "hour": "h", "day": "D"}


def timeline_of(events: pd.DataFrame, bucket: str | None = None) -> tuple[pd.DataFrame, str]:
    """Messages sent, delivered, read and failed (after sending, or refused) per bucket, every
    bucket from the first event to the last (zeros included)."""
    bucket = bucket or bucket_of(events)
    kinds = events["event"].replace({"send_failed": "failed"})
    starts = events["at"].dt.floor(_FREQ[bucket])
    counts = (
        pd.crosstab(starts, kinds, values=events["messages"], aggfunc="sum")
        if not events.empty
        else pd.DataFrame()
    )
    index = (
        pd.date_range(starts.min(), starts.max(), freq=_FREQ[bucket], name="at")
        if not events.empty
        else pd.DatetimeIndex([], tz="UTC", name="at")
    )
    frame = counts.reindex(index=index, columns=list(TIMELINE_COLUMNS), fill_value=0)
    return frame.fillna(0).astype("int64"), bucket


_REASON_KINDS: Final = ("excluded", "deferred", "failed")


def reasons_of(outcomes: pd.DataFrame) -> pd.DataFrame:
    """Customers excluded, deferred or failed, per `outcome: reason`, most first."""
    rows = outcomes.loc[outcomes["kind"].isin(_REASON_KINDS)].copy()
    reason = rows["reason"].astype(object).where(rows["reason"].notna(), "-")
    rows["label"] = rows["outcome"].astype(str) + ": " + reason.astype(str)
    summed = rows.groupby(["kind", "label"])["customers"].sum().reset_index()
    return summed.sort_values(["customers", "label"], ascending=[False, True], ignore_index=True)


def cost_by_country(costs: pd.DataFrame) -> pd.DataFrame:
    """Billable messages and their cost per market (cost None where a market had no rate)."""
    rows = []
    for market, group in costs.groupby("market", sort=True):
        amounts = list(group["cost_usd"])
        cost = None if any(a is None for a in amounts) else sum(amounts, Decimal(0))
        rows.append((str(market), int(group["billable_messages"].sum()), cost))
    return pd.DataFrame(rows, columns=["market", "billable_messages", "cost_usd"])
