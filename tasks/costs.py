"""The cost stage: what the run's sends should cost at the rate card, kept beside what Meta bills.

Before sending, the numbers about to be messaged (dry run: the planned ones) are priced by market
and the template's category; the card the run used goes to `wa_rate_card` and the estimate to
`wa_cost_estimates`. What was billed so far comes from the view `wa_campaign_costs` (the status
webhooks' `pricing` on each delivery, at the same card).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import SecretStr

from connectors.masking import masked_errors
from connectors.pricing.card import load_rate_card
from connectors.pricing.estimate import ESTIMATE_COLUMNS, estimate_counts
from connectors.pricing.report import cost_lines
from connectors.warehouse.connect import warehouse
from connectors.warehouse.costs import campaign_costs, save_estimate, save_rate_card


@task(name="cost-estimate", cache_policy=NO_CACHE)
@masked_errors
def estimate_task(
    markets: Mapping[str, int],
    category: str | None,
    warehouse_url: SecretStr,
    run_id: str,
    attempt: int,
    campaign_id: str,
) -> pd.DataFrame:
    """Prefect task: record the rate card (`WA_RATE_CARD` or the shipped one), which prices what
    Meta bills, and the estimate of the sends (`markets`: messages per market) at it; no
    category (a v1 template without `template.category`): nothing to estimate."""
    card = load_rate_card()
    engine = warehouse(warehouse_url.get_secret_value())
    save_rate_card(engine, card)
    if category is None:
        return pd.DataFrame(columns=list(ESTIMATE_COLUMNS))
    priced = estimate_counts(markets, category, card)
    save_estimate(
        engine,
        run_id=run_id,
        attempt=attempt,
        campaign_id=campaign_id,
        frame=priced,
        now=datetime.now(UTC),
    )
    return priced


@task(name="costs", cache_policy=NO_CACHE)
@masked_errors
def cost_report_task(
    priced: pd.DataFrame, warehouse_url: SecretStr, campaign_id: str, dry_run: bool
) -> list[str]:
    """Prefect task: the summary's cost table, estimate beside what is billed so far."""
    actual = (
        None
        if dry_run
        else campaign_costs(warehouse(warehouse_url.get_secret_value()), campaign_id)
    )
    return cost_lines(priced, actual)
