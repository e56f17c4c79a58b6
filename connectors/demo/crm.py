"""The demo CRM's table, where it lives, how it is seeded, and the audience that reads it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

from sqlalchemy import Column, DateTime, Engine, Integer, MetaData, String, Table, insert

from connectors.demo.customers import DemoCustomer
from connectors.demo.generator import DEMO_DEFAULT_REGION

__all__ = [
    "DEMO_AUDIENCE_QUERY",
    "DEMO_DEFAULT_REGION",
    "DEMO_TEMPLATE",
    "crm_contacts",
    "demo_crm_url",
    "demo_metadata",
    "seed_demo_crm",
]

DEMO_AUDIENCE_QUERY: Final = (
    "SELECT id AS customer_id, mobile AS phone_raw, cc AS country, optin AS opt_in_at, "
    "optout AS opt_out_at, fname AS param_first_name FROM crm_contacts"
)
DEMO_TEMPLATE: Final[dict[str, str | list[str]]] = {
    "namespace": "acme_ns",
    "name": "order_update",
    "language": "en",
    "body_params": ["first_name"],
}

demo_metadata = MetaData()
crm_contacts = Table(
    "crm_contacts",
    demo_metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("fname", String(100)),
    Column("lname", String(100)),
    Column("mobile", String(64)),
    Column("cc", String(2)),
    Column("optin", DateTime(timezone=True)),
    Column("optout", DateTime(timezone=True)),
    Column("email", String(200)),
    mysql_charset="utf8mb4",  # full-width and Arabic-Indic digits, accented names
)


def demo_crm_url(data_dir: Path) -> str:
    """The SQLAlchemy URL of the embedded demo CRM under `data_dir`."""
    return f"sqlite:///{data_dir}/crm.sqlite"


def seed_demo_crm(
    engine: Engine, customers: Sequence[DemoCustomer], *, replace: bool = True
) -> int:
    """Create crm_contacts (first dropping it when `replace`), insert the customers, count them."""
    if replace:
        crm_contacts.drop(engine, checkfirst=True)
    demo_metadata.create_all(engine, tables=[crm_contacts])
    rows = [c.row() for c in customers]
    with engine.begin() as conn:
        for start in range(0, len(rows), 1000):  # one executemany per batch
            conn.execute(insert(crm_contacts), rows[start : start + 1000])
    return len(rows)
