"""Webhook bodies (v1 and Cloud API) into status events and inbound messages, or a shape error.

Required fields are checked strictly (a body that fails is answered 400 and nothing of it is
stored); optional ones are taken when usable and dropped otherwise, so that one odd extra never
makes the provider retry a whole body for a day. Values are cut to the warehouse's column sizes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from connectors.warehouse.events import InboundMessage, StatusEvent

CLOUD_OBJECT: Final = "whatsapp_business_account"
_V1_KEYS: Final = frozenset({"statuses", "messages", "contacts", "errors"})
_MAX_ID = 128
_MAX_STATUS = 32
_MAX_PHONE = 20
_MAX_CODE = 32
_MAX_TITLE = 256
# MySQL's TEXT holds 64 KiB; a status object larger than this is kept without its raw copy.
_MAX_RAW = 60_000
_LATEST_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z


class PayloadError(ValueError):
    """The body is not a webhook this receiver understands (answered 400, nothing stored)."""


@dataclass(frozen=True, slots=True)
class Batch:
    """What one webhook body carries."""

    statuses: tuple[StatusEvent, ...] = ()
    inbound: tuple[InboundMessage, ...] = ()

    def __len__(self) -> int:
        return len(self.statuses) + len(self.inbound)


def load_json(body: bytes) -> Any:
    """The body's JSON value, or PayloadError when it is not UTF-8 JSON."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise PayloadError("body is not JSON") from exc


def parse_v1(payload: Any) -> Batch:
    """A v1 webhook: `{"statuses": [...], "messages": [...], "contacts": [...]}`."""
    if not isinstance(payload, dict) or not _V1_KEYS & payload.keys():
        raise PayloadError("payload: an object with statuses, messages, contacts or errors")
    return _parse_value(payload, "payload")


def parse_cloud(payload: Any) -> Batch:
    """A Cloud API webhook: `entry[].changes[]` whose `field` is `messages` carry the objects."""
    if not isinstance(payload, dict) or payload.get("object") != CLOUD_OBJECT:
        raise PayloadError(f"payload: an object with object={CLOUD_OBJECT!r}")
    statuses: list[StatusEvent] = []
    inbound: list[InboundMessage] = []
    for i, entry in enumerate(_list(payload, "entry", "payload", required=True)):
        if not isinstance(entry, dict):
            raise PayloadError(f"entry[{i}]: must be an object")
        for j, change in enumerate(_list(entry, "changes", f"entry[{i}]")):
            where = f"entry[{i}].changes[{j}]"
            if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
                raise PayloadError(f"{where}: must be an object with a value object")
            if change.get("field") != "messages":
                continue  # template, quality and account updates: not ours
            batch = _parse_value(change["value"], f"{where}.value")
            statuses += batch.statuses
            inbound += batch.inbound
    return Batch(tuple(statuses), tuple(inbound))


def _parse_value(value: Mapping[str, Any], where: str) -> Batch:
    statuses = tuple(
        _status(s, f"{where}.statuses[{i}]") for i, s in enumerate(_list(value, "statuses", where))
    )
    inbound = tuple(
        _message(m, f"{where}.messages[{i}]") for i, m in enumerate(_list(value, "messages", where))
    )
    _list(value, "contacts", where)
    return Batch(statuses, inbound)


def _list(obj: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> list[Any]:
    value = obj.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise PayloadError(f"{where}.{key}: must be a list")
    return value


def _required(obj: Mapping[str, Any], key: str, where: str, limit: int) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise PayloadError(f"{where}.{key}: must be a string of 1 to {limit} characters")
    return value


def _optional(obj: Mapping[str, Any], key: str, limit: int) -> str | None:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value)
    return text if 0 < len(text) <= limit else None


def _timestamp(obj: Mapping[str, Any]) -> datetime | None:
    """Unix seconds as a digit string (as the API sends them) or a number, else None."""
    value = obj.get("timestamp")
    if isinstance(value, str) and value.isdigit() and len(value) <= 12:
        seconds = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    else:
        return None
    if not 0 < seconds <= _LATEST_TIMESTAMP:
        return None
    return datetime.fromtimestamp(seconds, UTC)


def _raw(obj: Mapping[str, Any]) -> str | None:
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return text if len(text) <= _MAX_RAW else None


def _status(obj: Any, where: str) -> StatusEvent:
    if not isinstance(obj, dict):
        raise PayloadError(f"{where}: must be an object")
    code = title = None
    errors = obj.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        code = _optional(errors[0], "code", _MAX_CODE)
        title = errors[0].get("title") or errors[0].get("message")
        title = title[:_MAX_TITLE] if isinstance(title, str) else None
    return StatusEvent(
        message_id=_required(obj, "id", where, _MAX_ID),
        status=_required(obj, "status", where, _MAX_STATUS),
        recipient_id=_optional(obj, "recipient_id", _MAX_PHONE),
        event_at=_timestamp(obj),
        error_code=code,
        error_title=title,
        raw=_raw(obj),
    )


def _message(obj: Any, where: str) -> InboundMessage:
    if not isinstance(obj, dict):
        raise PayloadError(f"{where}: must be an object")
    kind = obj.get("type")
    body = obj.get("text")
    text = body.get("body") if isinstance(body, dict) else None
    return InboundMessage(
        message_id=_required(obj, "id", where, _MAX_ID),
        wa_id=_required(obj, "from", where, _MAX_PHONE - 1),
        event_at=_timestamp(obj),
        type=kind if isinstance(kind, str) else "unknown",
        text=text if isinstance(text, str) else None,
    )
