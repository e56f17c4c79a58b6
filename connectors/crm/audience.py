"""Who a campaign considers: a read-only query, or a mapped table, and the SQL that selects it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import column, select, table, text
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.selectable import Select

from connectors.crm.columns import REQUIRED_COLUMNS, check_frame_name
from connectors.crm.guard import check_query_text, check_where_text


class Audience(BaseModel):
    """Who a campaign considers: a read-only `query`, or a `table` with a column map."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    query: str | None = Field(
        default=None,
        description="A single SELECT whose result columns use the frame's names "
        "(`customer_id`, `phone_raw`, `country`, `opt_in_at`, `opt_out_at`, `param_*`); "
        "the box takes several lines (drag its corner to enlarge it).",
    )
    table: str | None = Field(default=None, description="A CRM table to read instead of a query.")
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="With `table`: frame column name -> the table's column name.",
    )
    where: str | None = Field(
        default=None, description="With `table`: an optional filter, one SQL expression."
    )

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
                check_frame_name(name)
            if self.where is not None:
                check_where_text(self.where)
        return self


def audience_statement(audience: Audience) -> Select[tuple[object, ...]] | TextClause:
    """The SQL that selects the audience with the frame's column names (checked again here, for
    an audience built without validation)."""
    if audience.query is not None:
        check_query_text(audience.query)
        return text(audience.query.strip().rstrip(";"))
    assert audience.table is not None
    source = table(audience.table, *(column(c) for c in audience.columns.values()))
    stmt = select(*(source.c[col].label(name) for name, col in audience.columns.items()))
    if audience.where is not None and audience.where.strip():
        check_where_text(audience.where)
        # The newline ends a trailing `--` comment before the closing parenthesis.
        stmt = stmt.where(text(f"({audience.where}\n)"))
    return stmt
