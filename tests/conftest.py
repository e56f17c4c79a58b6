"""Shared fixtures: an isolated Prefect home, real databases per dialect, the sandbox over HTTP."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Iterator

# Before anything imports prefect: no analytics, no settings leaking in from ~/.prefect or .env.
_PREFECT_HOME = tempfile.mkdtemp(prefix="wa-tests-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
os.environ.pop("PREFECT_API_URL", None)

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from sqlalchemy import Connection, create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from tests.helpers import make_chunk  # noqa: E402

POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MARIADB_ADMIN_URL = os.environ.get("TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
HOW_TO = {
    "postgresql": "start PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth, database test) "
    "or set TEST_POSTGRES_URL",
    "mariadb": "start MariaDB on 127.0.0.1:3306 (root, empty password, database test) "
    "or set TEST_MARIADB_URL",
}


def _reachable(url: str) -> str | None:
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any driver error means: not usable here
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    return None


def _database(kind: str, admin_url: str) -> Iterator[str]:
    """A fresh, empty database on the server, dropped afterwards."""
    problem = _reachable(admin_url)
    if problem:
        message = f"{kind} not reachable ({problem}); {HOW_TO[kind]}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    name = f"wa_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            if kind == "postgresql":
                conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            else:
                conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """URL of an empty PostgreSQL database for one test."""
    yield from _database("postgresql", POSTGRES_ADMIN_URL)


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """URL of an empty MariaDB database for one test."""
    yield from _database("mariadb", MARIADB_ADMIN_URL)


@pytest.fixture
def sqlite_url(tmp_path: object) -> str:
    """URL of an empty SQLite file for one test."""
    return f"sqlite:///{tmp_path}/{uuid.uuid4().hex[:8]}.sqlite"


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def any_db_url(request: pytest.FixtureRequest) -> str:
    """An empty database of each dialect in turn."""
    fixture = {"sqlite": "sqlite_url", "postgresql": "postgres_url", "mariadb": "mariadb_url"}
    return str(request.getfixturevalue(fixture[request.param]))


@pytest.fixture
def kill_sessions() -> Callable[[Connection], int]:
    """Terminates every other session of the connection's database, as a failover, an
    `idle_session_timeout` or an operator's `pg_terminate_backend` / `KILL` does."""
    return kill_other_sessions


def kill_other_sessions(conn: Connection) -> int:
    """Terminate every other session of this database (what a failover or an operator does)."""
    if conn.dialect.name == "postgresql":
        killed = conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).all()
        return len(killed)
    ids = conn.execute(
        text(
            "SELECT id FROM information_schema.processlist "
            "WHERE db = DATABASE() AND id <> CONNECTION_ID()"
        )
    ).scalars()
    count = 0
    for session in list(ids):
        conn.execute(text(f"KILL {int(session)}"))
        count += 1
    return count


@pytest.fixture
def chunk_of() -> Callable[..., pd.DataFrame]:
    """Builds chunks: `chunk_of(phones, names=None)` (see `make_chunk`)."""
    return make_chunk
