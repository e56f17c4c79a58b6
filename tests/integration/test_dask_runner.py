"""Issue 18's check: a whole campaign run by the `broadcast` flow on a real Dask cluster of two
worker processes gives every customer what the thread runner gives and sends each number once;
a re-run on Dask sends nothing new; a remote cluster with the embedded defaults is refused
before anything is checked or sent. A v1 sandbox over HTTP, a PostgreSQL CRM and warehouse."""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from distributed import Client, LocalCluster
from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.settings import PREFECT_API_URL, PREFECT_HOME
from prefect_dask.task_runners import DaskTaskRunner
from sqlalchemy import create_engine, select

from connectors.demo import DemoCustomer, demo_customers, seed_demo_crm
from connectors.warehouse.schema import recipients
from connectors.whatsapp.onprem.sandbox import RunningSandbox, SandboxConfig, start_sandbox
from flows.broadcast import broadcast
from flows.runner import EmbeddedOnClusterError, task_runner
from tasks.campaign import Campaign

DEMO_PARAMS = Path(__file__).parents[2] / "deployments" / "demo-campaign.json"
CUSTOMERS = 1200
CHUNK = 150  # 8 chunks and 8 partitions; the demo's duplicates fall in different chunks
VERDICT = ("outcome", "reason", "phone_e164", "duplicate_of", "not_before")


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """Two worker processes of one thread each, started once for the module (~3 s)."""
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        memory_limit="1GiB",
        dashboard_address=":0",
        silence_logs=logging.WARNING,
    ) as running:
        yield running


@pytest.fixture
def sandboxes() -> Iterator[tuple[RunningSandbox, RunningSandbox]]:
    """One v1 sandbox for each runner's run, fast enough that no send meets a 429."""
    config = SandboxConfig(rate_limit_messages=None)
    with start_sandbox(config) as first, start_sandbox(config) as second:
        yield first, second


def _campaign(campaign_id: str) -> Campaign:
    values = json.loads(DEMO_PARAMS.read_text())
    values.update(campaign_id=campaign_id, rate_limit_per_s=1000, concurrency=32, chunk_size=CHUNK)
    return Campaign.model_validate(values)


def _point_at(monkeypatch: pytest.MonkeyPatch, sandbox: RunningSandbox) -> None:
    monkeypatch.setenv("WHATSAPP_API_URL", sandbox.url)
    monkeypatch.setenv("WHATSAPP_USERNAME", sandbox.config.username)
    monkeypatch.setenv("WHATSAPP_PASSWORD", sandbox.config.password)


def _verdicts(url: str, campaign_id: str) -> dict[str, tuple[Any, ...]]:
    engine = create_engine(url)
    r = recipients.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(r.customer_id, *(r[c] for c in VERDICT)).where(r.campaign_id == campaign_id)
        ).all()
    engine.dispose()
    return {row[0]: tuple(row[1:]) for row in rows}


def _executed(cluster: LocalCluster) -> dict[str, int]:
    """Tasks each worker has run so far."""

    def count(dask_worker: Any) -> int:
        return int(dask_worker.state.executed_count)

    with Client(cluster.scheduler_address) as client:
        return dict(client.run(count))


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def _expected(customers: list[DemoCustomer]) -> dict[str, tuple[Any, ...]]:
    return {
        str(c.id): (c.expected_outcome, c.expected_reason, c.expected_duplicate_of)
        for c in customers
    }


def test_a_campaign_on_two_dask_workers_gives_every_customer_what_threads_give(
    prefect_api: None,
    cluster: LocalCluster,
    sandboxes: tuple[RunningSandbox, RunningSandbox],
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    customers = demo_customers(CUSTOMERS, seed=18)
    engine = create_engine(postgres_url)
    seed_demo_crm(engine, customers)
    engine.dispose()
    parts = tmp_path / "partitions"
    monkeypatch.setenv("CRM_DATABASE_URL", postgres_url)
    monkeypatch.setenv("WAREHOUSE_DATABASE_URL", postgres_url)
    monkeypatch.setenv("WA_PARTITION_DIR", str(parts))
    monkeypatch.setenv("WA_DATA_DIR", str(tmp_path / "data"))
    on_dask, on_threads = sandboxes
    remote = {"WA_TASK_RUNNER": "dask", "DASK_SCHEDULER_ADDRESS": cluster.scheduler_address}

    spread = Counter(c.expected_e164 for c in customers if c.expected_duplicate_of)
    assert len(spread) > 10 and any(
        len({(c.id - 1) // CHUNK for c in customers if c.expected_e164 == p}) > 1 for p in spread
    )  # several numbers' duplicates in different chunks
    before = _executed(cluster)

    _point_at(monkeypatch, on_dask)
    dask_run = broadcast.with_options(task_runner=task_runner(remote))
    report = dask_run(_campaign("on-dask"))
    assert _files(parts) == []  # the run's store is gone
    ran = [after - before[worker] for worker, after in _executed(cluster).items()]
    assert len(ran) == 2 and min(ran) > 0  # both worker processes ran the campaign's tasks

    _point_at(monkeypatch, on_threads)
    threads = broadcast.with_options(task_runner=task_runner({"WA_TASK_RUNNER": "threads"}))
    threads(_campaign("on-threads"))

    by_dask, by_threads = _verdicts(postgres_url, "on-dask"), _verdicts(postgres_url, "on-threads")
    assert len(by_dask) == CUSTOMERS
    differ = [(c, v, by_threads.get(c)) for c, v in by_dask.items() if by_threads.get(c) != v]
    assert not differ, f"{len(differ)} customers differ, first: {differ[:5]}"
    got = {c: (v[0], v[1], v[3]) for c, v in by_dask.items()}
    assert got == _expected(customers)
    to = [m.to for m in on_dask.state.messages_sent()]
    assert Counter(to).most_common(1)[0][1] == 1  # no number messaged twice
    assert sorted(to) == sorted(m.to for m in on_threads.state.messages_sent())
    should = sorted(str(c.expected_wa_id) for c in customers if c.expected_outcome == "sent")
    assert sorted(to) == should
    assert report["funnel"]["sent in this run"] == len(should)
    assert sorted(on_dask.state.contacts_checked()) == sorted(
        c.expected_e164
        for c in customers
        if c.expected_outcome in ("sent", "excluded_not_on_whatsapp")
    )

    # The same campaign again, on a local cluster the run starts itself: nothing new is sent.
    _point_at(monkeypatch, on_dask)
    local = {"WA_TASK_RUNNER": "dask", "DASK_WORKERS": "2", "DASK_THREADS_PER_WORKER": "1"}
    again = broadcast.with_options(task_runner=task_runner(local))(_campaign("on-dask"))

    assert len(on_dask.state.messages_sent()) == len(should)
    assert again["funnel"]["sent in this run"] == 0
    assert again["funnel"]["sent by an earlier run"] == len(should)
    rerun = _verdicts(postgres_url, "on-dask")
    assert {c for c, v in rerun.items() if v[1] == "already_sent"} == {
        str(c.id) for c in customers if c.expected_outcome == "sent"
    }
    assert _files(parts) == []


@task
def _where(item: int) -> tuple[int, str, str]:
    """Where a task runs (`item` only makes one task run per item)."""
    assert item >= 0
    return os.getpid(), str(PREFECT_API_URL.value()), str(PREFECT_HOME.value())


@flow
def _probe(items: int) -> list[tuple[int, str, str]]:
    return [f.result() for f in _where.map(list(range(items)))]


def test_workers_report_to_the_tests_prefect_api_with_its_isolated_home(
    prefect_api: None, cluster: LocalCluster
) -> None:
    with Client(cluster.scheduler_address) as client:
        workers = set(client.run(os.getpid).values())
    on_cluster = _probe.with_options(task_runner=DaskTaskRunner(address=cluster.scheduler_address))

    seen = on_cluster(6)

    assert {pid for pid, _, _ in seen} <= workers and os.getpid() not in workers
    assert {api for _, api, _ in seen} == {str(PREFECT_API_URL.value())}
    assert str(PREFECT_API_URL.value()).startswith("http://127.0.0.1")
    ours = str(PREFECT_HOME.value())
    assert Path(ours).name.startswith("wa-tests-prefect-")
    assert {home for _, _, home in seen} == {ours}


def test_a_remote_cluster_with_the_embedded_defaults_is_refused_before_anything_runs(
    prefect_api: None,
    cluster: LocalCluster,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    for name in ("CRM_DATABASE_URL", "WAREHOUSE_DATABASE_URL", "WHATSAPP_API_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("WA_PARTITION_DIR", raising=False)
    data = tmp_path / "data"
    monkeypatch.setenv("WA_DATA_DIR", str(data))
    remote = {"WA_TASK_RUNNER": "dask", "DASK_SCHEDULER_ADDRESS": cluster.scheduler_address}

    state = broadcast.with_options(task_runner=task_runner(remote))(
        _campaign("refused"), return_state=True
    )

    assert state.is_failed()
    with pytest.raises(EmbeddedOnClusterError) as caught:
        state.result()
    message = str(caught.value)
    assert cluster.scheduler_address in message
    for name in (
        "CRM_DATABASE_URL",
        "WAREHOUSE_DATABASE_URL",
        "WHATSAPP_API_URL",
        "WA_PARTITION_DIR",
    ):
        assert name in message
    assert not data.exists()  # no demo CRM made, no warehouse opened
    with get_client(sync_client=True) as client:
        ran = client.read_task_runs(
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[state.state_details.flow_run_id])
            )
        )
    assert ran == []
