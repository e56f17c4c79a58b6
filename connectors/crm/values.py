"""Result values into frame columns, each by its own Python type.

Values are read one by one as the driver returned them, never by the dtype pandas would infer for
the chunk (an integer column with a NULL would turn float):
  - `customer_id`: whole numbers (int, integral Decimal or float) as their digits, bytes as hex,
    text without surrounding whitespace (inner text as given); NULL, empty text, NaN and text
    that cannot be stored (lone surrogates) become null.
  - `phone_raw`: text as stored; bytes decoded as UTF-8; whole numbers as their digits: int,
    integral Decimal, float only when it is an exact integer no larger than 2**53 (2**24 from a
    single-precision column, whose digits the database has already rounded). Anything else
    (1.5, NaN, a negative number, a boolean, a date) becomes text `tasks.phones` rejects as
    `not_a_number`: digits are never guessed from a float.
  - `opt_in_at`, `opt_out_at`: datetimes (naive read as UTC), dates, ISO 8601 text. Anything else
    is unreadable: NaT in the column and True in `UNREADABLE_CONSENT`. Epoch numbers are
    unreadable on purpose (seconds or milliseconds would be a guess); so are MariaDB zero dates,
    which PyMySQL returns as text, and PostgreSQL `infinity` and years beyond 9999, which
    psycopg returns as text here instead of raising for the whole chunk.
  - other columns: text; whole numbers as digits, bytes decoded (undecodable bytes replaced).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from connectors.crm.columns import (
    FLAG_COLUMNS,
    OPTIONAL_COLUMNS,
    TIMESTAMP_COLUMNS,
    UNREADABLE_CONSENT,
    AudienceError,
)

_DOUBLE_EXACT: Final = 2**53  # above it, a double no longer holds every integer
_SINGLE_EXACT: Final = 2**24
_MAX_DIGITS: Final = 40  # whole numbers longer than this are no id or phone number
# Type codes of single-precision float columns in the drivers' cursor descriptions.
_FLOAT4_TYPE_CODES: Final = {"postgresql": 700, "mysql": 4, "mariadb": 4}
_ISO_MAX: Final = 64  # no ISO 8601 moment is longer
_TRUE = frozenset({"1", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "f", "false", "n", "no", ""})


def _whole_number(value: object, float_limit: int = _DOUBLE_EXACT) -> str | None:
    """The exact digits (with sign) of a value that is a whole number, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        number = int(value)
    elif isinstance(value, Decimal):
        if not value.is_finite() or value.adjusted() >= _MAX_DIGITS:
            return None
        if value != value.to_integral_value():
            return None
        number = int(value)
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer() or abs(value) > float_limit:
            return None
        number = int(value)
    else:
        return None
    return str(number) if abs(number) < 10**_MAX_DIGITS else None


def _missing(value: object) -> bool:
    """NULL, or a NaN that a float or decimal column can hold."""
    if isinstance(value, Decimal):
        return value.is_nan()
    return value is None or (isinstance(value, float) and math.isnan(value))


def _storable(value: str) -> bool:
    """Text that is valid Unicode for UTF-8 storage (no lone surrogates)."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _not_a_phone(value: object) -> str:
    """Text that stands for a value that holds no phone number; the cleaner rejects it."""
    return f"<{type(value).__name__}: not a phone number>"


def id_text(value: object) -> str | None:
    """A customer id as text that does not depend on the other rows; None where there is none."""
    if type(value) is int:  # the common case first
        return str(value)
    if _missing(value):
        return None
    if isinstance(value, str):
        text_ = value.strip()
    elif isinstance(value, bytes | bytearray | memoryview):
        text_ = bytes(value).hex()
    elif isinstance(value, bool):
        text_ = str(int(value))
    elif (isinstance(value, float) and math.isinf(value)) or (
        isinstance(value, Decimal) and value.is_infinite()
    ):
        return None
    else:
        text_ = _whole_number(value) or str(value).strip()
    return text_ if text_ and _storable(text_) else None


def phone_text(value: object, *, float_limit: int = _DOUBLE_EXACT) -> str | None:
    """A phone value as text: text as stored, whole non-negative numbers as their digits, None
    for NULL; anything else as text the cleaner rejects."""
    if value is None or (type(value) is str and value.isascii()):  # the common cases first
        return value
    if isinstance(value, str):
        return value if _storable(value) else _not_a_phone(value)
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return _not_a_phone(value)
    digits = _whole_number(value, float_limit)
    if digits is None or digits.startswith("-"):
        return _not_a_phone(value)
    return digits


def plain_text(value: object) -> str | None:
    """Any other value (country, template parameters) as text; None for NULL and NaN."""
    if value is None or (type(value) is str and value.isascii()):  # the common cases first
        return value
    if _missing(value):
        return None
    if isinstance(value, str):
        return value if _storable(value) else value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return _whole_number(value) or str(value)


def utc_moment(value: object) -> datetime | None:
    """A consent timestamp as naive UTC, None for NULL; ValueError where it is not a moment."""
    if type(value) is datetime:  # the common cases first
        offset = value.utcoffset()
        if offset is None:
            return value
        if not offset:
            return value.replace(tzinfo=None)
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, str):
        stripped = value.strip()
        if len(stripped) > _ISO_MAX:
            raise ValueError("too long for an ISO 8601 moment")
        value = datetime.fromisoformat(stripped)
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            return value.replace(tzinfo=None)
        try:
            return value.astimezone(UTC).replace(tzinfo=None)
        except OverflowError as error:
            raise ValueError("outside the years 1 to 9999 in UTC") from error
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    raise ValueError(f"a {type(value).__name__} is not a moment")


def _moments(values: Sequence[object]) -> tuple[pd.Series, npt.NDArray[np.bool_]]:
    """A UTC timestamp column, and where a value could not be read as a moment."""
    moments: list[datetime | None] = []
    unreadable = np.zeros(len(values), dtype=bool)
    for row, value in enumerate(values):
        try:
            moments.append(utc_moment(value))
        except ValueError:
            moments.append(None)
            unreadable[row] = True
    return pd.Series(moments, dtype="datetime64[us]").dt.tz_localize("UTC"), unreadable


def _flag_text(value: object) -> str:
    if isinstance(value, bool | int | float) or type(value).__module__ == "numpy":
        number = float(value)  # type: ignore[arg-type]
        return "1" if number == 1 else "0" if number == 0 else str(value)
    return str(value)


def _flag(values: pd.Series, name: str) -> pd.Series:
    """Yes/no consent flags from booleans, 0/1 or y/n/true/false text; null counts as no."""
    text_ = values.map(_flag_text, na_action="ignore").astype("str").str.strip().str.lower()
    text_ = text_.fillna("")
    unknown = ~text_.isin(_TRUE | _FALSE)
    if unknown.any():
        raise AudienceError(
            f'audience column "{name}" holds {text_[unknown].iloc[0]!r}; a consent flag must be '
            "true/false, 1/0 or yes/no"
        )
    return text_.isin(_TRUE)


def _column(
    name: str, values: Sequence[object], single_precision: Collection[str]
) -> tuple[pd.Series, npt.NDArray[np.bool_] | None]:
    """One result column read value by value; for timestamps also where they were unreadable."""
    if name == "customer_id":
        return pd.Series([id_text(v) for v in values], dtype="str"), None
    if name == "phone_raw":
        limit = _SINGLE_EXACT if name in single_precision else _DOUBLE_EXACT
        return pd.Series([phone_text(v, float_limit=limit) for v in values], dtype="str"), None
    if name in TIMESTAMP_COLUMNS:
        return _moments(values)
    if name in FLAG_COLUMNS:
        return _flag(pd.Series(values, dtype=object), name), None
    return pd.Series([plain_text(v) for v in values], dtype="str"), None


def to_frame(
    rows: Sequence[Sequence[object]],
    names: list[str],
    *,
    single_precision: Collection[str] = (),
) -> pd.DataFrame:
    """One chunk of result rows as a frame with the frame's columns (see the module docstring);
    `single_precision` names columns that came from single-precision floats."""
    columns: list[Sequence[object]] = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    data: dict[str, pd.Series] = {}
    unreadable = np.zeros(len(rows), dtype=bool)
    for name, values in zip(names, columns, strict=True):
        data[name], bad = _column(name, values, single_precision)
        if bad is not None:
            unreadable |= bad
    for name in OPTIONAL_COLUMNS:
        if name not in data:
            data[name] = _column(name, [None] * len(rows), ())[0]
    frame = pd.DataFrame(data, index=pd.RangeIndex(len(rows)))
    frame[UNREADABLE_CONSENT] = unreadable
    return frame
