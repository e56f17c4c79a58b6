"""The embedded demo CRM: reproducible messy customers (`customers`, written by `generator`),
each with the outcome it must end with, and the table they are seeded into (`crm`)."""

from connectors.demo.crm import (
    DEMO_AUDIENCE_QUERY,
    DEMO_DEFAULT_REGION,
    DEMO_TEMPLATE,
    crm_contacts,
    demo_crm_url,
    demo_metadata,
    seed_demo_crm,
)
from connectors.demo.customers import (
    DemoCustomer,
    demo_customers,
    expected_by_id,
    expected_funnel,
)
from connectors.demo.generator import DEFAULT_NOW, INVALID_REASONS, NUMBER_FORMATS

__all__ = [
    "DEFAULT_NOW",
    "DEMO_AUDIENCE_QUERY",
    "DEMO_DEFAULT_REGION",
    "DEMO_TEMPLATE",
    "INVALID_REASONS",
    "NUMBER_FORMATS",
    "DemoCustomer",
    "crm_contacts",
    "demo_crm_url",
    "demo_customers",
    "demo_metadata",
    "expected_by_id",
    "expected_funnel",
    "seed_demo_crm",
]
