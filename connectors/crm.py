"""The CRM source: an audience (read-only query or mapped table) streamed in DataFrame chunks."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

import pandas as pd
import sqlparse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Connection, Engine, column, create_engine, select, table, text
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.selectable import Select

REQUIRED_COLUMNS: Final = ("customer_id", "phone_raw")
OPTIONAL_COLUMNS: Final = ("country", "opt_in_at", "opt_out_at", "opt_in", "opt_out")
TIMESTAMP_COLUMNS: Final = ("opt_in_at", "opt_out_at")
# Consent kept as yes/no flags (`do_not_sms`, `is_opt_out`) rather than timestamps.
FLAG_COLUMNS: Final = ("opt_in", "opt_out")
_TRUE = frozenset({"1", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "f", "false", "n", "no", ""})
PARAM_PREFIX: Final = "param_"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class AudienceError(ValueError):
    """The audience definition cannot be run as given; the message says what to change."""


class Audience(BaseModel):
    """Who a campaign considers: a read-only `query`, or a `table` with a column map."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    query: str | None = Field(
        default=None,
        description="A single SELECT whose result columns use the frame's names "
        "(customer_id, phone_raw, country, opt_in_at, opt_out_at, param_*).",
    )
    table: str | None = Field(default=None, description="A CRM table to read instead of a query.")
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="With `table`: frame column name -> the table's column name.",
    )
    where: str | None = Field(default=None, description="With `table`: an optional SQL filter.")

    @model_validator(mode="after")
    def _query_or_table(self) -> Audience:
        if (self.query is None) == (self.table is None):
            raise ValueError("audience: give exactly one of `query` or `table`")
        if self.query is not None:
            check_query_text(self.query)
        else:
            missing = [c for c in REQUIRED_COLUMNS if c not in self.columns]
            if missing:
                raise ValueError(
                    f"audience.columns maps no {', '.join(missing)}; map your table's columns, "
                    'e.g. {"customer_id": "id", "phone_raw": "mobile"}'
                )
            for name in self.columns:
                _check_frame_name(name)
        return self


def _check_frame_name(name: str) -> None:
    allowed = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
    if name not in allowed and not (name.startswith(PARAM_PREFIX) and _IDENTIFIER.match(name)):
        raise AudienceError(
            f'audience column "{name}" is not a frame column; use one of {", ".join(allowed)} '
            "or param_<name> for a template parameter"
        )


def check_query_text(query: str) -> None:
    """Refuse anything but one SELECT (or WITH … SELECT) statement; the read-only transaction
    that runs it is the second guard."""
    statements = [s for s in sqlparse.parse(query) if str(s).strip().strip(";").strip()]
    if len(statements) > 1:
        raise AudienceError(
            f"audience.query holds {len(statements)} statements; give a single SELECT"
        )
    kind = statements[0].get_type() if statements else "empty"  # type: ignore[no-untyped-call]
    if kind != "SELECT":
        raise AudienceError(f"audience.query must be a single SELECT statement, not {kind}")


def audience_statement(audience: Audience) -> Select[tuple[object, ...]] | TextClause:
    """The SQL that selects the audience with the frame's column names."""
    if audience.query is not None:
        return text(audience.query.strip().rstrip(";"))
    assert audience.table is not None
    source = table(audience.table, *(column(c) for c in audience.columns.values()))
    stmt = select(*(source.c[col].label(name) for name, col in audience.columns.items()))
    if audience.where:
        stmt = stmt.where(text(audience.where))
    return stmt


def check_columns(names: list[str]) -> None:
    """Refuse a result with a missing required column or a column the frame does not know."""
    for required in REQUIRED_COLUMNS:
        if required not in names:
            raise AudienceError(
                f'audience returns no column "{required}"; map your column AS {required}'
            )
    for name in names:
        _check_frame_name(name)


def crm_engine(url: str) -> Engine:
    """An engine for the CRM; reads only."""
    return create_engine(url, pool_pre_ping=True)


def _flag_text(value: object) -> str:
    if isinstance(value, bool | int | float) or type(value).__module__ == "numpy":
        number = float(value)  # type: ignore[arg-type]
        return "1" if number == 1 else "0" if number == 0 else str(value)
    return str(value)


def _flag(values: pd.Series, name: str) -> pd.Series:
    """Yes/no consent flags from booleans, 0/1 or y/n/true/false text; null counts as no."""
    text = values.map(_flag_text, na_action="ignore").astype("str").str.strip().str.lower()
    text = text.fillna("")
    unknown = ~text.isin(_TRUE | _FALSE)
    if unknown.any():
        raise AudienceError(
            f'audience column "{name}" holds {text[unknown].iloc[0]!r}; a consent flag must be '
            "true/false, 1/0 or yes/no"
        )
    return text.isin(_TRUE)


def _to_frame(rows: list[tuple[object, ...]], names: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows, columns=names)
    frame["customer_id"] = frame["customer_id"].map(str, na_action="ignore").astype("str")
    for name in names:
        if name in TIMESTAMP_COLUMNS:
            frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
        elif name in FLAG_COLUMNS:
            frame[name] = _flag(frame[name], name)
        elif name != "customer_id":
            frame[name] = frame[name].astype("str")
    for name in OPTIONAL_COLUMNS:
        if name in frame.columns:
            continue
        if name in TIMESTAMP_COLUMNS:
            frame[name] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us, UTC]")
        elif name in FLAG_COLUMNS:
            frame[name] = pd.Series(False, index=frame.index, dtype=bool)
        else:
            frame[name] = pd.Series(pd.NA, index=frame.index, dtype="str")
    return frame


def read_only(conn: Connection) -> Connection:
    """Make the connection's transaction read-only, so an audience can never write to the CRM."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return conn.execution_options(postgresql_readonly=True)
    if dialect in ("mysql", "mariadb"):
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
    elif dialect == "sqlite":
        conn.exec_driver_sql("PRAGMA query_only = ON")
    return conn


def read_audience(engine: Engine, audience: Audience, chunk_size: int) -> Iterator[pd.DataFrame]:
    """Stream the audience as frames of at most `chunk_size` rows with a server-side cursor."""
    stmt = audience_statement(audience)
    with engine.connect() as raw:
        conn = read_only(raw)
        result = conn.execution_options(stream_results=True, yield_per=chunk_size).execute(stmt)
        names = list(result.keys())
        check_columns(names)
        for part in result.partitions(chunk_size):
            yield _to_frame([tuple(row) for row in part], names)
