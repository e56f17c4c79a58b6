"""Statuses of messages the ledger never learnt, joined back to their rows by the callback key.

A process that dies between the API's answer and the ledger write leaves its row `sending`
(then `unknown`) without a message id, though the message went out. Its Cloud statuses carry
the row's key (`biz_opaque_callback_data`, see `connectors.warehouse.callback`): the row takes
the message id, becomes `sent` (with `sent_at` of its earliest status) and its statuses then
apply as for any message, so it is never resent and its customer gets the real outcome.

A row takes a message only while it has none and is in doubt: `sending`, `unknown`, or
`send_failed` when retryable (a status proves the message went out, so a retry would send it
twice). A status naming a row that has another message id, or is settled otherwise, is ignored
and counted. Of several messages naming one row, the earliest wins; the others are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    bindparam,
    func,
    literal,
    or_,
    select,
    tuple_,
    update,
)

from connectors.vocabulary import LedgerState
from connectors.warehouse.callback import callback_key, parse_callback_key
from connectors.warehouse.events.loading import chunks
from connectors.warehouse.schema import UTCDateTime, deliveries, status_events

_Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Attached:
    """What joining statuses back to their rows by callback did."""

    message_ids: tuple[str, ...] = ()
    """Messages given to an in-doubt row (apply their statuses next)."""
    ignored: tuple[str, ...] = ()
    """Messages whose callback names a row that has another message id or is settled."""


def attach_messages(conn: Connection, message_ids: Sequence[str]) -> Attached:
    """Give these messages (unknown to the ledger) to the in-doubt rows their callbacks name."""
    e = status_events.c
    found: list[Any] = []
    for chunk in chunks(sorted(set(message_ids))):
        found += conn.execute(
            _earliest().where(e.message_id.in_(chunk), e.callback.is_not(None))
        ).all()
    return _attach(conn, found)


def attach_in_campaign(conn: Connection, campaign_id: str) -> Attached:
    """Give the campaign's in-doubt rows the messages whose stored statuses name them."""
    d, e = deliveries.c, status_events.c
    phones = conn.execute(
        select(d.phone_e164).where(
            d.campaign_id == campaign_id, d.message_id.is_(None), _in_doubt()
        )
    ).scalars()
    keys: list[str] = []
    for phone in phones:
        try:
            keys.append(callback_key(campaign_id, phone))
        except ValueError:  # not a number a send could have carried
            continue
    found: list[Any] = []
    for chunk in chunks(keys):
        found += conn.execute(_earliest().where(e.callback.in_(chunk))).all()
    return _attach(conn, found)


def _earliest() -> Any:
    """(message_id, callback, time of its earliest status) per stored message and callback."""
    e = status_events.c
    at = func.min(func.coalesce(e.event_at, e.received_at), type_=UTCDateTime())
    return select(e.message_id, e.callback, at.label("at")).group_by(e.message_id, e.callback)


def _in_doubt() -> ColumnElement[bool]:
    d = deliveries.c
    # Literals, not an expanding IN: the same condition serves executemany updates.
    return or_(
        d.state == literal(LedgerState.SENDING),
        d.state == literal(LedgerState.UNKNOWN),
        and_(d.state == literal(LedgerState.SEND_FAILED), d.retryable),
    )


def _attach(conn: Connection, found: Iterable[Any]) -> Attached:
    """Give each row named by a callback in `found` its earliest message, if it is in doubt."""
    named: dict[_Key, list[tuple[datetime, str]]] = {}
    for message_id, callback, at in found:
        key = parse_callback_key(callback)
        if key is not None:
            named.setdefault(key, []).append((at, message_id))
    if not named:
        return Attached()
    rows = _rows(conn, sorted(named))
    given: list[dict[str, Any]] = []
    ignored: list[str] = []
    for key, candidates in sorted(named.items()):
        row = rows.get(key)
        if row is None:
            continue  # the ledger has not written the row yet: try again later
        candidates.sort()
        takes = row.message_id is None and _doubtful(row.state, row.retryable)
        if takes:
            at, message_id = candidates[0]
            given.append({"b_c": key[0], "b_p": key[1], "b_m": message_id, "b_at": at})
        ignored += [m for _, m in candidates[1 if takes else 0 :] if m != row.message_id]
    if given:
        d = deliveries.c
        stmt = (
            update(deliveries)
            .where(d.campaign_id == bindparam("b_c"), d.phone_e164 == bindparam("b_p"))
            .where(d.message_id.is_(None), _in_doubt())
            .values(
                message_id=bindparam("b_m"),
                state=LedgerState.SENT,
                sent_at=func.coalesce(d.sent_at, bindparam("b_at", type_=UTCDateTime())),
                retryable=False,
                error_code=None,
                error_title=None,
            )
        )
        conn.execute(stmt, given)
    return Attached(tuple(g["b_m"] for g in given), tuple(ignored))


def _doubtful(state: str, retryable: bool | None) -> bool:
    if state in (LedgerState.SENDING, LedgerState.UNKNOWN):
        return True
    return state == LedgerState.SEND_FAILED and bool(retryable)


def _rows(conn: Connection, keys: Sequence[_Key]) -> dict[_Key, Any]:
    d = deliveries.c
    rows: dict[_Key, Any] = {}
    for chunk in chunks(keys):
        stmt = select(d.campaign_id, d.phone_e164, d.message_id, d.state, d.retryable).where(
            tuple_(d.campaign_id, d.phone_e164).in_(list(chunk))
        )
        rows.update({(r.campaign_id, r.phone_e164): r for r in conn.execute(stmt)})
    return rows
