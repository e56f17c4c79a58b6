"""The frame that flows between stages: column names, outcomes and reasons, named once."""

from __future__ import annotations

from typing import Final

import pandas as pd

# Columns set by extract.
CUSTOMER_ID: Final = "customer_id"
PHONE_RAW: Final = "phone_raw"
COUNTRY: Final = "country"
OPT_IN_AT: Final = "opt_in_at"
OPT_OUT_AT: Final = "opt_out_at"
OPT_IN: Final = "opt_in"  # yes/no flags, for CRMs that keep consent without timestamps
OPT_OUT: Final = "opt_out"
PARAM_PREFIX: Final = "param_"
# Columns set by later stages.
PHONE_E164: Final = "phone_e164"
WA_ID: Final = "wa_id"
OUTCOME: Final = "outcome"
REASON: Final = "reason"
DUPLICATE_OF: Final = "duplicate_of"
MESSAGE_ID: Final = "message_id"

EXTRACT_COLUMNS: Final = (CUSTOMER_ID, PHONE_RAW, COUNTRY, OPT_IN_AT, OPT_OUT_AT)
STAGE_COLUMNS: Final = (PHONE_E164, WA_ID, OUTCOME, REASON, DUPLICATE_OF, MESSAGE_ID)


class Outcome:
    """A customer's state in one campaign; stable strings that analysts filter on."""

    EXCLUDED_INVALID_CUSTOMER_ID: Final = "excluded_invalid_customer_id"
    EXCLUDED_NO_CONSENT: Final = "excluded_no_consent"
    EXCLUDED_INVALID_NUMBER: Final = "excluded_invalid_number"
    EXCLUDED_DUPLICATE: Final = "excluded_duplicate"
    EXCLUDED_NOT_ON_WHATSAPP: Final = "excluded_not_on_whatsapp"
    CHECK_FAILED: Final = "check_failed"
    PLANNED: Final = "planned"
    SENDING: Final = "sending"
    SENT: Final = "sent"
    SEND_FAILED: Final = "send_failed"
    UNKNOWN: Final = "unknown"
    DELIVERED: Final = "delivered"
    READ: Final = "read"
    FAILED: Final = "failed"


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


def in_running(frame: pd.DataFrame) -> pd.Series:
    """Rows no stage has excluded yet (outcome still null)."""
    return frame[OUTCOME].isna()


def with_stage_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Add the later stages' columns as nulls so every stage can rely on them."""
    out = frame.copy()
    for column in STAGE_COLUMNS:
        if column not in out.columns:
            out[column] = pd.Series(pd.NA, index=out.index, dtype="str")
    return out
