"""The ledger key a Cloud send carries in `biz_opaque_callback_data`, echoed in its statuses.

`wa1:<campaign_id>:<phone_e164>`: a status whose message id the ledger never learnt (the
process died between the API's answer and the ledger write) still names its ledger row. Campaign
ids may contain `:`, numbers never do, so the key is split at its last `:`. `wa1` versions the
format: anything else in the field (another system's data) is not a key.
"""

from __future__ import annotations

import re
from typing import Final

PREFIX: Final = "wa1:"
MAX_LENGTH: Final = 512
"""Cloud's limit for `biz_opaque_callback_data`."""
_MAX_CAMPAIGN_ID = 128  # wa_deliveries.campaign_id
_PHONE = re.compile(r"\+[0-9]{1,19}")  # "+" and digits that fit wa_deliveries.phone_e164
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def callback_key(campaign_id: str, phone_e164: str) -> str:
    """The key of the ledger row (campaign_id, phone_e164); ValueError when either cannot be one."""
    if not _PHONE.fullmatch(phone_e164):
        raise ValueError("phone_e164: must be '+' and 1 to 19 digits")
    if not _campaign_ok(campaign_id):
        raise ValueError(f"campaign_id: must be 1 to {_MAX_CAMPAIGN_ID} storable characters")
    return PREFIX + campaign_id + ":" + phone_e164


def parse_callback_key(text: object) -> tuple[str, str] | None:
    """(campaign_id, phone_e164) of a key made by `callback_key`; None for anything else."""
    if not isinstance(text, str) or len(text) > MAX_LENGTH or not text.startswith(PREFIX):
        return None
    campaign_id, colon, phone = text[len(PREFIX) :].rpartition(":")
    if not colon or not _PHONE.fullmatch(phone) or not _campaign_ok(campaign_id):
        return None
    return campaign_id, phone


def _campaign_ok(campaign_id: str) -> bool:
    return 0 < len(campaign_id) <= _MAX_CAMPAIGN_ID and not _UNSTORABLE.search(campaign_id)
