"""Webhook events in the warehouse: statuses stored once and applied never backwards, opt-outs.

`statuses` stores a receiver's batch in one transaction (`write_events`), `reconcile` raises
deliveries and customers to their best stored status (also a campaign's, after its record
stage), `details` puts the statuses' pricing and BSUID on the delivery, `in_doubt` joins the
statuses of messages the ledger never learnt back to their rows by callback key, `undeliverable`
keeps the numbers a send showed undeliverable (131026), `opt_outs` keeps the earliest opt-out
reply per number and answers who opted out, `marketing` keeps each user's marketing preference
per business (user_preferences, 131050) and the numbers Meta's per-user marketing limit held
back (131049).
"""

from connectors.warehouse.events.marketing import (
    MarketingPreference,
    marketing_limited_since,
    marketing_stopped,
)
from connectors.warehouse.events.opt_outs import OptOut, opted_out_numbers, opted_out_wa_ids
from connectors.warehouse.events.reconcile import best_status, reconcile_campaign, resolve_in_doubt
from connectors.warehouse.events.statuses import (
    RecordResult,
    StatusEvent,
    apply_stored_statuses,
    write_events,
)
from connectors.warehouse.events.undeliverable import undeliverable_since

__all__ = [
    "MarketingPreference",
    "OptOut",
    "RecordResult",
    "StatusEvent",
    "apply_stored_statuses",
    "best_status",
    "marketing_limited_since",
    "marketing_stopped",
    "opted_out_numbers",
    "opted_out_wa_ids",
    "reconcile_campaign",
    "resolve_in_doubt",
    "undeliverable_since",
    "write_events",
]
