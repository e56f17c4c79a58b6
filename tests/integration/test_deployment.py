"""The Prefect project: prefect.yaml deployed to a real API, run by a process worker, retried."""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine, select, text

from connectors.demo import demo_customers, seed_demo_crm
from connectors.warehouse.connect import warehouse
from connectors.warehouse.schema import deliveries, recipients
from connectors.whatsapp.onprem.sandbox import RunningSandbox, SandboxConfig, start_sandbox

ROOT = Path(__file__).parents[2]
PREFECT = str(Path(os.sys.executable).with_name("prefect"))  # type: ignore[attr-defined]
DEMO = json.loads((ROOT / "deployments" / "demo-campaign.json").read_text())
PASSWORD = f"pw-{uuid.uuid4().hex}"  # a secret whose every appearance the tests can find


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(SandboxConfig(password=PASSWORD, rate_limit_messages=None)) as running:
        yield running


@pytest.fixture(scope="module")
def deployed(prefect_api: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """`prefect deploy` of deployments/prefect.yaml against the test API; returns the env used."""
    from prefect.settings import PREFECT_API_URL

    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_LOGGING_LEVEL": "INFO",  # the stage lines are INFO
        "PWD": str(ROOT),
    }
    for command in (
        ["work-pool", "create", "wa-process", "--type", "process", "--overwrite"],
        ["--no-prompt", "deploy", "--prefect-file", "deployments/prefect.yaml", "--all"],
    ):
        done = subprocess.run(
            [PREFECT, *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return env


def _worker_once(env: dict[str, str]) -> None:
    done = subprocess.run(
        [PREFECT, "worker", "start", "--pool", "wa-process", "--run-once"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def _run_env(
    deployed: dict[str, str], sandbox: RunningSandbox, tmp_path: Path, n: int
) -> tuple[dict[str, str], str, list[Any]]:
    crm_url = f"sqlite:///{tmp_path}/crm.sqlite"
    warehouse_url = f"sqlite:///{tmp_path}/warehouse.sqlite"
    customers = demo_customers(n, seed=17)
    engine = create_engine(crm_url)
    seed_demo_crm(engine, customers)
    engine.dispose()
    env = {
        **deployed,
        "CRM_DATABASE_URL": crm_url,
        "WHATSAPP_API_URL": sandbox.url,
        "WHATSAPP_USERNAME": sandbox.config.username,
    }
    env.pop("WHATSAPP_PASSWORD", None)  # it comes from the Secret block named in the parameters
    env.pop("WAREHOUSE_DATABASE_URL", None)
    return env, warehouse_url, customers


def _secret_blocks(warehouse_url: str) -> dict[str, str]:
    from prefect.blocks.system import Secret

    suffix = uuid.uuid4().hex[:8]
    Secret(value=PASSWORD).save(f"wa-password-{suffix}", overwrite=True)
    Secret(value=warehouse_url).save(f"wa-warehouse-{suffix}", overwrite=True)
    return {
        "whatsapp_password": f"wa-password-{suffix}",
        "warehouse_database_url": f"wa-warehouse-{suffix}",
    }


def test_prefect_yaml_declares_the_demo_campaign_weekly_in_berlin_time() -> None:
    spec = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())
    [deployment] = spec["deployments"]
    assert deployment["parameters"]["campaign"] == DEMO
    assert deployment["schedules"][0]["timezone"] == "Europe/Berlin"
    assert deployment["work_pool"]["name"] == "wa-process"
    assert deployment["concurrency_limit"] == 1
    assert not Path(deployment["entrypoint"].split(":")[0]).is_absolute()


def test_deployment_run_by_a_worker_completes_with_artifacts_and_no_secret_anywhere(
    deployed: dict[str, str], sandbox: RunningSandbox, tmp_path: Path
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter
    from prefect.deployments import run_deployment

    env, warehouse_url, customers = _run_env(deployed, sandbox, tmp_path, 400)
    env["WA_PROGRESS_EVERY_S"] = "0.1"  # the worker has no terminal: plain progress lines
    campaign = {**DEMO, "campaign_id": "it-deploy", "rate_limit_per_s": 500}
    flow_run = run_deployment(
        "broadcast/broadcast",
        parameters={"campaign": campaign, "secrets": _secret_blocks(warehouse_url)},
        timeout=0,
    )
    _worker_once(env)

    with get_client(sync_client=True) as client:
        finished = client.read_flow_run(flow_run.id)
        artifacts = client.read_artifacts(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id]))
        )
        logs = client.read_logs(log_filter=LogFilter(flow_run_id={"any_": [flow_run.id]}))
    assert finished.state is not None and finished.state.is_completed(), finished.state
    assert {a.key for a in artifacts} >= {
        "it-deploy-funnel",
        "it-deploy-summary",
        "it-deploy-progress",
        "it-deploy-charts",
    }
    charts = next(a for a in artifacts if a.key == "it-deploy-charts")
    assert "](data:image/png;base64," in str(charts.data)
    progress = next(a for a in artifacts if a.key == "it-deploy-progress")
    assert float(progress.data) == 100.0  # type: ignore[arg-type]
    stage_lines = [
        log.message
        for log in logs
        if log.message.startswith(("consent + normalise:", "send:")) and log.message.endswith(" s)")
    ]
    assert len(stage_lines) == 2
    shown = [m.message for m in logs if re.fullmatch(r"send: [\d,]+ of .*", m.message)]
    assert shown, "the worker (no terminal) logged its send's progress to the flow run's logs"
    line = r"send: [\d,]+ of [\d,]+ \(\d+ %\), [\d,.]+/s(, [\d,]+ failed)?(, ETA .*)?"
    assert all(re.fullmatch(line, m) for m in shown), shown
    stored = json.dumps(finished.parameters) + "".join(str(a.data) for a in artifacts)
    stored += "".join(log.message for log in logs)
    assert PASSWORD not in stored and warehouse_url not in stored
    assert not any(c.expected_e164 and c.expected_e164 in stored for c in customers)

    engine = create_engine(warehouse_url)
    with engine.connect() as conn:
        outcomes = dict(conn.execute(select(recipients.c.customer_id, recipients.c.outcome)).all())
        run_row = conn.execute(text("SELECT status, sent FROM wa_campaign_runs")).one()
    engine.dispose()
    assert len(outcomes) == len(customers)
    expected_sent = sum(c.expected_outcome == "sent" for c in customers)
    assert tuple(run_row) == ("completed", expected_sent)


def test_a_run_whose_record_step_failed_is_retried_through_the_api_without_resending(
    deployed: dict[str, str], sandbox: RunningSandbox, tmp_path: Path
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.states import AwaitingRetry

    env, warehouse_url, customers = _run_env(deployed, sandbox, tmp_path, 300)
    env.update(WAREHOUSE_DATABASE_URL=warehouse_url, WHATSAPP_PASSWORD=PASSWORD)  # env, no blocks

    engine = warehouse(warehouse_url)  # migrated; a trigger makes the record step fail once
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER fail_record BEFORE INSERT ON wa_recipients "
            "BEGIN SELECT RAISE(ABORT, 'warehouse refused the write'); END"
        )
    before = len(sandbox.state.messages_sent())
    campaign = {**DEMO, "campaign_id": "it-retry", "rate_limit_per_s": 500}
    flow_run = run_deployment("broadcast/broadcast", parameters={"campaign": campaign}, timeout=0)
    _worker_once(env)
    with get_client(sync_client=True) as client:
        failed = client.read_flow_run(flow_run.id)
    assert failed.state is not None and failed.state.is_failed(), failed.state
    sent_first = len(sandbox.state.messages_sent()) - before
    assert sent_first == sum(c.expected_outcome == "sent" for c in customers)

    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER fail_record")
    with get_client(sync_client=True) as client:  # what the UI's Retry button does
        client.set_flow_run_state(flow_run.id, AwaitingRetry(), force=True)
    _worker_once(env)

    with get_client(sync_client=True) as client:
        retried = client.read_flow_run(flow_run.id)
    assert retried.state is not None and retried.state.is_completed(), retried.state
    assert retried.run_count >= 2
    assert len(sandbox.state.messages_sent()) - before == sent_first  # nothing sent twice
    with engine.connect() as conn:
        assert conn.execute(select(recipients.c.customer_id)).all().__len__() == len(customers)
        states = {s for (s,) in conn.execute(select(deliveries.c.state))}
    assert states == {"sent"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("default_region", "XX"),
        ("rate_limit_per_s", 0),
        ("template", {**DEMO["template"], "name": ""}),
    ],
)
def test_bad_parameters_are_refused_before_a_run_is_created(
    deployed: dict[str, str], field: str, value: object
) -> None:
    from prefect.deployments import run_deployment

    with pytest.raises(Exception, match=r"(?i)validation|schema|invalid"):
        run_deployment(
            "broadcast/broadcast", parameters={"campaign": {**DEMO, field: value}}, timeout=0
        )
