"""The warehouse tables and view, as SQLAlchemy Core objects that migrations and writes share."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    TypeDecorator,
)

from connectors.vocabulary import DEFERRAL_REASONS, RUN_OUTCOMES


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC timestamps on every dialect (SQLite and MySQL store them naive, as UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} given; timestamps must be UTC-aware"
            )
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


ID = String(128)
PHONE = String(20)
SHORT = String(32)
SENDER = String(128)
USER_ID = String(128)  # a business-scoped user id (BSUID), e.g. "US.13491208655302741918"
CALLBACK = String(512)  # Cloud's limit for `biz_opaque_callback_data`

metadata = MetaData()


campaign_runs = Table(
    "wa_campaign_runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    # A Prefect retry keeps the flow run id: each attempt is its own row.
    Column("attempt", Integer, primary_key=True, default=1),
    Column("campaign_id", ID, nullable=False, index=True),
    Column("template_name", String(256), nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Column("status", SHORT, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("customers", Integer, nullable=False, default=0),
    Column("contacts_checked", Integer, nullable=False, default=0),
    Column("contacts_from_cache", Integer, nullable=False, default=0),
    Column("messages_sent", Integer, nullable=False, default=0),
    Column("error", Text),
    *(Column(name, Integer, nullable=False, default=0) for name in RUN_OUTCOMES),
    *(Column(f"deferred_{r}", Integer, nullable=False, default=0) for r in DEFERRAL_REASONS),
)

recipients = Table(
    "wa_recipients",
    metadata,
    Column("campaign_id", ID, primary_key=True),
    Column("customer_id", ID, primary_key=True),
    Column("outcome", SHORT, nullable=False),
    Column("reason", String(64)),
    Column("phone_e164", PHONE),
    Column("duplicate_of", ID),
    Column("run_id", String(64), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("not_before", UTCDateTime),  # deferred: a later run sends it from then on
    Column("template_language", String(16)),  # the template's language this customer gets
)

deliveries = Table(
    "wa_deliveries",
    metadata,
    Column("campaign_id", ID, primary_key=True),
    Column("phone_e164", PHONE, primary_key=True),
    Column("customer_id", ID, nullable=False),
    Column("wa_id", PHONE),
    Column("state", SHORT, nullable=False),
    Column("retryable", Boolean, nullable=False, default=False),
    Column("message_id", String(128), index=True),
    Column("error_code", SHORT),
    Column("error_title", String(256)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("run_id", String(64), nullable=False),
    Column("first_attempt_at", UTCDateTime),
    Column("last_attempt_at", UTCDateTime),
    Column("sent_at", UTCDateTime),
    Column("delivery_status", SHORT),
    Column("delivery_error_code", SHORT),
    Column("delivery_updated_at", UTCDateTime),
    # The campaign lease token of the run attempt that claimed the row last (a fencing token).
    Column("lease_token", BigInteger),
    Column("sender", SENDER),  # the v1 server or Cloud phone number id that sent it
    # Cloud: the send answer's message_status (accepted / held_for_quality_assessment / paused),
    Column("message_status", SHORT),
    # the recipient's BSUID (send answer or status webhooks: maps a BSUID-only STOP to a number)
    Column("user_id", USER_ID, index=True),
    # and the status webhooks' `pricing` (what Meta charges for the delivered message).
    Column("pricing_model", String(16)),
    Column("pricing_category", SHORT),
    Column("pricing_type", SHORT),
    Column("billable", Boolean),
    # The rate card's market of the number (ISO region, e.g. BR), for the cost view.
    Column("market", String(8)),
)

campaign_leases = Table(
    "wa_campaign_leases",
    metadata,
    Column("campaign_id", ID, primary_key=True),
    Column("token", BigInteger, nullable=False),
    Column("holder", String(128)),
    Column("acquired_at", UTCDateTime, nullable=False),
    Column("renewed_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

contact_checks = Table(
    "wa_contact_checks",
    metadata,
    Column("phone_e164", PHONE, primary_key=True),
    Column("wa_id", PHONE),
    Column("status", SHORT, nullable=False),
    Column("checked_at", UTCDateTime, nullable=False),
    Column("sender", SENDER),  # the server that answered; NULL: checked before senders existed
)

status_events = Table(
    "wa_status_events",
    metadata,
    Column("message_id", String(128), primary_key=True),
    Column("status", SHORT, primary_key=True),
    Column("recipient_id", PHONE),
    Column("error_code", SHORT),
    Column("error_title", String(256)),
    Column("event_at", UTCDateTime),
    Column("received_at", UTCDateTime, nullable=False),
    Column("raw", Text),
    Column("phone_number_id", String(64)),  # the Cloud API sender the status came for
    Column("recipient_user_id", USER_ID),
    # The echoed `biz_opaque_callback_data`: the ledger key (`connectors.warehouse.callback`).
    Column("callback", CALLBACK, index=True),
    Column("pricing_category", SHORT),
    Column("pricing_type", SHORT),
    Column("pricing_model", String(16)),
    Column("billable", Boolean),
)

opt_outs = Table(
    "wa_opt_outs",
    metadata,
    Column("phone_e164", PHONE, primary_key=True),
    Column("wa_id", PHONE),
    Column("keyword", String(64), nullable=False),
    Column("message_id", String(128)),
    Column("opted_out_at", UTCDateTime, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
)

undeliverable = Table(
    "wa_undeliverable",
    metadata,
    # Numbers a send showed undeliverable (Cloud 131026), with the latest failure: a later run
    # suppresses them for a period (`undeliverable_since`).
    Column("phone_e164", PHONE, primary_key=True),
    Column("wa_id", PHONE),
    Column("error_code", SHORT),
    Column("message_id", String(128)),
    Column("failed_at", UTCDateTime, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
)

marketing_opt_outs = Table(
    "wa_marketing_opt_outs",
    metadata,
    # A user's marketing preference for one business (WABA id; "" where unknown): `stop` from a
    # 131050 failure or a user_preferences stop, `resume` lifts it; the latest event wins.
    Column("business_id", String(64), primary_key=True),
    Column("phone_e164", PHONE, primary_key=True),
    Column("wa_id", PHONE),
    Column("user_id", USER_ID),
    Column("preference", SHORT, nullable=False),  # stop | resume
    Column("source", SHORT, nullable=False),  # 131050 | user_preferences
    Column("changed_at", UTCDateTime, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
)

marketing_limited = Table(
    "wa_marketing_limited",
    metadata,
    # Numbers Meta's per-user marketing limit held back (131049), with the latest such failure:
    # no marketing template goes to them for 24 hours after it.
    Column("phone_e164", PHONE, primary_key=True),
    Column("wa_id", PHONE),
    Column("message_id", String(128)),
    Column("limited_at", UTCDateTime, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
)

rate_card = Table(
    "wa_rate_card",
    metadata,
    # The rate card the latest run priced with (WA_RATE_CARD or the shipped one).
    Column("market", String(8), primary_key=True),  # ISO region, or "*" for the rest
    Column("category", SHORT, primary_key=True),  # marketing | utility | authentication ...
    Column("usd", Numeric(12, 6), nullable=False),  # per delivered (billable) message
    Column("as_of", String(10), nullable=False),  # the card's date, YYYY-MM-DD
)

cost_estimates = Table(
    "wa_cost_estimates",
    metadata,
    # What a run expected to spend when it planned (dry runs too), per category and market.
    Column("run_id", String(64), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("category", SHORT, primary_key=True),
    Column("market", String(8), primary_key=True),
    Column("campaign_id", ID, nullable=False, index=True),
    Column("messages", Integer, nullable=False),
    Column("usd", Numeric(14, 6)),  # NULL: the card has no rate for this market and category
    Column("estimated_at", UTCDateTime, nullable=False),
)
