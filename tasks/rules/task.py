"""The rules stage: what earlier runs and Meta's limits say about sending now, before any check.

In order: Meta's paused marketing markets, the user's marketing opt-outs and Meta's per-user
marketing limit (MARKETING templates only), the campaign's quiet hours, then the portfolio's
24-hour messaging limit over whoever is left. Excluded customers get their outcome; deferred ones
get `not_before`, and a later run of the campaign sends them once it has passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import SecretStr
from sqlalchemy import Engine

from connectors.masking import masked_errors
from connectors.vocabulary import PHONE_E164
from connectors.warehouse.budget import messaged_since
from connectors.warehouse.connect import warehouse
from connectors.warehouse.events import marketing_limited_since, marketing_stopped
from tasks.campaign import SendWindow
from tasks.frame import in_running
from tasks.rules.budget import WINDOW, Budget, RuleStats, apply_budget
from tasks.rules.markets import (
    MARKETING_LIMIT_HOURS,
    defer_marketing_limited,
    exclude_paused_markets,
    exclude_stopped_marketing,
    is_marketing,
)
from tasks.rules.window import defer_outside_window


@dataclass(frozen=True)
class Rules:
    """What the rules need to know of the campaign and its sender."""

    category: str | None = None  # the template's; MARKETING turns the marketing rules on
    paused_regions: tuple[str, ...] = ("US",)
    send_window: SendWindow | None = None
    messaging_limit: int | None = None  # unique recipients per 24 h; None: no limit
    business_id: str | None = None  # the Cloud WABA id; None (v1): opt-outs of any business


def apply_rules(
    frames: list[pd.DataFrame], rules: Rules, engine: Engine, now: datetime
) -> tuple[list[pd.DataFrame], RuleStats]:
    """Every chunk with the rules applied to its customers still in the running."""
    if now.tzinfo is None:
        raise ValueError(f"now={now.isoformat()} is naive; the rules need an aware UTC time")
    out = list(frames)
    if is_marketing(rules.category):
        out = [exclude_paused_markets(f, rules.paused_regions) for f in out]
        phones = _running_phones(out)
        stopped = marketing_stopped(engine, phones, rules.business_id)
        since = now - timedelta(hours=MARKETING_LIMIT_HOURS)
        limited = marketing_limited_since(engine, phones, since)
        out = [defer_marketing_limited(exclude_stopped_marketing(f, stopped), limited) for f in out]
    out = [defer_outside_window(f, rules.send_window, now) for f in out]
    if rules.messaging_limit is None:
        return out, RuleStats()
    budget = Budget(rules.messaging_limit, messaged_since(engine, now - WINDOW))
    out, over = apply_budget(out, budget, now)
    return out, RuleStats(over, rules.messaging_limit, len(budget.messaged))


def _running_phones(frames: list[pd.DataFrame]) -> list[str]:
    """The distinct numbers still in the running across the chunks."""
    found: set[str] = set()
    for frame in frames:
        found.update(frame.loc[in_running(frame), PHONE_E164].dropna().tolist())
    return sorted(found)


@dataclass(frozen=True)
class Window:
    """The messaging limit's window when the run planned: places left, when the next frees."""

    places: int
    frees_at: datetime
    messaged: int


@task(name="messaging-limit", cache_policy=NO_CACHE)
@masked_errors
def limit_window(warehouse_url: SecretStr, limit: int, now: datetime) -> Window:
    """Prefect task: how many new numbers the portfolio's 24-hour window still takes."""
    engine = warehouse(warehouse_url.get_secret_value())
    budget = Budget(limit, messaged_since(engine, now - WINDOW))
    return Window(budget.places() or 0, budget.frees_at(now), len(budget.messaged))
