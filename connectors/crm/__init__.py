"""The CRM source: an audience (read-only query or mapped table) streamed in DataFrame chunks.

`columns` names the frame's columns, `guard` refuses SQL that does more than read, `audience`
is the campaign's definition and its statement, `values` reads each result value by its type,
`source` streams the audience out of the CRM.
"""

from connectors.crm.audience import Audience, audience_statement
from connectors.crm.columns import (
    OPTIONAL_COLUMNS,
    PARAM_PREFIX,
    REQUIRED_COLUMNS,
    UNREADABLE_CONSENT,
    AudienceError,
    check_columns,
    missing_param_message,
)
from connectors.crm.guard import check_query_text, check_where_text
from connectors.crm.source import crm_engine, read_audience, read_only
from connectors.crm.values import id_text, phone_text, plain_text, to_frame, utc_moment

__all__ = [
    "OPTIONAL_COLUMNS",
    "PARAM_PREFIX",
    "REQUIRED_COLUMNS",
    "UNREADABLE_CONSENT",
    "Audience",
    "AudienceError",
    "audience_statement",
    "check_columns",
    "check_query_text",
    "check_where_text",
    "crm_engine",
    "id_text",
    "missing_param_message",
    "phone_text",
    "plain_text",
    "read_audience",
    "read_only",
    "to_frame",
    "utc_moment",
]
