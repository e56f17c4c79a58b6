"""Which pricing and BSUID a message's statuses give its delivery, without I/O."""

from __future__ import annotations

import itertools
from types import SimpleNamespace
from typing import Any

from connectors.warehouse.events.details import carried


def event(status: str, **values: Any) -> SimpleNamespace:
    """A stored status as `loading.load` returns it."""
    fields = ("recipient_user_id", "pricing_model", "pricing_category", "pricing_type", "billable")
    return SimpleNamespace(status=status, **(dict.fromkeys(fields) | values))


def test_the_highest_ranked_status_carrying_a_value_gives_it_whatever_the_order() -> None:
    events = [
        event("sent", pricing_category="utility", pricing_type="regular", billable=True),
        event("delivered", pricing_category="marketing", pricing_model="PMP"),
        event("read", recipient_user_id="DE.1"),
        event("warning", pricing_category="authentication"),
    ]
    for order in itertools.permutations(events):
        assert carried(order) == {
            "user_id": "DE.1",
            "pricing_model": "PMP",
            "pricing_category": "marketing",
            "pricing_type": "regular",
            "billable": True,
        }


def test_statuses_without_values_carry_nothing() -> None:
    assert carried([event("sent"), event("read")]) == {}
    assert carried([event("delivered", billable=False)]) == {"billable": False}
