"""Planning before any API call: template parameters present, and what the ledger says is done."""

from __future__ import annotations

from typing import Final

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import SecretStr

from connectors.masking import masked_errors
from connectors.vocabulary import (
    MESSAGE_ID,
    OUTCOME,
    PHONE_E164,
    REASON,
    LedgerState,
    Outcome,
    Reason,
)
from connectors.warehouse import ledger
from connectors.warehouse.connect import warehouse
from connectors.warehouse.events import resolve_in_doubt
from connectors.warehouse.lease import Lease
from tasks.frame import in_running

# Ledger state -> the outcome a re-run reports without sending again.
_DONE = {LedgerState.SENT: Outcome.SENT, LedgerState.SEND_FAILED: Outcome.SEND_FAILED}


# The API refuses body parameter text with a newline or tab, or more than four spaces in a row.
_BREAKS: Final = "\t\n\r\x0b\x0c\x85\u2028\u2029"
_SPACING: Final = rf"[ {_BREAKS}\u00a0]*[{_BREAKS}][ {_BREAKS}\u00a0]*| {{5,}}"
_CONTROLS: Final = r"[\x00-\x08\x0e-\x1f\x7f]"
MAX_PARAMETER_CHARS: Final = 1024


def clean_param(values: pd.Series) -> pd.Series:
    """Parameter text as the API takes it: controls dropped, line breaks, tabs and runs of more
    than four spaces collapsed to one space, surrounding spaces trimmed; null stays null."""
    text = values.astype("str")
    text = text.str.replace(_CONTROLS, "", regex=True).str.replace(_SPACING, " ", regex=True)
    return text.str.strip()


def require_params(frame: pd.DataFrame, param_columns: list[str]) -> pd.DataFrame:
    """Clean each customer's template parameters; a customer with one that is missing or empty
    after cleaning (`missing_parameter`) or longer than the API allows (`invalid_parameter`)
    fails before anything is checked or sent."""
    out = frame.copy()
    running = in_running(out)
    missing = pd.Series(False, index=out.index)
    too_long = pd.Series(False, index=out.index)
    for column in param_columns:
        raw = out[column] if column in out.columns else pd.Series(pd.NA, index=out.index)
        cleaned = clean_param(raw)
        out[column] = cleaned
        missing |= cleaned.isna() | (cleaned == "")
        too_long |= cleaned.str.len().fillna(0) > MAX_PARAMETER_CHARS
    for mask, reason in (
        (running & missing, Reason.MISSING_PARAMETER),
        (running & ~missing & too_long, Reason.INVALID_PARAMETER),
    ):
        out.loc[mask, OUTCOME] = Outcome.SEND_FAILED
        out.loc[mask, REASON] = reason
    return out


def apply_ledger(
    frame: pd.DataFrame, ledger: pd.DataFrame, *, resend_unknown: bool
) -> pd.DataFrame:
    """Give numbers that earlier runs settled their outcome, so only the rest are checked and sent.

    `sent` and permanent `send_failed` stay as they are; transient failures are retried; rows in
    doubt (`unknown`, a crash mid-call) are reported, and resent only with `resend_unknown`.
    """
    out = frame.copy()
    if ledger.empty:
        return out
    by_phone = ledger.set_index("phone_e164")
    state = out[PHONE_E164].map(by_phone["state"])
    retryable = out[PHONE_E164].map(by_phone["retryable"]).fillna(False).astype(bool)
    running = in_running(out)
    for ledger_state, outcome in _DONE.items():
        mask = running & (state == ledger_state)
        if ledger_state == LedgerState.SEND_FAILED:
            mask &= ~retryable
        out.loc[mask, OUTCOME] = outcome
        out.loc[mask, REASON] = (
            Reason.ALREADY_SENT
            if ledger_state == LedgerState.SENT
            else out.loc[mask, PHONE_E164].map(by_phone["error_code"]).astype("str")
        )
        out.loc[mask, MESSAGE_ID] = out.loc[mask, PHONE_E164].map(by_phone["message_id"])
    if not resend_unknown:
        doubt = running & state.isin([LedgerState.UNKNOWN, LedgerState.SENDING])
        out.loc[doubt, OUTCOME] = Outcome.UNKNOWN
        out.loc[doubt, REASON] = Reason.SEND_IN_DOUBT
    return out


def mark_planned(frame: pd.DataFrame) -> pd.DataFrame:
    """Dry run: every customer still in the running would be checked and messaged."""
    out = frame.copy()
    out.loc[in_running(out), OUTCOME] = Outcome.PLANNED
    return out


@task(name="settle-ledger", cache_policy=NO_CACHE)
@masked_errors
def settle_ledger(warehouse_url: SecretStr, lease: Lease) -> tuple[int, bool]:
    """Prefect task: turn sends left in doubt by a dead run into `unknown`, settle those whose
    status webhooks named them since (Cloud: the send's callback key); how many were left in
    doubt, and whether the campaign has any ledger row for the partitions to look up."""
    engine = warehouse(warehouse_url.get_secret_value())
    in_doubt = ledger.mark_in_doubt(engine, lease)
    resolve_in_doubt(engine, lease.campaign_id)
    return in_doubt, ledger.has_rows(engine, lease.campaign_id)
