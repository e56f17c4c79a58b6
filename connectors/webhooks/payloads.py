"""Webhook bodies (v1 and Cloud API) into status events and inbound messages, or a shape error.

Required fields are checked strictly (a body that fails is answered 400 and nothing of it is
stored); optional ones are taken when usable and dropped otherwise, so that one odd extra never
makes the provider retry a whole body for a day. Values are cut to the warehouse's column sizes.

Strings no database here can store (a NUL, which PostgreSQL refuses, or a lone surrogate, which
JSON allows as `\\ud800` but UTF-8 cannot encode): in a required field (a status's `id` or
`status`, a message's `id` or `from`) the item is dropped and named in `Batch.dropped` (the
receiver logs and counts it); in an optional one the field becomes None; in the raw copy they
become U+FFFD, so the copy stays JSON that PostgreSQL's `jsonb` accepts too.

A Cloud API change names the business number it is about (`value.metadata.phone_number_id`):
each status and message it carries keeps it (None on v1, or when it is not a digit string). Each
status and `user_preferences` entry also keeps its entry's business (the WABA id, `entry[].id`),
which marketing opt-outs are per.

Cloud extras, each optional and dropped when it does not fit: a status's `recipient_user_id`
(the recipient's business-scoped user id, BSUID, up to 128 characters), its
`biz_opaque_callback_data` (up to 512) and its `pricing` (`pricing_model` up to 16 characters,
`category` and `type` up to 32, `billable` a JSON boolean). An inbound message's sender is its
`from` (digits) and, when present, its BSUID: the message's `from_user_id`, else the `user_id` of
the `contacts[]` entry whose `wa_id` is the `from`, else (no `from`: a user with a username whose
number Meta withholds) the `user_id` of the only `contacts[]` entry. A message needs `from` or a
BSUID. `user_preferences` changes ("Stop promotions" / resume) are parsed into
`Batch.preferences`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Final, TypeVar

import orjson

from connectors.errors import RecipientError
from connectors.warehouse.events import StatusEvent

CLOUD_OBJECT: Final = "whatsapp_business_account"
_V1_KEYS: Final = frozenset({"statuses", "messages", "contacts", "errors"})
_MAX_ID = 128
_MAX_STATUS = 32
_MAX_PHONE = 20
_MAX_CODE = 32
_MAX_TITLE = 256
_MAX_PHONE_NUMBER_ID = 64
_MAX_BUSINESS_ID = 64
_MAX_USER_ID = 128
_MAX_CALLBACK = 512
_MAX_PRICING_MODEL = 16
# MySQL's TEXT holds 64 KiB; a status object larger than this (UTF-8) is kept without its raw copy.
_MAX_RAW_BYTES = 60_000
_T = TypeVar("_T")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_LATEST_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z


class PayloadError(RecipientError, ValueError):
    """The body is not a webhook this receiver understands (answered 400, nothing stored)."""


class _Unstorable(Exception):
    """A required field holds a string no database can store: the item is dropped."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One entry of a webhook's `messages`: a customer wrote to the business number."""

    message_id: str
    wa_id: str | None
    """The sender's number (`from`); None when only a BSUID names the sender."""
    event_at: datetime | None = None
    type: str = "text"
    text: str | None = None
    phone_number_id: str | None = None
    """The Cloud API business number written to (`metadata.phone_number_id`); None on v1."""
    user_id: str | None = None
    """The sender's business-scoped user id (BSUID), when the webhook names one."""


@dataclass(frozen=True, slots=True)
class UserPreference:
    """One entry of a Cloud `user_preferences` change: the user stopped or resumed marketing."""

    wa_id: str | None
    user_id: str | None
    category: str
    value: str
    event_at: datetime | None = None
    phone_number_id: str | None = None
    business_id: str | None = None
    """The WABA id of the webhook's entry (`entry[].id`) the choice holds for."""


@dataclass(frozen=True, slots=True)
class Batch:
    """What one webhook body carries."""

    statuses: tuple[StatusEvent, ...] = ()
    inbound: tuple[InboundMessage, ...] = ()
    dropped: tuple[str, ...] = ()
    """The field (`statuses.id`, `messages.from`, ...) of each item dropped as unstorable."""
    preferences: tuple[UserPreference, ...] = ()
    """Cloud `user_preferences` entries."""

    def __len__(self) -> int:
        return len(self.statuses) + len(self.inbound) + len(self.preferences)


def load_json(body: bytes) -> Any:
    """The body's JSON value, or PayloadError when it is not UTF-8 JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass  # json reads what orjson refuses: NaN, integers past 64 bits, lone surrogates
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
    dropped: list[str] = []
    preferences: list[UserPreference] = []
    for i, entry in enumerate(_list(payload, "entry", "payload", required=True)):
        if not isinstance(entry, dict):
            raise PayloadError(f"entry[{i}]: must be an object")
        business_id = _digits(entry.get("id"), _MAX_BUSINESS_ID)
        for j, change in enumerate(_list(entry, "changes", f"entry[{i}]")):
            where = f"entry[{i}].changes[{j}]"
            if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
                raise PayloadError(f"{where}: must be an object with a value object")
            value = change["value"]
            if change.get("field") == "user_preferences":
                preferences += _preferences(value, _phone_number_id(value), business_id)
            if change.get("field") != "messages":
                continue  # template, quality and account updates: not ours
            batch = _parse_value(value, f"{where}.value", _phone_number_id(value), business_id)
            statuses += batch.statuses
            inbound += batch.inbound
            dropped += batch.dropped
    return Batch(tuple(statuses), tuple(inbound), tuple(dropped), tuple(preferences))


def storable(text: str) -> bool:
    """False when a database cannot store `text`: it holds a NUL or a lone surrogate."""
    return _UNSTORABLE.search(text) is None


def _parse_value(
    value: Mapping[str, Any],
    where: str,
    phone_number_id: str | None = None,
    business_id: str | None = None,
) -> Batch:
    dropped: list[str] = []
    status = partial(_status, business_id=business_id)
    statuses = _items(value, "statuses", where, status, phone_number_id, dropped)
    contacts = _Contacts.of(_list(value, "contacts", where))
    inbound = _items(value, "messages", where, contacts.message, phone_number_id, dropped)
    return Batch(statuses, inbound, tuple(dropped))


def _items(
    value: Mapping[str, Any],
    key: str,
    where: str,
    parse: Callable[[Any, str, str | None], _T],
    phone_number_id: str | None,
    dropped: list[str],
) -> tuple[_T, ...]:
    """The parsed items of `value[key]`; unstorable ones are left out and named in `dropped`."""
    items: list[_T] = []
    for i, obj in enumerate(_list(value, key, where)):
        try:
            items.append(parse(obj, f"{where}.{key}[{i}]", phone_number_id))
        except _Unstorable as exc:
            dropped.append(f"{key}.{exc.field}")
    return tuple(items)


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


def _keep(item: _T, *required: tuple[str, str]) -> _T:
    """`item`, or _Unstorable naming the first of its required (key, value) no database takes."""
    for key, value in required:
        if not storable(value):
            raise _Unstorable(key)
    return item


def _optional(obj: Mapping[str, Any], key: str, limit: int) -> str | None:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value)
    return text if 0 < len(text) <= limit and storable(text) else None


def _string(value: Any, limit: int) -> str | None:
    """A storable string of 1 to `limit` characters, else None (never cut: ids and keys)."""
    if not isinstance(value, str) or not 0 < len(value) <= limit or not storable(value):
        return None
    return value


def _optional_text(value: Any, limit: int | None = None) -> str | None:
    """A string value cut to `limit` characters, or None when not a storable string."""
    if not isinstance(value, str) or not storable(value):
        return None
    return value if limit is None else value[:limit]


def _phone_number_id(value: Mapping[str, Any]) -> str | None:
    """A Cloud change's `metadata.phone_number_id` if a digit string that fits, else None."""
    metadata = value.get("metadata")
    found = metadata.get("phone_number_id") if isinstance(metadata, dict) else None
    return _digits(found, _MAX_PHONE_NUMBER_ID)


def _digits(value: Any, limit: int) -> str | None:
    """A Graph API id: a string of 1 to `limit` ASCII digits, else None."""
    if not isinstance(value, str) or not (value.isascii() and value.isdigit()):
        return None
    return value if len(value) <= limit else None


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
    try:
        data = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # a lone surrogate or an integer past 64 bits
        data = b"\\u0000"
    if b"\\u0000" in data:  # NULs come out as this escape, which jsonb refuses too
        data = _dumps(_replace_unstorable(obj)).encode("utf-8")
    return data.decode("utf-8") if len(data) <= _MAX_RAW_BYTES else None


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _replace_unstorable(obj: Any) -> Any:
    """`obj` with every NUL and lone surrogate in its keys and strings replaced by U+FFFD."""
    if isinstance(obj, str):
        return _UNSTORABLE.sub("\ufffd", obj)
    if isinstance(obj, dict):
        return {_UNSTORABLE.sub("\ufffd", k): _replace_unstorable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_replace_unstorable(v) for v in obj]
    return obj


def _status(
    obj: Any, where: str, phone_number_id: str | None, *, business_id: str | None = None
) -> StatusEvent:
    if not isinstance(obj, dict):
        raise PayloadError(f"{where}: must be an object")
    code = title = None
    errors = obj.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        code = _optional(errors[0], "code", _MAX_CODE)
        title = _optional_text(errors[0].get("title") or errors[0].get("message"), _MAX_TITLE)
    event = StatusEvent(
        message_id=_required(obj, "id", where, _MAX_ID),
        status=_required(obj, "status", where, _MAX_STATUS),
        recipient_id=_optional(obj, "recipient_id", _MAX_PHONE),
        event_at=_timestamp(obj),
        error_code=code,
        error_title=title,
        raw=_raw(obj),
        phone_number_id=phone_number_id,
        recipient_user_id=_string(obj.get("recipient_user_id"), _MAX_USER_ID),
        callback=_string(obj.get("biz_opaque_callback_data"), _MAX_CALLBACK),
        **_pricing(obj.get("pricing")),
        business_id=business_id,
    )
    return _keep(event, ("id", event.message_id), ("status", event.status))


def _pricing(pricing: Any) -> dict[str, Any]:
    """A status's `pricing` as `StatusEvent` fields; what does not fit is None."""
    if not isinstance(pricing, dict):
        return {}
    billable = pricing.get("billable")
    return {
        "pricing_model": _string(pricing.get("pricing_model"), _MAX_PRICING_MODEL),
        "pricing_category": _string(pricing.get("category"), _MAX_STATUS),
        "pricing_type": _string(pricing.get("type"), _MAX_STATUS),
        "billable": billable if isinstance(billable, bool) else None,
    }


@dataclass(frozen=True, slots=True)
class _Contacts:
    """A change's `contacts[]`: the BSUID of each sender number, and of the only contact."""

    by_wa_id: Mapping[str, str]
    only: str | None

    @classmethod
    def of(cls, contacts: list[Any]) -> _Contacts:
        found = [c for c in contacts if isinstance(c, dict)]
        by_wa_id: dict[str, str] = {}
        for contact in found:
            wa_id, user_id = contact.get("wa_id"), _string(contact.get("user_id"), _MAX_USER_ID)
            if isinstance(wa_id, str) and user_id is not None:
                by_wa_id.setdefault(wa_id, user_id)
        only = _string(found[0].get("user_id"), _MAX_USER_ID) if len(found) == 1 else None
        return cls(by_wa_id, only)

    def message(self, obj: Any, where: str, phone_number_id: str | None) -> InboundMessage:
        """One entry of `messages`: its sender is `from`, a BSUID, or both."""
        if not isinstance(obj, dict):
            raise PayloadError(f"{where}: must be an object")
        wa_id = None
        if obj.get("from") is not None:
            wa_id = _required(obj, "from", where, _MAX_PHONE - 1)
        user_id = _string(obj.get("from_user_id"), _MAX_USER_ID)
        if user_id is None:
            user_id = self.only if wa_id is None else self.by_wa_id.get(wa_id)
        if wa_id is None and user_id is None:
            given = obj.get("from_user_id")
            if isinstance(given, str) and not storable(given):
                raise _Unstorable("from_user_id")
            raise PayloadError(f"{where}: needs from or from_user_id (1 to {_MAX_USER_ID} chars)")
        body = obj.get("text")
        message = InboundMessage(
            message_id=_required(obj, "id", where, _MAX_ID),
            wa_id=wa_id,
            event_at=_timestamp(obj),
            type=_optional_text(obj.get("type")) or "unknown",
            text=_optional_text(body.get("body")) if isinstance(body, dict) else None,
            phone_number_id=phone_number_id,
            user_id=user_id,
        )
        return _keep(message, ("id", message.message_id), ("from", wa_id or ""))


def _preferences(
    value: Mapping[str, Any], phone_number_id: str | None, business_id: str | None
) -> list[UserPreference]:
    """A `user_preferences` change's usable entries (the others are skipped, never refused)."""
    found = value.get("user_preferences")
    preferences: list[UserPreference] = []
    for obj in found if isinstance(found, list) else []:
        if not isinstance(obj, dict):
            continue
        wa_id = _string(obj.get("wa_id"), _MAX_PHONE - 1)
        user_id = _string(obj.get("user_id"), _MAX_USER_ID)
        category = _string(obj.get("category"), _MAX_STATUS)
        choice = _string(obj.get("value"), _MAX_STATUS)
        if (wa_id or user_id) and category and choice:
            at = _timestamp(obj)
            preferences.append(
                UserPreference(wa_id, user_id, category, choice, at, phone_number_id, business_id)
            )
    return preferences
