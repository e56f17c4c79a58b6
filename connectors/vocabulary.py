"""The pipeline's words, each defined once: frame columns, outcomes and reasons, ledger states,
delivery statuses and contact-check statuses. Stable strings that analysts filter on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

# --- the frame between stages (DESIGN.md) --------------------------------------------------------
CUSTOMER_ID: Final = "customer_id"
PHONE_RAW: Final = "phone_raw"
COUNTRY: Final = "country"
OPT_IN_AT: Final = "opt_in_at"
OPT_OUT_AT: Final = "opt_out_at"
OPT_IN: Final = "opt_in"  # yes/no flags, for CRMs that keep consent without timestamps
OPT_OUT: Final = "opt_out"
LANGUAGE: Final = "language"  # the customer's language, e.g. de or pt_BR (optional)
PARAM_PREFIX: Final = "param_"  # a template parameter's column: param_<name>
PHONE_E164: Final = "phone_e164"
WA_ID: Final = "wa_id"
OUTCOME: Final = "outcome"
REASON: Final = "reason"
DUPLICATE_OF: Final = "duplicate_of"
MESSAGE_ID: Final = "message_id"
NOT_BEFORE: Final = "not_before"  # a deferred customer's earliest send time (UTC), set by rules
TEMPLATE_LANGUAGE: Final = "template_language"  # the template's language this customer gets

REQUIRED_COLUMNS: Final = (CUSTOMER_ID, PHONE_RAW)
OPTIONAL_COLUMNS: Final = (COUNTRY, OPT_IN_AT, OPT_OUT_AT, OPT_IN, OPT_OUT, LANGUAGE)
TIMESTAMP_COLUMNS: Final = (OPT_IN_AT, OPT_OUT_AT)
FLAG_COLUMNS: Final = (OPT_IN, OPT_OUT)
STAGE_COLUMNS: Final = (PHONE_E164, WA_ID, OUTCOME, REASON, DUPLICATE_OF, MESSAGE_ID)


class Outcome:
    """A customer's state in one campaign."""

    EXCLUDED_INVALID_CUSTOMER_ID: Final = "excluded_invalid_customer_id"
    EXCLUDED_NO_CONSENT: Final = "excluded_no_consent"
    EXCLUDED_INVALID_NUMBER: Final = "excluded_invalid_number"
    EXCLUDED_DUPLICATE: Final = "excluded_duplicate"
    EXCLUDED_NOT_ON_WHATSAPP: Final = "excluded_not_on_whatsapp"
    EXCLUDED_POLICY: Final = "excluded_policy"  # a rule of Meta's forbids this send
    DEFERRED: Final = "deferred"  # sent by a later run of the campaign once `not_before` passed
    CHECK_FAILED: Final = "check_failed"
    PLANNED: Final = "planned"
    SENDING: Final = "sending"
    SENT: Final = "sent"
    SEND_FAILED: Final = "send_failed"
    UNKNOWN: Final = "unknown"
    DELIVERED: Final = "delivered"
    READ: Final = "read"
    FAILED: Final = "failed"


# Outcomes a run gives (one count column each in wa_campaign_runs); webhooks move `sent` later.
RUN_OUTCOMES: Final = (
    Outcome.EXCLUDED_INVALID_CUSTOMER_ID,
    Outcome.EXCLUDED_NO_CONSENT,
    Outcome.EXCLUDED_INVALID_NUMBER,
    Outcome.EXCLUDED_DUPLICATE,
    Outcome.EXCLUDED_NOT_ON_WHATSAPP,
    Outcome.EXCLUDED_POLICY,
    Outcome.DEFERRED,
    Outcome.CHECK_FAILED,
    Outcome.PLANNED,
    Outcome.SENT,
    Outcome.SEND_FAILED,
    Outcome.UNKNOWN,
)


class Reason:
    """Short snake_case details beside an outcome; API error codes are used as-is (e.g. "1013")."""

    MISSING_CUSTOMER_ID: Final = "missing_customer_id"
    UNUSABLE_CUSTOMER_ID: Final = "unusable_customer_id"  # too long to key on, or holds NUL
    NO_OPT_IN: Final = "no_opt_in"
    UNREADABLE_CONSENT_DATE: Final = "unreadable_consent_date"
    OPT_IN_IN_FUTURE: Final = "opt_in_in_future"
    OPTED_OUT: Final = "opted_out"
    CONSENT_EXPIRED: Final = "consent_expired"
    OPTED_OUT_VIA_WHATSAPP: Final = "opted_out_via_whatsapp"
    EMPTY: Final = "empty"
    NOT_A_NUMBER: Final = "not_a_number"
    TOO_SHORT: Final = "too_short"
    TOO_LONG: Final = "too_long"
    INVALID_COUNTRY_CODE: Final = "invalid_country_code"
    INVALID_FOR_REGION: Final = "invalid_for_region"
    NOT_MOBILE: Final = "not_mobile"
    DUPLICATE: Final = "duplicate"
    NOT_ON_WHATSAPP: Final = "not_on_whatsapp"
    CHECK_FAILED: Final = "check_failed"
    CHECK_PROCESSING: Final = "check_processing"
    ALREADY_SENT: Final = "already_sent"
    SEND_IN_DOUBT: Final = "send_in_doubt"
    MISSING_PARAMETER: Final = "missing_parameter"
    INVALID_PARAMETER: Final = "invalid_parameter"
    UNDELIVERABLE: Final = "undeliverable"  # Cloud 131026 on an earlier send, still suppressed
    STOPPED_MARKETING: Final = "stopped_marketing"  # 131050 or a user_preferences stop
    MARKETING_PAUSED_IN_REGION: Final = "marketing_paused_in_region"
    NO_TEMPLATE_LANGUAGE: Final = "no_template_language"  # not in the customer's, no fallback
    MARKETING_LIMITED: Final = "marketing_limited"  # 131049: Meta's per-user marketing limit
    MESSAGING_LIMIT: Final = "messaging_limit"  # the portfolio's 24-hour unique-recipient limit
    OUTSIDE_SEND_WINDOW: Final = "outside_send_window"  # the campaign's local quiet hours
    SENDER_STOPPED: Final = "sender_stopped"  # its sender stopped (spam limit, RED, credentials)


# Why a customer is deferred; `wa_campaign_runs` has a count column for each
# (`deferred_<reason>`).
DEFERRAL_REASONS: Final = (
    Reason.MARKETING_LIMITED,
    Reason.MESSAGING_LIMIT,
    Reason.OUTSIDE_SEND_WINDOW,
    Reason.SENDER_STOPPED,
)


# Why normalise rejects a number (`excluded_invalid_number`); `not_mobile` only with mobile_only.
NUMBER_REASONS: Final = (
    Reason.EMPTY,
    Reason.NOT_A_NUMBER,
    Reason.TOO_SHORT,
    Reason.TOO_LONG,
    Reason.INVALID_COUNTRY_CODE,
    Reason.INVALID_FOR_REGION,
    Reason.NOT_MOBILE,
)


class LedgerState:
    """A `wa_deliveries` row's send state: claimed before the call, settled after it."""

    SENDING: Final = "sending"
    SENT: Final = "sent"
    SEND_FAILED: Final = "send_failed"
    UNKNOWN: Final = "unknown"


# States a later attempt may claim again: in doubt (`resend_unknown`) or failed, if retryable.
CLAIMABLE_STATES: Final = (LedgerState.UNKNOWN, LedgerState.SEND_FAILED)


class DeliveryStatus:
    """A status a webhook reports for a sent message."""

    SENT: Final = "sent"
    DELIVERED: Final = "delivered"
    READ: Final = "read"
    FAILED: Final = "failed"
    DELETED: Final = "deleted"
    WARNING: Final = "warning"


DELIVERY_RANK: Final[Mapping[str, int]] = {
    DeliveryStatus.SENT: 1,
    DeliveryStatus.FAILED: 2,
    DeliveryStatus.DELIVERED: 3,
    DeliveryStatus.READ: 4,
}
"""Statuses that move a delivery, by rank; a delivery only ever moves to a higher rank."""

# Outcomes that webhooks set after `sent`: a re-run writing `sent` again must not undo them.
AFTER_SENT: Final = (Outcome.DELIVERED, Outcome.READ, Outcome.FAILED)

DELIVERY_STATUSES: Final = (
    DeliveryStatus.SENT,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.READ,
    DeliveryStatus.FAILED,
    DeliveryStatus.DELETED,
    DeliveryStatus.WARNING,
)

UNDELIVERABLE_CODE: Final = "131026"
"""The Cloud error a `failed` status carries for a number WhatsApp cannot deliver to."""
MARKETING_LIMITED_CODE: Final = "131049"
"""A `failed` status's code when Meta's per-user marketing limit held the message back."""
MARKETING_STOPPED_CODE: Final = "131050"
"""A `failed` status's code when the user stopped marketing messages from the business."""
MARKETING: Final = "MARKETING"
"""The template category the marketing rules apply to."""


class MessageStatus:
    """The Cloud send answer's `messages[].message_status` (kept in `wa_deliveries`)."""

    ACCEPTED: Final = "accepted"
    HELD_FOR_QUALITY_ASSESSMENT: Final = "held_for_quality_assessment"  # may be released or dropped
    PAUSED: Final = "paused"


MESSAGE_STATUSES: Final = (
    MessageStatus.ACCEPTED,
    MessageStatus.HELD_FOR_QUALITY_ASSESSMENT,
    MessageStatus.PAUSED,
)


class PricingType:
    """A Cloud status's `pricing.type`: only `regular` messages are paid for."""

    REGULAR: Final = "regular"
    FREE_CUSTOMER_SERVICE: Final = "free_customer_service"
    FREE_ENTRY_POINT: Final = "free_entry_point"


class RunStatus:
    """A run attempt's status in `wa_campaign_runs`."""

    RUNNING: Final = "running"
    COMPLETED: Final = "completed"
    FAILED: Final = "failed"


ContactStatus = Literal["valid", "invalid", "processing", "failed"]
"""The v1 `/v1/contacts` answer for one number."""


class Contact:
    """The four contact-check statuses, by name."""

    VALID: Final = "valid"
    INVALID: Final = "invalid"
    PROCESSING: Final = "processing"
    FAILED: Final = "failed"


CONTACT_STATUSES: Final[tuple[ContactStatus, ...]] = ("valid", "invalid", "processing", "failed")
# Answers worth keeping 7 days: `failed` and `processing` must be asked again next time.
CACHEABLE_CONTACT_STATUSES: Final = (Contact.VALID, Contact.INVALID)
