"""The delivery ranking that reconciling applies: the final status never depends on order."""

from __future__ import annotations

import itertools

import pytest

from connectors.warehouse.events.reconcile import best_status


@pytest.mark.parametrize(
    ("statuses", "final"),
    [
        (("sent", "delivered", "read"), "read"),
        (("sent", "failed"), "failed"),
        (("sent", "delivered", "failed"), "delivered"),
        (("read", "failed"), "read"),
        (("sent", "deleted", "warning"), "sent"),
        (("warning",), None),
    ],
)
def test_the_final_status_never_depends_on_arrival_order(
    statuses: tuple[str, ...], final: str | None
) -> None:
    for order in itertools.permutations(statuses):
        current = None
        for status in order:
            current = best_status(current, [status])
        assert current == final
