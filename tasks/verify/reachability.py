"""Reachability: the Cloud API's stand-in for the contact check, learnt from earlier sends.

The Cloud API cannot say before a send whether a number is on WhatsApp: a number that is not
fails later, by status webhook, with 131026. The receiver keeps such numbers (`wa_undeliverable`);
this stage excludes those that failed within `suppress_days` as `excluded_not_on_whatsapp` /
`undeliverable`, and tries them again afterwards (a user may install WhatsApp, or accept the
terms). Every other number is messaged at its E.164 digits. No API call is made, so the rule
"never check more numbers than you message" has nothing to guard here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from connectors.vocabulary import OUTCOME, PHONE_E164, REASON, WA_ID, Outcome, Reason
from connectors.warehouse.connect import warehouse
from connectors.warehouse.events import opted_out_wa_ids
from connectors.warehouse.events.undeliverable import undeliverable_since
from tasks.frame import in_running
from tasks.verify.common import VerifyStats, exclude_stopped, numbers_to_check


def apply_reachability(frame: pd.DataFrame, undeliverable: set[str]) -> pd.DataFrame:
    """Exclude recently undeliverable numbers; address the rest at their E.164 digits."""
    out = frame.copy()
    running = in_running(out)
    suppressed = running & out[PHONE_E164].isin(list(undeliverable))
    reachable = running & ~suppressed & out[PHONE_E164].notna()
    out.loc[suppressed, OUTCOME] = Outcome.EXCLUDED_NOT_ON_WHATSAPP
    out.loc[suppressed, REASON] = Reason.UNDELIVERABLE
    out.loc[reachable, WA_ID] = out.loc[reachable, PHONE_E164].str.removeprefix("+")
    return out


def reach(
    frames: list[pd.DataFrame],
    *,
    warehouse_url: str,
    suppress_days: int,
    now: datetime | None = None,
) -> tuple[list[pd.DataFrame], VerifyStats]:
    """Every chunk with its reachable customers addressed and the rest excluded."""
    now = now or datetime.now(UTC)
    engine = warehouse(warehouse_url)
    phones = numbers_to_check(frames)
    recent = undeliverable_since(engine, phones, now - timedelta(days=suppress_days))
    stopped = opted_out_wa_ids(engine)
    reached = [exclude_stopped(apply_reachability(f, recent), stopped) for f in frames]
    return reached, VerifyStats(checked=0, from_cache=0, suppressed=len(recent))
