"""The audience partitioned by number: which partition a customer goes to, the messaging limit
over partitions, the run's store, extract chunk by chunk, and where the tasks run."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy import create_engine, text

from connectors.crm import Audience, AudienceError
from connectors.settings import Connections
from connectors.vocabulary import CUSTOMER_ID, NOT_BEFORE, OUTCOME, PHONE_E164, REASON, Outcome
from flows.runner import EmbeddedOnClusterError, RunnerSettingError, refuse_embedded, task_runner
from tasks.extract import Settler, extract, extract_to, name_missing_ids, settle
from tasks.frame import with_stage_columns
from tasks.partition.split import AUDIENCE_ROW, partition_count, partition_of
from tasks.partition.store import Store, campaign_dir
from tasks.progress import ProgressLines
from tasks.rules.budget import Budget, apply_budget, defer_over, first_seats, last_seat, mark_new

FEW = settings(max_examples=60, deadline=None, database=None)
NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)
PINNED = {  # number -> partition of 7 and of 64: a change of hash moves customers between runs
    "+5511987650001": (4, 24),
    "+4915112345678": (3, 17),
    "+14155550123": (5, 29),
    "+447700900123": (3, 54),
    "+5511987650002": (1, 59),
}


def audience(phones: list[str | None], dtype: str = "str") -> pd.DataFrame:
    """Customers 0..n-1 in audience order with these numbers, as the stages pass them on."""
    frame = with_stage_columns(pd.DataFrame({CUSTOMER_ID: [f"c{i}" for i in range(len(phones))]}))
    frame[PHONE_E164] = pd.Series(phones, dtype=dtype)
    frame[AUDIENCE_ROW] = np.arange(len(phones), dtype=np.int64)
    return frame


# partition_of


@pytest.mark.parametrize("dtype", ["str", "object", "string[python]"])
def test_a_number_goes_to_the_same_partition_whatever_its_column_type(dtype: str) -> None:
    frame = audience(list(PINNED), dtype)
    assert partition_of(frame, 7).tolist() == [p for p, _ in PINNED.values()]
    assert partition_of(frame, 64).tolist() == [p for _, p in PINNED.values()]
    assert set(partition_of(frame, 1).tolist()) == {0}


def test_a_number_goes_to_the_same_partition_whatever_the_row_order_or_frame() -> None:
    rng = np.random.default_rng(7)
    phones = [f"+55119{n:08d}" for n in rng.integers(0, 10**8, 300)]
    whole = audience(phones)
    parts = dict(zip(phones, partition_of(whole, 13).tolist(), strict=True))
    shuffled = whole.iloc[rng.permutation(len(whole))].reset_index(drop=True)
    shuffled[AUDIENCE_ROW] = np.arange(len(shuffled))  # other positions: only the number counts
    again = dict(zip(shuffled[PHONE_E164], partition_of(shuffled, 13).tolist(), strict=True))
    alone = {p: int(partition_of(audience([p]), 13)[0]) for p in phones[:20]}
    assert again == parts
    assert alone == {p: parts[p] for p in phones[:20]}


def test_every_duplicate_of_a_number_meets_the_others_in_one_partition() -> None:
    phones = [f"+4915112345{n % 40:03d}" for n in range(400)]
    frame = audience(phones)
    frame["part"] = partition_of(frame, 9)
    assert (frame.groupby(PHONE_E164)["part"].nunique() == 1).all()
    assert frame["part"].nunique() > 1


def test_rows_without_a_number_spread_by_audience_position_and_all_stay_in_range() -> None:
    phones: list[str | None] = [None if n % 3 else f"+55119{n:08d}" for n in range(3000)]
    frame = audience(phones)
    parts = partition_of(frame, 11)
    no_number = frame[PHONE_E164].isna().to_numpy()
    assert parts.dtype == np.int64
    assert ((parts >= 0) & (parts < 11)).all()
    assert (parts[no_number] == frame.loc[no_number, AUDIENCE_ROW].to_numpy() % 11).all()
    spread = np.bincount(parts[no_number], minlength=11)
    assert spread.max() - spread.min() <= 2
    assert (partition_of(audience([None, None, None]), 2) == [0, 1, 0]).all()


@given(st.integers(1, 1000), st.lists(st.text("0123456789", min_size=1, max_size=15), max_size=40))
@FEW
def test_every_partition_is_in_range(partitions: int, digits: list[str]) -> None:
    frame = audience([f"+{d}" if i % 4 else None for i, d in enumerate(digits)])
    parts = partition_of(frame, partitions)
    assert len(parts) == len(frame)
    assert ((parts >= 0) & (parts < partitions)).all()


def test_partition_count_is_rows_over_partition_size_and_at_least_one() -> None:
    assert [partition_count(r, 100) for r in (0, 1, 100, 101, 1000)] == [1, 1, 1, 2, 10]
    assert partition_count(5, 0) == 5


# The messaging limit over partitions equals the list-based one.


@st.composite
def limited_audiences(draw: st.DrawFn) -> tuple[pd.DataFrame, list[int], dict[str, datetime], int]:
    """An audience (some rows settled, some without a number) cut in chunks, the numbers already
    messaged in the window with their first message, and the partition count."""
    pool = [f"+55119{n:08d}" for n in range(draw(st.integers(1, 40)))]
    rows = draw(
        st.lists(
            st.tuples(st.sampled_from([*pool, None]), st.booleans()),
            max_size=80,
        )
    )
    frame = audience([phone for phone, _ in rows])
    settled = np.array([s for _, s in rows], dtype=bool)
    frame.loc[settled, OUTCOME] = Outcome.EXCLUDED_DUPLICATE
    frame.loc[settled, REASON] = "duplicate"
    cuts = sorted(draw(st.lists(st.integers(0, len(rows)), max_size=4)))
    hours = st.floats(0, 23.9, allow_nan=False)
    messaged = draw(st.dictionaries(st.sampled_from(pool), hours, max_size=len(pool)))
    first = {p: NOW - timedelta(hours=h) for p, h in messaged.items()}
    return frame, cuts, first, draw(st.integers(1, 12))


def _in_chunks(frame: pd.DataFrame, cuts: list[int]) -> list[pd.DataFrame]:
    bounds = [0, *cuts, len(frame)]
    return [frame.iloc[a:b].reset_index(drop=True) for a, b in itertools.pairwise(bounds)]


def _partitioned_budget(
    frame: pd.DataFrame, partitions: int, budget: Budget, shuffle: int
) -> tuple[pd.DataFrame, int]:
    """The flow's way: seats per partition, the last seat over all, each partition deferred."""
    places = budget.places()
    assert places is not None
    parts = partition_of(frame, partitions)
    rng = np.random.default_rng(shuffle)
    marked = []
    for p in range(partitions):
        piece = frame.loc[parts == p]
        piece = piece.iloc[rng.permutation(len(piece))]  # a partition's order must not matter
        marked.append(mark_new(piece, list(budget.messaged)))
    last = last_seat([first_seats(m, places, AUDIENCE_ROW) for m in marked], places)
    done = [defer_over(m, last, AUDIENCE_ROW, budget.frees_at(NOW)) for m in marked]
    out = pd.concat([d for d, _ in done]).sort_values(AUDIENCE_ROW)
    return out, sum(n for _, n in done)


@given(
    limited_audiences(), st.sampled_from(["none", "zero", "exact", "one less", "more"]), st.data()
)
@FEW
def test_the_partitioned_messaging_limit_defers_exactly_whom_the_list_based_one_does(
    drawn: tuple[pd.DataFrame, list[int], dict[str, datetime], int],
    places: str,
    data: st.DataObject,
) -> None:
    frame, cuts, messaged, partitions = drawn
    fresh = frame[OUTCOME].isna() & frame[PHONE_E164].notna() & ~frame[PHONE_E164].isin(messaged)
    new = int(fresh.sum())
    wanted = {"zero": 0, "exact": new, "one less": max(0, new - 1), "more": new + 3}
    if places == "none":
        limit = None
    else:  # a window fuller than the limit leaves no place either
        spare = data.draw(st.integers(0, 3)) if places == "zero" else 0
        limit = max(0, len(messaged) + wanted[places] - spare)
    budget = Budget(limit, messaged)

    chunks, listed = apply_budget(_in_chunks(frame, cuts), budget, NOW)
    expected = pd.concat(chunks, ignore_index=True) if chunks else frame

    if limit is None:
        assert listed == 0 and expected[OUTCOME].equals(frame[OUTCOME])
        return  # the flow then asks for no seats and defers nobody
    got, deferred = _partitioned_budget(frame, partitions, budget, data.draw(st.integers(0, 99)))

    def verdicts(out: pd.DataFrame) -> dict[str, tuple[object, object, object]]:
        rows = out.loc[out[OUTCOME] == Outcome.DEFERRED]
        return {
            str(c): (o, r, t)
            for c, o, r, t in zip(
                rows[CUSTOMER_ID], rows[OUTCOME], rows[REASON], rows[NOT_BEFORE], strict=True
            )
        }

    assert deferred == listed
    assert verdicts(got) == verdicts(expected)
    assert len(got) == len(frame) and got[NOT_BEFORE].dtype == expected[NOT_BEFORE].dtype
    assert listed == max(0, new - (budget.places() or 0))


def test_a_partition_with_more_new_recipients_than_places_says_so() -> None:
    """The regression: 400 new numbers at 250 places in one partition deferred nobody."""
    frame = mark_new(audience([f"+55119{n:08d}" for n in range(400)]), [])
    seats = first_seats(frame, 250, AUDIENCE_ROW)
    assert len(seats) == 251
    last = last_seat([seats], 250)
    assert last == 249
    out, over = defer_over(frame, last, AUDIENCE_ROW, NOW)
    assert over == 150 and (out[OUTCOME] == Outcome.DEFERRED).sum() == 150
    assert last_seat([first_seats(frame, 0, AUDIENCE_ROW)], 0) == -1
    assert last_seat([first_seats(frame, 400, AUDIENCE_ROW)], 400) is None


# The run's store


def crm_frame() -> pd.DataFrame:
    """Every dtype a CRM's columns arrive as."""
    return pd.DataFrame(
        {
            CUSTOMER_ID: pd.Series(["1", "2", "ü-3", None], dtype="str"),
            "arrow": pd.Series(["a", None, "c", "d"], dtype="string[pyarrow]"),
            "count": pd.Series([1, None, 2**62 + 1, -5], dtype="Int64"),
            "at": pd.Series(
                [datetime(2026, 1, 1, tzinfo=UTC), None, datetime(1900, 3, 4, tzinfo=UTC), NOW],
                dtype="datetime64[us, UTC]",
            ),
            "mixed": pd.Series([Decimal("1.10"), 7, "seven", None], dtype="object"),
            "huge": pd.Series(["x" * 5_000_000, "", "\x00\u2028é", None], dtype="str"),
            "flag": pd.Series([True, False, True, False]),
            "score": pd.Series([0.1, float("nan"), 1e300, -0.0]),
        }
    ).set_axis(pd.Index([10, 11, 12, 13]))  # not 0..n-1, as a partition's rows are


def test_a_frame_comes_back_from_the_store_exactly_as_it_went(tmp_path: Path) -> None:
    store = Store.for_run(tmp_path, "campaign", "run-1")
    frame = crm_frame()
    store.write("chunks/000001", frame)
    back = store.read("chunks/000001")
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert back.dtypes.to_dict() == frame.dtypes.to_dict()
    assert [type(v) for v in back["mixed"]] == [Decimal, int, str, type(None)]
    assert back["mixed"].iloc[0] == Decimal("1.10") and str(back["mixed"].iloc[0]) == "1.10"


def test_a_write_replaces_the_frame_and_leaves_no_partial_file(tmp_path: Path) -> None:
    store = Store.for_run(tmp_path, "campaign", "run-1")
    store.write("part-00001/ready", crm_frame())
    store.write("part-00001/ready", crm_frame().head(1))
    store.write("part-00001/from-000002", crm_frame())
    store.write("part-00002/ready", crm_frame())
    files = sorted(p.name for p in Path(store.root).rglob("*") if p.is_file())
    assert files == ["from-000002.pkl", "ready.pkl", "ready.pkl"]
    assert len(store.read("part-00001/ready")) == 1
    assert store.names("part-00001") == ["part-00001/from-000002", "part-00001/ready"]
    assert store.names("part-09999") == []
    store.remove("part-00001/ready")
    store.remove("part-00001/ready")  # already gone: nothing to do
    assert store.names("part-00001") == ["part-00001/from-000002"]


def test_a_new_attempt_removes_the_campaigns_leftovers_but_not_another_campaigns(
    tmp_path: Path,
) -> None:
    crashed = Store.for_run(tmp_path, "spring/sale", "run-1#1")
    crashed.write("chunks/000000", crm_frame())
    other = Store.for_run(tmp_path, "spring-sale", "run-9#1")  # the same slug, another campaign
    other.write("chunks/000000", crm_frame())

    retry = Store.for_run(tmp_path, "spring/sale", "run-1#2")

    assert not Path(crashed.root).exists()
    assert Path(retry.root).is_dir() and retry.root != crashed.root
    assert Path(retry.root).parent == campaign_dir(tmp_path, "spring/sale")
    assert campaign_dir(tmp_path, "spring/sale") != campaign_dir(tmp_path, "spring-sale")
    assert len(other.read("chunks/000000")) == 4
    retry.write("x", crm_frame())
    retry.clear()
    assert not Path(retry.root).exists()
    assert Path(other.root).is_dir()


# Extract chunk by chunk


def raw_chunk(rows: list[tuple[object, str | None, str | None]]) -> pd.DataFrame:
    """A chunk as the connector reads it: (id, raw phone, country) rows."""
    from connectors.crm import to_frame

    return to_frame(rows, [CUSTOMER_ID, "phone_raw", "country"])


def test_settling_chunk_by_chunk_gives_what_settling_the_whole_audience_at_once_does() -> None:
    rows: list[tuple[object, str | None, str | None]] = [
        (None, "+4915112345678", "DE"),
        (1, "+4915112345679", "DE"),
        ("", "+4915112345678", "DE"),
        (None, None, None),
        ("x" * 200, "+4915112345678", "DE"),
        (None, None, None),
        (2, "+1", "US"),
        (None, "+4915112345678", "DE"),
    ]
    settler = Settler()
    chunked = [settler.settle(raw_chunk(rows[a:b])) for a, b in ((0, 3), (3, 4), (4, 4), (4, 8))]
    whole = settle([raw_chunk(rows)])[0]
    joined = pd.concat(chunked, ignore_index=True)
    columns = [CUSTOMER_ID, OUTCOME, REASON, AUDIENCE_ROW]
    pd.testing.assert_frame_equal(joined[columns], whole[columns])
    assert joined[AUDIENCE_ROW].tolist() == list(range(len(rows)))
    plain = name_missing_ids([with_stage_columns(raw_chunk(rows))])[0]
    assert joined[CUSTOMER_ID].tolist() == plain[CUSTOMER_ID].tolist()
    base = joined[CUSTOMER_ID].iloc[0]
    assert joined[CUSTOMER_ID].iloc[[2, 4, 7]].tolist() == [f"{base}-2", f"{base}-3", f"{base}-4"]
    assert len(settler.repeated()) == 0


def _sqlite_crm(path: Path, rows: list[tuple[object, str | None]]) -> str:
    url = f"sqlite:///{path}/crm.sqlite"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE customers (n INTEGER, id TEXT, phone TEXT)"))
        conn.execute(
            text("INSERT INTO customers VALUES (:n, :id, :phone)"),
            [{"n": n, "id": i, "phone": p} for n, (i, p) in enumerate(rows)],
        )
    engine.dispose()
    return url


AUDIENCE = Audience(query="SELECT id AS customer_id, phone AS phone_raw FROM customers ORDER BY n")


def test_extract_to_the_store_gives_the_chunks_extract_gives_with_consecutive_positions(
    tmp_path: Path,
) -> None:
    rows: list[tuple[object, str | None]] = [
        (None if n % 7 == 0 else str(n), f"+55119876{n % 13:05d}") for n in range(50)
    ]
    url = _sqlite_crm(tmp_path, rows)
    store = Store.for_run(tmp_path / "runs", "c", "r")

    logged: list[str] = []
    ticks = iter(range(100))  # the fake clock: one second more each time it is read
    lines = ProgressLines("extract", None, logged.append, 2, lambda: next(ticks), "read")

    extracted = extract_to(store, url, AUDIENCE, 8, progress=lines)
    lines.close()

    assert logged == [
        "extract: 16 read, 8.0/s",
        "extract: 32 read, 8.0/s",
        "extract: 48 read, 8.0/s",
        "extract: 50 read, 6.2/s",
    ]
    assert extracted.tally.outcomes == {("excluded_invalid_customer_id", "missing_customer_id"): 8}
    assert extracted.chunks == [f"chunks/{i:06d}" for i in range(7)]
    stored = [store.read(name) for name in extracted.chunks]
    listed = extract(url, AUDIENCE, 8)
    assert [len(c) for c in stored] == [8] * 6 + [2]
    for got, want in zip(stored, listed, strict=True):
        pd.testing.assert_frame_equal(got, want)
    positions = pd.concat(stored)[AUDIENCE_ROW].tolist()
    assert positions == list(range(50))
    assert (extracted.tally.rows, extracted.tally.settled) == (50, 8)


def test_extract_to_refuses_an_id_repeated_across_chunks_naming_it(tmp_path: Path) -> None:
    rows: list[tuple[object, str | None]] = [(str(n), f"+5511987{n:06d}") for n in range(30)]
    rows[27] = ("3", "+5511987999999")  # chunk 0's id again, in chunk 5
    rows[29] = ("twice", None)
    rows[12] = ("twice", None)
    url = _sqlite_crm(tmp_path, rows)
    store = Store.for_run(tmp_path / "runs", "c", "r")

    with pytest.raises(AudienceError, match="2 customer_id values on more than one row") as caught:
        extract_to(store, url, AUDIENCE, 5)

    assert '"3"' in str(caught.value) and '"twice"' in str(caught.value)
    assert '"4"' not in str(caught.value)


# Where the tasks run


def test_threads_are_the_default_task_runner() -> None:
    from prefect.task_runners import ThreadPoolTaskRunner

    for env in ({}, {"WA_TASK_RUNNER": ""}, {"WA_TASK_RUNNER": " Threads "}):
        runner = task_runner(env)
        assert type(runner) is ThreadPoolTaskRunner
        assert runner._max_workers == 4


def test_dask_starts_a_local_cluster_of_processes_sized_by_the_environment() -> None:
    from prefect_dask.task_runners import DaskTaskRunner

    default = task_runner({"WA_TASK_RUNNER": "dask"})
    sized = task_runner(
        {
            "WA_TASK_RUNNER": "DASK",
            "DASK_WORKERS": "3",
            "DASK_THREADS_PER_WORKER": "1",
            "DASK_WORKER_MEMORY": "900MiB",
        }
    )
    assert isinstance(default, DaskTaskRunner) and isinstance(sized, DaskTaskRunner)
    assert default.address is None and default.cluster_class == "distributed.LocalCluster"
    kwargs = {k: default.cluster_kwargs[k] for k in ("n_workers", "threads_per_worker")}
    assert kwargs == {"n_workers": 2, "threads_per_worker": 2}
    assert default.cluster_kwargs["memory_limit"] == "1.5GiB"
    assert default.cluster_kwargs["processes"] is True
    assert sized.cluster_kwargs["n_workers"] == 3
    assert sized.cluster_kwargs["threads_per_worker"] == 1
    assert sized.cluster_kwargs["memory_limit"] == "900MiB"


def test_dask_with_a_scheduler_address_connects_to_it_and_starts_nothing() -> None:
    env = {"WA_TASK_RUNNER": "dask", "DASK_SCHEDULER_ADDRESS": " tcp://10.0.0.5:8786 "}
    from prefect_dask.task_runners import DaskTaskRunner

    runner = task_runner({**env, "DASK_WORKERS": "5"})
    assert isinstance(runner, DaskTaskRunner)
    assert runner.address == "tcp://10.0.0.5:8786"
    assert runner.cluster_class is None and runner.cluster_kwargs == {}


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"WA_TASK_RUNNER": "processes"}, 'WA_TASK_RUNNER="processes"'),
        ({"WA_TASK_RUNNER": "dask", "DASK_WORKERS": "0"}, 'DASK_WORKERS="0"'),
        ({"WA_TASK_RUNNER": "dask", "DASK_WORKERS": "two"}, 'DASK_WORKERS="two"'),
        ({"WA_TASK_RUNNER": "dask", "DASK_THREADS_PER_WORKER": "-1"}, "DASK_THREADS_PER_WORKER"),
        ({"WA_TASK_RUNNER": "dask", "DASK_THREADS_PER_WORKER": "1.5"}, "DASK_THREADS_PER_WORKER"),
    ],
)
def test_a_bad_runner_setting_is_refused_naming_the_variable(
    env: dict[str, str], named: str
) -> None:
    with pytest.raises(RunnerSettingError, match=named.replace(".", r"\.")):
        task_runner(env)


SERVER = {
    "CRM_DATABASE_URL": "postgresql+psycopg://crm@db.internal/crm",
    "WAREHOUSE_DATABASE_URL": "postgresql+psycopg://wh@db.internal/wh",
    "WHATSAPP_API_URL": "https://wa.internal",
    "WHATSAPP_USERNAME": "admin",
    "WHATSAPP_PASSWORD": "secret",
    "WA_PARTITION_DIR": "/mnt/shared/partitions",
}


@pytest.mark.parametrize(
    ("unset", "named"),
    [
        ("CRM_DATABASE_URL", "CRM_DATABASE_URL (a database server"),
        ("WAREHOUSE_DATABASE_URL", "WAREHOUSE_DATABASE_URL (a database server"),
        ("WHATSAPP_API_URL", "WHATSAPP_API_URL and its credentials"),
        ("WA_PARTITION_DIR", "WA_PARTITION_DIR (a folder mounted"),
    ],
)
def test_a_remote_cluster_refuses_each_embedded_part_naming_what_to_set(
    unset: str, named: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in SERVER.items() if k != unset} | {"WA_DATA_DIR": str(tmp_path)}
    connections = Connections.from_env(env)
    with pytest.raises(EmbeddedOnClusterError) as caught:
        refuse_embedded(connections, "tcp://10.0.0.5:8786")
    message = str(caught.value)
    assert "tcp://10.0.0.5:8786" in message and named in message
    others = [name for name in SERVER if name not in (unset, "WHATSAPP_USERNAME")]
    assert not [name for name in others if name in message]  # only what is missing is named
    refuse_embedded(connections, None)  # threads or a local cluster: the embedded parts are fine


def test_a_remote_cluster_names_every_missing_part_at_once_and_takes_a_full_setup(
    tmp_path: Path,
) -> None:
    embedded = Connections.from_env({"WA_DATA_DIR": str(tmp_path)})
    with pytest.raises(EmbeddedOnClusterError) as caught:
        refuse_embedded(embedded, "tcp://10.0.0.5:8786")
    for name in (
        "CRM_DATABASE_URL",
        "WAREHOUSE_DATABASE_URL",
        "WHATSAPP_API_URL",
        "WA_PARTITION_DIR",
    ):
        assert name in str(caught.value)
    assert "secret" not in str(caught.value)
    configured = Connections.from_env(SERVER)
    refuse_embedded(configured, "tcp://10.0.0.5:8786")
    assert configured.partitions_root == Path("/mnt/shared/partitions")
    assert configured.crm_url == SecretStr(SERVER["CRM_DATABASE_URL"])
