"""Where the flow's tasks run: threads in the flow's process (`WA_TASK_RUNNER=threads`, the
default) or a Dask cluster (`dask`): the one at `DASK_SCHEDULER_ADDRESS`, or a local cluster
started for the run whose workers have a memory limit. The flow's code is the same for both.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any, Final

from prefect.context import FlowRunContext
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from sqlalchemy.engine import make_url

from connectors.errors import StopRunError
from connectors.settings import Connections

THREADS: Final = 4
"""Task runs at once on the thread runner."""
DASK_WORKERS: Final = 2
DASK_THREADS: Final = 2
DASK_MEMORY: Final = "1.5GiB"


class RunnerSettingError(ValueError):
    """`WA_TASK_RUNNER` or one of the `DASK_*` settings cannot be used; names which."""


def task_runner(env: Mapping[str, str] | None = None) -> TaskRunner[Any]:
    """The task runner the environment asks for (module docstring); `DASK_WORKERS`,
    `DASK_THREADS_PER_WORKER` and `DASK_WORKER_MEMORY` size the local cluster."""
    env = os.environ if env is None else env
    kind = (env.get("WA_TASK_RUNNER") or "threads").strip().lower()
    if kind == "threads":
        return ThreadPoolTaskRunner(max_workers=THREADS)
    if kind != "dask":
        raise RunnerSettingError(f'WA_TASK_RUNNER="{kind}": use "threads" or "dask"')
    from prefect_dask.task_runners import DaskTaskRunner  # loads Dask: only when asked for

    quiet_dask()
    address = (env.get("DASK_SCHEDULER_ADDRESS") or "").strip()
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": _count(env, "DASK_WORKERS", DASK_WORKERS),
            "threads_per_worker": _count(env, "DASK_THREADS_PER_WORKER", DASK_THREADS),
            "memory_limit": env.get("DASK_WORKER_MEMORY") or DASK_MEMORY,
            "processes": True,
            "dashboard_address": ":0",  # any free port: two runs on one machine never clash
            "silence_logs": logging.WARNING,
        },
    )


def quiet_dask() -> None:
    """Dask's own INFO lines (workers starting and stopping) out of the run's log, in this
    process and the local cluster's workers (which read Dask's settings from the environment)."""
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    logging.getLogger("distributed").setLevel(logging.WARNING)


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    """A positive whole number from the environment."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise RunnerSettingError(f'{name}="{raw[:20]}": expected a whole number of at least 1')
    return int(raw)


class EmbeddedOnClusterError(StopRunError):
    """The run would use a part that lives only on this machine while its tasks run elsewhere."""


def remote_scheduler() -> str | None:
    """The address of the Dask cluster this flow run's tasks go to, when it is not one the run
    started itself on this machine (None: threads, or a local cluster)."""
    context = FlowRunContext.get()
    runner = context.task_runner if context is not None else None
    address = getattr(runner, "address", None)
    return str(address) if address and type(runner).__name__ == "DaskTaskRunner" else None


def refuse_embedded(connections: Connections, scheduler: str | None) -> None:
    """On a remote cluster, refuse the embedded demo's parts (SQLite files, the in-process
    sandbox) and a partition folder only this machine has, saying what to configure."""
    if scheduler is None:
        return
    missing = []
    for name, url in (
        ("CRM_DATABASE_URL", connections.crm_url),
        ("WAREHOUSE_DATABASE_URL", connections.warehouse_url),
    ):
        if make_url(url.get_secret_value()).get_backend_name() == "sqlite":
            missing.append(f"{name} (a database server every worker reaches, not a SQLite file)")
    if not connections.senders:
        missing.append("WHATSAPP_API_URL and its credentials (the embedded sandbox is local)")
    if connections.partition_dir is None:
        missing.append("WA_PARTITION_DIR (a folder mounted at the same path on every worker)")
    if missing:
        raise EmbeddedOnClusterError(
            f"the tasks run on the Dask cluster at {scheduler}, which cannot reach this "
            f"machine's embedded demo; set {'; '.join(missing)}"
        )
