"""The messages a chunk owes, built lazily from its rows, and the outcomes written back to it."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from connectors.vocabulary import (
    CUSTOMER_ID,
    MESSAGE_ID,
    OUTCOME,
    PHONE_E164,
    REASON,
    WA_ID,
    LedgerState,
    MessageStatus,
    Outcome,
    Reason,
)
from connectors.warehouse import ledger
from connectors.whatsapp import Template
from connectors.whatsapp.components import NO_EXTRAS, Extras
from tasks.frame import in_running
from tasks.phones.regions import regions_of
from tasks.template import Fill


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to send: where to, with which parameters, and its ledger history;
    `template` is the template in the customer's language (None: the campaign's)."""

    phone_e164: str
    customer_id: str
    wa_id: str
    params: tuple[str, ...]
    extras: Extras = NO_EXTRAS
    template: Template | None = None
    attempts: int = 0
    first_attempt_at: datetime | None = None
    ledger_state: str | None = None  # the number's ledger row when planned (None: no row)
    market: str | None = None  # the number's ISO region, for the rate card (None: it has none)


@dataclass(frozen=True, slots=True)
class Past:
    """Each number's earlier attempts in this campaign, read from the ledger once per run."""

    attempts: dict[str, int]
    first_attempt_at: dict[str, datetime]
    states: dict[str, str]

    @classmethod
    def of(cls, history: pd.DataFrame) -> Past:
        """From `ledger.load`'s rows."""
        if history.empty:
            return cls({}, {}, {})
        phones = history["phone_e164"]
        return cls(
            dict(zip(phones, history["attempts"].astype(int), strict=True)),
            {
                p: t.to_pydatetime() if isinstance(t, pd.Timestamp) else t
                for p, t in zip(phones, history["first_attempt_at"], strict=True)
                if not pd.isna(t)
            },
            dict(zip(phones, history["state"], strict=True)),
        )


def outgoing(frame: pd.DataFrame, fill: Fill, past: Past) -> Iterator[Outgoing]:
    """The messages a chunk still owes: verified rows still in the running, made one by one as
    the sender asks for them (built all at once, they would hold up the first send); each
    number's market is read once per chunk, vectorised."""
    todo = frame.loc[in_running(frame) & frame[WA_ID].notna()]
    columns = [todo[c].astype("str").str.strip() for c in fill.body_columns]
    params: Iterable[tuple[str, ...]] = (
        zip(*columns, strict=True) if columns else itertools.repeat((), len(todo))
    )
    markets = regions_of(todo[PHONE_E164])
    rest = zip(fill.extras_of(todo), fill.templates_of(todo), strict=True)
    for phone, customer, wa_id, values, market, (extras, template) in zip(
        todo[PHONE_E164], todo[CUSTOMER_ID], todo[WA_ID], params, markets, rest, strict=True
    ):
        yield Outgoing(
            phone_e164=phone,
            customer_id=customer,
            wa_id=wa_id,
            params=tuple(values),
            extras=extras,
            template=template,
            attempts=past.attempts.get(phone, 0),
            first_attempt_at=past.first_attempt_at.get(phone),
            ledger_state=past.states.get(phone),
            market=market if isinstance(market, str) else None,
        )


def apply_results(frame: pd.DataFrame, results: dict[str, ledger.Result]) -> pd.DataFrame:
    """Write each send's outcome back to its customer (vectorised: chunks hold 50,000 rows). A
    send the API holds or pauses (Cloud's `message_status`) is `sent`, with that status as its
    reason: it may still be released or dropped, and its webhooks will say."""
    out = frame.copy()
    if not results:
        return out
    answers = pd.DataFrame(
        [(r.phone_e164, r.state, _detail(r), r.message_id) for r in results.values()],
        columns=["phone", "state", "error_code", "message_id"],
    ).set_index("phone")
    mask = in_running(out) & out[PHONE_E164].isin(answers.index)
    phones = out.loc[mask, PHONE_E164]
    state = phones.map(answers["state"])
    outcome = {LedgerState.SENT: Outcome.SENT, LedgerState.SEND_FAILED: Outcome.SEND_FAILED}
    out.loc[mask, OUTCOME] = state.map(outcome).fillna(Outcome.UNKNOWN)
    out.loc[mask, REASON] = phones.map(answers["error_code"]).where(
        state != LedgerState.UNKNOWN, Reason.SEND_IN_DOUBT
    )
    out.loc[mask, MESSAGE_ID] = phones.map(answers["message_id"])
    return out


def _detail(result: ledger.Result) -> str | None:
    """A result's reason: its error code, or a sent message's status when it is not plain."""
    accepted = result.message_status in (None, MessageStatus.ACCEPTED)
    return result.error_code if accepted else result.message_status


def pending_sends(frame: pd.DataFrame) -> int:
    """How many messages a verified chunk still owes."""
    return int((in_running(frame) & frame[WA_ID].notna()).sum())
