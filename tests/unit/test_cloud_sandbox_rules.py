"""The Cloud sandbox's number rule and BSUIDs: pure functions, no server."""

from __future__ import annotations

import re

import pytest

from connectors.whatsapp.cloud.sandbox.rules import Outcome, bsuid_of, outcome
from connectors.whatsapp.cloud.sandbox.templates import Category

DELIVERED = ("sent", "delivered", "read")


@pytest.mark.parametrize(
    ("to", "category", "expected"),
    [
        ("+49 151 1234 5671", "UTILITY", Outcome("accepted", DELIVERED)),
        ("4915112345671", "MARKETING", Outcome("accepted", DELIVERED)),
        ("4915112345670", "UTILITY", Outcome("accepted", ("failed",), 131026)),
        ("4915112345670", "MARKETING", Outcome("accepted", ("failed",), 131026)),
        ("1234567", "UTILITY", Outcome("accepted", ("failed",), 131026)),
        ("1234567890123456", "AUTHENTICATION", Outcome("accepted", ("failed",), 131026)),
        ("4915112345679", "MARKETING", Outcome("accepted", ("failed",), 131049)),
        ("4915112345678", "MARKETING", Outcome("accepted", ("failed",), 131050)),
        (
            "4915112345677",
            "MARKETING",
            Outcome("held_for_quality_assessment", ("sent", "delivered")),
        ),
        ("4915112345679", "UTILITY", Outcome("accepted", DELIVERED)),
        ("4915112345678", "AUTHENTICATION", Outcome("accepted", DELIVERED)),
        ("4915112345677", "UTILITY", Outcome("accepted", DELIVERED)),
    ],
    ids=[
        "formatted_other",
        "marketing_other",
        "ends_0_utility",
        "ends_0_marketing",
        "too_short",
        "too_long",
        "ends_9_marketing_limit",
        "ends_8_marketing_stopped",
        "ends_7_marketing_held",
        "ends_9_utility_delivered",
        "ends_8_authentication_delivered",
        "ends_7_utility_delivered",
    ],
)
def test_outcome_follows_the_documented_number_rule(
    to: str, category: Category, expected: Outcome
) -> None:
    assert outcome(to, category) == expected


def test_a_user_who_stopped_marketing_fails_marketing_only_with_131050() -> None:
    assert outcome("4915112345671", "MARKETING", marketing_stopped=True) == Outcome(
        "accepted", ("failed",), 131050
    )
    assert outcome("4915112345671", "UTILITY", marketing_stopped=True).statuses == DELIVERED
    assert outcome("4915112345670", "MARKETING", marketing_stopped=True).error_code == 131026


def test_bsuid_is_stable_per_number_and_business_and_names_the_region() -> None:
    first = bsuid_of("+49 151 1234 5671", business="102290129340398")
    assert first == bsuid_of("4915112345671", business="102290129340398")
    assert re.fullmatch(r"DE\.\d{20}", first)
    assert bsuid_of("4915112345671", business="999") != first
    assert bsuid_of("4915112345672", business="102290129340398") != first
    assert bsuid_of("16315551001", business="1").startswith("US.")


def test_bsuid_of_a_number_without_a_region_uses_zz() -> None:
    assert re.fullmatch(r"ZZ\.\d{20}", bsuid_of("999123", business="1"))
