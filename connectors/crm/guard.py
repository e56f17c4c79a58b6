"""The audience guard: what an audience's SQL may not do, refused before it runs.

An audience is refused when it is not one SELECT, or when, outside string literals and comments
(case-insensitive, read both with and without backslash escapes, since MySQL and PostgreSQL
disagree on them), it
  - writes: `INTO` (MySQL/MariaDB `INTO OUTFILE`, `INTO DUMPFILE`, `INTO @var`; PostgreSQL
    `SELECT INTO` a new table), `INSERT`/`UPDATE`/`DELETE`/`MERGE` (data-modifying CTEs,
    `FOR UPDATE` row locks), `COPY`;
  - calls a function of `REFUSED_CALLS` (or a name starting with `REFUSED_CALL_PREFIXES`): they
    read or write files on the database server (`pg_read_file`, `lo_export`, `load_file`, ...),
    reach other servers (`dblink`), act on other sessions or the server (`pg_terminate_backend`,
    `set_config`, advisory and MySQL named locks) or run SQL hidden in a string
    (`query_to_xml`). `pg_sleep`/`sleep` only take time and stay allowed;
  - hides SQL where the guard cannot read it: MySQL executable comments `/*! ... */` and
    PostgreSQL Unicode-escaped names `U&"..."`.
A table audience's `where` must be one expression: no `;`, balanced parentheses, no clause
(`UNION`, `ORDER BY`, `LIMIT`, `INTO`, ...) outside parentheses; it is also put in parentheses.
The read-only transaction that runs the audience is the second guard.
"""

from __future__ import annotations

from typing import Final

import sqlparse
from sqlparse import tokens as T
from sqlparse.sql import Token

from connectors.crm.columns import AudienceError

# Functions an audience may not call, by what they reach.
_REFUSED_BY_REACH: Final = {
    "PostgreSQL: files and programs on the server, the server itself, other sessions": (
        "pg_stat_file pg_logdir_ls loread lowrite pg_terminate_backend pg_cancel_backend "
        "pg_reload_conf pg_rotate_logfile pg_promote pg_switch_wal pg_create_restore_point "
        "pg_backup_start pg_backup_stop pg_start_backup pg_stop_backup pg_notify set_config"
    ),
    "PostgreSQL: SQL run from a string, out of the guard's sight": (
        "query_to_xml query_to_xmlschema query_to_xml_and_xmlschema cursor_to_xml "
        "cursor_to_xmlschema"
    ),
    "MySQL/MariaDB: files, commands (UDFs), named locks": (
        "load_file sys_exec sys_eval get_lock release_lock release_all_locks"
    ),
    "SQLite: shared libraries and files": "load_extension readfile writefile edit fts3_tokenizer",
}
REFUSED_CALLS: Final = frozenset(" ".join(_REFUSED_BY_REACH.values()).split())
REFUSED_CALL_PREFIXES: Final = ("lo_", "pg_ls_", "pg_read_", "pg_file_", "dblink", "pg_advisory_")
_WRITES: Final = {
    "INTO": "writes the result to a file, a variable or a new table",
    "INSERT": "writes to the CRM",
    "UPDATE": "writes to or locks CRM rows",
    "DELETE": "writes to the CRM",
    "MERGE": "writes to the CRM",
    "COPY": "copies data to or from files or programs",
}
# Keywords that end a WHERE expression and start another part of the statement.
_CLAUSES: Final = frozenset(
    {"UNION", "INTERSECT", "EXCEPT", "ORDER", "GROUP", "HAVING", "LIMIT", "OFFSET", "FETCH"}
    | {"FOR", "WINDOW", "PROCEDURE", "RETURNING", "SELECT", "WHERE"}
)
_NAMES: Final = (T.Name, T.Keyword, T.Literal.String.Symbol)


def check_query_text(query: str) -> None:
    """Refuse anything but one SELECT (or WITH … SELECT) that only reads; the read-only
    transaction that runs it is the second guard."""
    statements = [s for s in sqlparse.parse(query) if str(s).strip().strip(";").strip()]
    if len(statements) > 1:
        raise AudienceError(
            f"audience.query holds {len(statements)} statements; give a single SELECT"
        )
    kind = statements[0].get_type() if statements else "empty"  # type: ignore[no-untyped-call]
    if kind != "SELECT":
        raise AudienceError(f"audience.query must be a single SELECT statement, not {kind}")
    for reading in _readings(query):
        _refuse_hidden(reading, "audience.query")


def check_where_text(where: str) -> None:
    """Refuse a table audience's `where` unless it is one read-only SQL expression."""
    for reading in _readings(where):
        _refuse_hidden(reading, "audience.where")
        depth = 0
        for token in _code(reading):
            if _punctuation(token, ";"):
                raise AudienceError(
                    "audience.where holds ';'; give one expression, e.g. \"region = 'EU'\""
                )
            depth += _punctuation(token, "(") - _punctuation(token, ")")
            word = token.normalized.split()[0] if token.is_keyword else ""
            if depth < 0 or (depth == 0 and word in _CLAUSES):
                raise AudienceError(
                    f'audience.where holds "{token.value}" outside an expression; give one '
                    "filter expression and use a `query` audience for anything more"
                )
        if depth:
            raise AudienceError("audience.where has unbalanced parentheses; close each one")


def _readings(sql: str) -> list[str]:
    """The SQL as MySQL reads it (backslash escapes in strings) and, if it differs, as PostgreSQL
    does (a backslash is an ordinary character): text hidden in a string by one must not run
    in the other."""
    return [sql, sql.replace("\\", " ")] if "\\" in sql else [sql]


def _tokens(sql: str) -> list[Token]:
    """Every leaf token of the SQL, in order."""
    return [
        token
        for statement in sqlparse.parse(sql)
        for token in statement.flatten()  # type: ignore[no-untyped-call]
    ]


def _punctuation(token: Token, mark: str) -> bool:
    """The token is this punctuation mark."""
    return token.ttype is T.Punctuation and token.value == mark


def _code(sql: str) -> list[Token]:
    """The tokens that run: no whitespace, no comments."""
    return [t for t in _tokens(sql) if not t.is_whitespace and t.ttype not in T.Comment]


def _refuse_hidden(sql: str, field: str) -> None:
    """Refuse writes, refused calls and SQL the guard cannot read (see the module docstring)."""
    tokens = _tokens(sql)
    for token in tokens:
        if token.ttype in T.Comment and token.value.startswith(("/*!", "/*M!")):
            raise AudienceError(
                f"{field} holds an executable comment {token.value[:12]!r}…; MySQL runs its "
                "content: write the SQL without it"
            )
    for first, second, third in zip(tokens, tokens[1:], tokens[2:], strict=False):
        if first.value.upper() == "U" and second.value == "&" and third.ttype in T.Literal:
            raise AudienceError(f'{field} holds a Unicode-escaped name U&"…"; write it plainly')
    code = _code(sql)
    for token, after in zip(code, [*code[1:], None], strict=True):
        word = token.normalized.split()[0] if token.is_keyword else ""
        if word in _WRITES:
            # Name the target too: INTO OUTFILE, INTO DUMPFILE, INTO @.
            phrase = f"{word} {after.value.upper()}" if word == "INTO" and after else word
            raise AudienceError(
                f"{field} holds {phrase}, which {_WRITES[word]}; an audience only reads: "
                "select the customers' columns and nothing else"
            )
        named = any(token.ttype in kind for kind in _NAMES)
        if named and after is not None and _punctuation(after, "("):
            _refuse_call(token.value.strip('"`').lower(), field)


def _refuse_call(name: str, field: str) -> None:
    """Refuse a call of a function that reaches beyond reading the CRM's tables."""
    if name in REFUSED_CALLS or name.startswith(REFUSED_CALL_PREFIXES):
        raise AudienceError(
            f"{field} calls {name}(), which reaches files, programs, other servers or sessions "
            "on the database server; an audience may only read the CRM's tables"
        )
