"""Webhook events in the warehouse: statuses stored once and applied never backwards, opt-outs.

`statuses` stores a receiver's batch in one transaction (`write_events`), `reconcile` raises
deliveries and customers to their best stored status (also a campaign's, after its record
stage), `opt_outs` keeps the earliest opt-out reply per number and answers who opted out.
"""

from connectors.warehouse.events.opt_outs import OptOut, opted_out_numbers, opted_out_wa_ids
from connectors.warehouse.events.reconcile import best_status, reconcile_campaign
from connectors.warehouse.events.statuses import (
    RecordResult,
    StatusEvent,
    apply_stored_statuses,
    write_events,
)

__all__ = [
    "OptOut",
    "RecordResult",
    "StatusEvent",
    "apply_stored_statuses",
    "best_status",
    "opted_out_numbers",
    "opted_out_wa_ids",
    "reconcile_campaign",
    "write_events",
]
