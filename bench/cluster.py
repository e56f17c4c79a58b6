"""Cluster (issue 18): the broadcast flow's dry run on Dask's local cluster, 1M and 10M customers.

The customers are generated (`bench.funnel.crm_table`: mixed phone formats, 0.6 distinct, a
consent mix, 1% without a first name) in batches of `--batch` rows and loaded with COPY into a
`crm_contacts` table of a scratch PostgreSQL database `wa_bench_<random>`, dropped afterwards.
One `prefect server start` (UI off, its own PREFECT_HOME) serves every run, started before the
first one, so its start is in no run's time.

Three runs of `python -m flows.broadcast --params <json> --dry-run`, each a child process in its
own process group (stopped past a deadline), each with a fresh warehouse database and its own
campaign id: the small audience (`--rows`' first, default 1,000,000) on the thread runner
(`WA_TASK_RUNNER=threads`), the same on Dask (`WA_TASK_RUNNER=dask`: a `distributed.LocalCluster`
of `--workers` processes with `--threads-per-worker` threads and `--worker-memory` each), then,
once the CRM has grown to the large audience (`--rows`' second, default 10,000,000; the first
rows are the same customers), the large one on Dask. `WA_DATA_DIR` and `WA_PARTITION_DIR` are in
a temporary directory, no `WHATSAPP_*` is set (a dry run checks and sends nothing; the flow's
embedded sandbox answers its template lookup).

While a run lasts, every process of the flow's tree (the flow process, which also holds the Dask
scheduler and the nannies, the Dask worker processes, phone-parse children) and the Prefect
server is sampled every `--interval` seconds: resident memory (RSS, and the kernel's peak
`VmHWM`), CPU time. The flow's output gives the stage lines ("<stage>: N customers ... (x s)"),
"Beginning flow run" and "Finished in state"; Prefect's database gives the flow run's own span
and its task runs; the warehouse the outcome rows written.

Targets (issue 18): the large run no process above 1.5 GiB resident at any time, and its total
time <= 11 x the small Dask run's (1.1 x the audience ratio); the small run on Dask within
1.5 x its time on threads.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import psutil
from sqlalchemy import create_engine, func, select, text

from bench.campaign import (
    FLOW_BEGINS,
    FLOW_ENDS,
    FlowRun,
    TaskRuns,
    flow_child,
    funnel_lines,
    prefect_env,
    prefect_server,
    settled_task_runs,
    wait_or_stop,
)
from bench.common import Figure, Target, load_average, report, scratch_postgres
from bench.funnel import append_crm, crm_table, seed_crm
from connectors.demo import DEMO_AUDIENCE_QUERY, DEMO_TEMPLATE
from connectors.warehouse.schema import recipients
from flows.runner import DASK_MEMORY, DASK_THREADS, DASK_WORKERS

ROOT: Final = Path(__file__).resolve().parents[1]
GIB_MIB: Final = 1024
TARGET_RSS_MIB: Final = Target("<=", 1.5 * GIB_MIB)
TARGET_DASK_OVER_THREADS: Final = Target("<=", 1.5)
SCALE_SLACK: Final = 1.1
"""The large run may take this much more than the small one times the audience ratio."""
# "12:00:01.234 | INFO    | Flow run 'name' - consent + normalise: 1,000 customers, ... (1.23 s)"
STAGE_LINE: Final = re.compile(
    r"- (?P<stage>[a-z][a-z +-]*?): (?P<customers>[\d,]+) customers, .*\((?P<seconds>[\d.]+) s\)"
)
MEMORY_WARNING: Final = re.compile(r"memory", re.IGNORECASE)
SERVER: Final = "prefect server"
CLEARED_ENV: Final = ("PREFECT_", "WHATSAPP_", "WA_", "DASK_", "CRM_", "WAREHOUSE_")


# The CRM ---------------------------------------------------------------------------------------


def load_customers(url: str, first: int, last: int, args: argparse.Namespace) -> float:
    """Customers `first`..`last` (1-based ids) into `crm_contacts`, batch by batch, so this
    process never holds more than one batch; the table is created with the first. Seconds."""
    started = time.perf_counter()
    for start in range(first, last + 1, args.batch):
        rows = min(args.batch, last - start + 1)
        index = (start - 1) // args.batch  # the same customers whatever the audience's size
        table = crm_table(rows, distinct=args.distinct, seed=args.seed + index, first_id=start)
        (seed_crm if start == 1 else append_crm)(url, table)
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("VACUUM ANALYZE crm_contacts"))
    finally:
        engine.dispose()
    return time.perf_counter() - started


# Sampling the processes -----------------------------------------------------------------------


@dataclass
class Seen:
    """One process as sampled: its role, peaks and CPU time while sampled."""

    role: str
    rss_kib: int = 0
    hwm_kib: int = 0
    cpu_s: float = 0.0
    cpu_from: float = 0.0


def _hwm_kib(pid: int) -> int:
    """The process's peak resident memory (VmHWM) in KiB, 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def role_of(process: psutil.Process) -> str:
    """What a process of the flow's tree is, from its command line."""
    try:
        command = process.cmdline()
    except psutil.Error:
        return "gone"
    line = " ".join(command)
    if command and "py-spy" in Path(command[0]).name:
        return "py-spy"
    if "flows.broadcast" in line:
        return "flow process"
    if "tasks.phones.fallback" in line:
        return "phone-parse child"
    if "resource_tracker" in line:
        return "multiprocessing resource tracker"
    if "spawn_main" in line:
        return "dask worker"
    return f"other ({process.name()})"


def _tree(pid: int) -> list[psutil.Process]:
    """A process and its descendants (none when it is gone)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


class Sampler:
    """Samples the flow's process tree and the Prefect server's every `interval_s` on a thread:
    each process's RSS, peak RSS (VmHWM) and CPU time; PostgreSQL's CPU time."""

    def __init__(self, flow_pid: int, server_pid: int, interval_s: float) -> None:
        self.flow_pid = flow_pid
        self.server_pid = server_pid
        self.interval_s = interval_s
        self.seen: dict[int, Seen] = {}
        self.tree_rss_kib = 0  # the most the flow's processes held together in one sample
        self.postgres_cpu: dict[int, tuple[float, float]] = {}  # pid: (first, last) CPU s
        self._workers = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cluster-sampler", daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self._sample()
            if self._stop.wait(self.interval_s):
                return

    def _role(self, process: psutil.Process, server: bool) -> str:
        """The role; Dask workers numbered (a restarted worker gets a new number)."""
        if server:
            return SERVER if process.pid == self.server_pid else f"{SERVER} ({process.name()})"
        role = role_of(process)
        if role != "dask worker":
            return role
        self._workers += 1
        return f"{role} {self._workers}"

    def _sample(self) -> None:
        tree_rss = 0
        for server, processes in ((False, _tree(self.flow_pid)), (True, _tree(self.server_pid))):
            for process in processes:
                try:
                    with process.oneshot():
                        rss = process.memory_info().rss // 1024
                        times = process.cpu_times()
                except psutil.Error:
                    continue
                cpu = times.user + times.system
                seen = self.seen.get(process.pid)
                if seen is None:
                    # The flow's processes count from their start, the server's from now.
                    role = self._role(process, server)
                    seen = self.seen[process.pid] = Seen(role, cpu_from=cpu if server else 0.0)
                seen.rss_kib = max(seen.rss_kib, rss)
                seen.hwm_kib = max(seen.hwm_kib, _hwm_kib(process.pid), rss)
                seen.cpu_s = cpu - seen.cpu_from
                if not server:
                    tree_rss += rss
        self.tree_rss_kib = max(self.tree_rss_kib, tree_rss)
        self._sample_postgres()

    def _sample_postgres(self) -> None:
        """CPU time of the PostgreSQL server's processes (the CRM and warehouse work)."""
        for process in psutil.process_iter(["name", "cpu_times"]):
            if process.info["name"] != "postgres" or process.info["cpu_times"] is None:
                continue
            cpu = process.info["cpu_times"].user + process.info["cpu_times"].system
            first = self.postgres_cpu.get(process.pid, (cpu, cpu))[0]
            self.postgres_cpu[process.pid] = (first, cpu)

    def by_role(self) -> dict[str, Seen]:
        """Peaks and CPU per role (processes of one role summed for CPU, maxed for memory)."""
        out: dict[str, Seen] = {}
        for seen in self.seen.values():
            role = out.setdefault(seen.role, Seen(seen.role))
            role.rss_kib = max(role.rss_kib, seen.rss_kib)
            role.hwm_kib = max(role.hwm_kib, seen.hwm_kib)
            role.cpu_s += seen.cpu_s
        return out

    def postgres_cpu_s(self) -> float:
        """PostgreSQL's CPU seconds while sampled (backends that came and went between two
        samples are missed)."""
        return sum(last - first for first, last in self.postgres_cpu.values())


def _tree_cpu_s(pid: int) -> float:
    """User + system CPU of a process and every descendant it has."""
    total = 0.0
    for process in _tree(pid):
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


# One run ---------------------------------------------------------------------------------------


@dataclass
class Run:
    """What one flow run did and used."""

    runner: str
    rows: int
    campaign_id: str
    flow: FlowRun
    stages: dict[str, float]
    tasks: TaskRuns
    state: str | None
    flow_s: float | None
    roles: dict[str, Seen]
    processes: int
    tree_rss_mib: float
    tree_cpu_s: float
    sampled_cpu_s: float
    server_cpu_s: float
    postgres_cpu_s: float
    recorded: int
    funnel: dict[str, int]
    load_before: list[float] | None
    load_after: list[float] | None
    interval_s: float
    memory_lines: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.runner} {self.rows:,}"

    @property
    def max_rss_mib(self) -> float:
        """The largest peak of any process of the flow's tree."""
        tree = [s.hwm_kib for r, s in self.roles.items() if not r.startswith(SERVER)]
        return max(tree, default=0) / 1024

    def as_json(self) -> dict[str, Any]:
        """The run's figures for the JSON file."""
        return {
            "runner": self.runner,
            "rows": self.rows,
            "campaign_id": self.campaign_id,
            "exit_code": self.flow.code,
            "state": self.state,
            "wall_s": self.flow.wall_s,
            "flow_run_s": self.flow_s,
            "prefect_flow_run_s": self.tasks.flow_run_s,
            "stages_s": self.stages,
            "task_runs": dict(self.tasks.by_name),
            "task_run_s": self.tasks.run_s,
            "peak_rss_mib": {r: s.hwm_kib / 1024 for r, s in self.roles.items()},
            "sampled_rss_mib": {r: s.rss_kib / 1024 for r, s in self.roles.items()},
            "cpu_s": {r: s.cpu_s for r, s in self.roles.items()},
            "processes": self.processes,
            "tree_rss_mib": self.tree_rss_mib,
            "tree_cpu_s": self.tree_cpu_s,
            "sampled_cpu_s": self.sampled_cpu_s,
            "server_cpu_s": self.server_cpu_s,
            "postgres_cpu_s": self.postgres_cpu_s,
            "recorded": self.recorded,
            "funnel": self.funnel,
            "load_before": self.load_before,
            "load_after": self.load_after,
            "memory_lines": self.memory_lines[:20],
        }


def flow_env(
    crm_url: str, warehouse_url: str, home: Path, api: str, runner: str, args: argparse.Namespace
) -> dict[str, str]:
    """The flow's environment: the scratch databases, the running Prefect API, the task runner;
    nothing of this shell's own WhatsApp, warehouse, partition or Dask settings."""
    env = {k: v for k, v in prefect_env(home / "prefect").items() if not k.startswith(CLEARED_ENV)}
    env.update(
        PREFECT_HOME=str(home / "prefect"),  # prefect_env's, cleared with the others above
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_API_URL=api,
        CRM_DATABASE_URL=crm_url,
        WAREHOUSE_DATABASE_URL=warehouse_url,
        WA_DATA_DIR=str(home / "data"),
        WA_PARTITION_DIR=str(home / "partitions"),
        WA_TASK_RUNNER=runner,
        DASK_WORKERS=str(args.workers),
        DASK_THREADS_PER_WORKER=str(args.threads_per_worker),
        DASK_WORKER_MEMORY=args.worker_memory,
        PYTHONUNBUFFERED="1",
    )
    return env


def outcome_rows(url: str, campaign_id: str) -> int:
    """Rows the run wrote to wa_recipients."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            query = select(func.count()).where(recipients.c.campaign_id == campaign_id)
            return int(conn.execute(query).scalar_one())
    finally:
        engine.dispose()


def run_flow(
    runner: str,
    rows: int,
    crm_url: str,
    home: Path,
    api: str,
    server_pid: int,
    args: argparse.Namespace,
) -> Run:
    """One dry run of the flow, sampled; its own warehouse database, dropped after."""
    campaign_id = f"bench-cluster-{runner}-{rows}-{uuid.uuid4().hex[:8]}"
    params = home / f"{campaign_id}.json"
    params.write_text(
        json.dumps(
            {
                "campaign_id": campaign_id,
                "template": DEMO_TEMPLATE,
                "audience": {"query": DEMO_AUDIENCE_QUERY},
                "default_region": "US",
                "chunk_size": args.chunk_size,
                "dry_run": True,
            }
        )
    )
    command = [sys.executable, "-m", "flows.broadcast", "--params", str(params)]
    if args.py_spy is not None:
        args.py_spy.mkdir(parents=True, exist_ok=True)
        spy = Path(sys.executable).with_name("py-spy")
        suffix = {"flamegraph": "svg", "raw": "txt", "speedscope": "json"}[args.py_spy_format]
        out = args.py_spy / f"{runner}-{rows}.{suffix}"
        command = [
            *(str(spy), "record", "--subprocesses", "--rate", "20", "--format"),
            *(args.py_spy_format, "-o", str(out), "--", *command),
        ]
    shutil.rmtree(home / "partitions", ignore_errors=True)
    deadline = args.deadline_per_million * max(1.0, rows / 1_000_000)
    with scratch_postgres() as warehouse_url:
        env = flow_env(crm_url, warehouse_url, home, api, runner, args)
        load_before = load_average()
        server_cpu = _tree_cpu_s(server_pid)
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        with (
            flow_child(command, env) as (process, output),
            Sampler(process.pid, server_pid, args.interval) as sampler,
        ):
            code = wait_or_stop(process, deadline)
            exited = time.monotonic()
        children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        server_cpu = _tree_cpu_s(server_pid) - server_cpu
        load_after = load_average()
        flow = FlowRun(started, exited, code, output)
        tasks = settled_task_runs(home / "prefect")
        recorded = outcome_rows(warehouse_url, campaign_id)
    if args.log_dir is not None:
        args.log_dir.mkdir(parents=True, exist_ok=True)
        (args.log_dir / f"{runner}-{rows}.log").write_text(output.text() + "\n")
    begins, ends = output.first(FLOW_BEGINS), output.first(FLOW_ENDS)
    if code != 0 or ends is None or ends[1]["state"] != "Completed":
        print(output.text()[-6000:], file=sys.stderr, flush=True)
    stages = {}
    for _, line in output.lines:
        found = STAGE_LINE.search(line)
        if found:
            stages[found["stage"]] = float(found["seconds"])
    roles = sampler.by_role()
    tree_cpu = (children_after.ru_utime - children_before.ru_utime) + (
        children_after.ru_stime - children_before.ru_stime
    )
    return Run(
        runner=runner,
        rows=rows,
        campaign_id=campaign_id,
        flow=flow,
        stages=stages,
        tasks=tasks,
        state=ends[1]["state"] if ends else None,
        flow_s=ends[0] - begins[0] if begins and ends else None,
        roles=roles,
        processes=sum(1 for s in sampler.seen.values() if not s.role.startswith(SERVER)),
        tree_rss_mib=sampler.tree_rss_kib / 1024,
        tree_cpu_s=tree_cpu,
        sampled_cpu_s=sum(s.cpu_s for r, s in roles.items() if not r.startswith(SERVER)),
        server_cpu_s=server_cpu,
        postgres_cpu_s=sampler.postgres_cpu_s(),
        recorded=recorded,
        funnel=funnel_lines(output),
        load_before=load_before,
        load_after=load_after,
        interval_s=args.interval,
        memory_lines=[
            line for _, line in output.lines if "WARNING" in line and MEMORY_WARNING.search(line)
        ],
    )


# Figures ---------------------------------------------------------------------------------------


def run_figures(run: Run, *, rss_target: bool) -> list[Figure]:
    """One run's figures, each named after it."""
    label = run.label
    stages_s = sum(run.stages.values())
    out = [
        Figure(
            f"{label}: total time",
            run.flow.wall_s,
            "s",
            note=f"the flow process, start to exit; exit code {run.flow.code}, flow run "
            f"{run.state or 'unknown'}; load average before {run.load_before}, after "
            f"{run.load_after}",
        ),
        Figure(
            f"{label}: flow run",
            run.flow_s,
            "s",
            note="'Beginning flow run' to 'Finished in state'"
            + (f"; Prefect's record {run.tasks.flow_run_s:.1f} s" if run.tasks.flow_run_s else ""),
        ),
    ]
    out += [
        Figure(f"{label}: stage {stage}", seconds, "s", note=_task_note(run.tasks, stage))
        for stage, seconds in run.stages.items()
    ]
    out += [
        Figure(
            f"{label}: flow time in no stage",
            None if run.flow_s is None else run.flow_s - stages_s,
            "s",
            note="flow run - sum of the stages: connections, the embedded sandbox, the lock, "
            "start-run, the cluster's start (Dask) and shutdown, estimate, report",
        ),
        Figure(
            f"{label}: customers without an outcome row",
            run.rows - run.recorded,
            "",
            Target("<=", 0),
            note=f"{run.recorded:,} rows in wa_recipients for the run's campaign; funnel: "
            f"planned {run.funnel.get('planned (dry run)', 0):,}",
        ),
    ]
    for role, seen in sorted(run.roles.items()):
        out.append(
            Figure(
                f"{label}: peak RSS, {role}",
                seen.hwm_kib / 1024,
                "MiB",
                note=f"largest sampled RSS {seen.rss_kib / 1024:.0f} MiB; CPU {seen.cpu_s:.1f} s"
                + ("; outside the flow's tree" if role.startswith(SERVER) else ""),
            )
        )
    out += [
        Figure(
            f"{label}: peak RSS, any process of the run",
            run.max_rss_mib,
            "MiB",
            TARGET_RSS_MIB if rss_target else None,
            note=f"the largest VmHWM of the {run.processes} processes of the flow's tree "
            f"(sampled every {run.interval_s:g} s); their sum peaked at "
            f"{run.tree_rss_mib:.0f} MiB in one sample"
            + (
                f"; {len(run.memory_lines)} memory warnings in the log"
                if run.memory_lines
                else "; no memory warning in the log"
            ),
        ),
        Figure(
            f"{label}: CPU per 1,000 customers",
            run.tree_cpu_s / run.rows * 1_000_000,
            "ms",
            note=f"user + system of the flow process and its reaped descendants: "
            f"{run.tree_cpu_s:.1f} s (sampled per process: {run.sampled_cpu_s:.1f} s); besides, "
            f"the Prefect server {run.server_cpu_s:.1f} s, PostgreSQL ~{run.postgres_cpu_s:.1f} s",
        ),
    ]
    return out


def _task_note(tasks: TaskRuns, stage: str) -> str:
    """The stage's task runs as Prefect recorded them."""
    names = {
        "extract": ["extract"],
        "consent + normalise": ["chunk"],
        "opt-outs + dedupe + plan + rules": ["shape"],
        "planned": ["finish"],
        "record": ["record"],
    }.get(stage, [])
    count = sum(tasks.by_name.get(name, 0) for name in names)
    if not count:
        return ""
    own = sum(tasks.run_s.get(name, 0.0) for name in names)
    return f"{count} task run{'s' if count > 1 else ''}, {own:.1f} s own time in all"


def comparison_figures(threads: Run, small: Run, large: Run) -> list[Figure]:
    """The issue's ratios between the runs."""
    scale = SCALE_SLACK * large.rows / small.rows

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None or b == 0 else a / b

    return [
        Figure(
            f"dask {small.rows:,} / threads {small.rows:,}",
            ratio(small.flow.wall_s, threads.flow.wall_s),
            "x",
            TARGET_DASK_OVER_THREADS,
            note=f"total times {small.flow.wall_s:.1f} s / {threads.flow.wall_s:.1f} s; flow runs "
            f"{_ratio_text(ratio(small.flow_s, threads.flow_s))}",
        ),
        Figure(
            f"dask {large.rows:,} / dask {small.rows:,}",
            ratio(large.flow.wall_s, small.flow.wall_s),
            "x",
            Target("<=", round(scale, 2)),
            note=f"total times {large.flow.wall_s:.1f} s / {small.flow.wall_s:.1f} s "
            f"(target {SCALE_SLACK:g} x {large.rows / small.rows:g}); flow runs "
            f"{_ratio_text(ratio(large.flow_s, small.flow_s))}; against threads "
            f"{small.rows:,}: {_ratio_text(ratio(large.flow.wall_s, threads.flow.wall_s))}",
        ),
    ]


def _ratio_text(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f} x"


# Main ------------------------------------------------------------------------------------------


def _sizes(text_: str) -> list[int]:
    sizes = [int(part.replace("_", "")) for part in text_.split(",") if part.strip()]
    if len(sizes) != 2 or not 0 < sizes[0] < sizes[1]:
        raise argparse.ArgumentTypeError("two sizes, small then large, e.g. 100000,1000000")
    return sizes


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench cluster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--rows",
        type=_sizes,
        default=[1_000_000, 10_000_000],
        help="small,large audience (default: the issue's 1000000,10000000, ~25 min)",
    )
    parser.add_argument("--chunk-size", type=int, default=50_000, help="the flow's chunk_size")
    parser.add_argument("--workers", type=int, default=DASK_WORKERS, help="DASK_WORKERS")
    parser.add_argument(
        "--threads-per-worker", type=int, default=DASK_THREADS, help="DASK_THREADS_PER_WORKER"
    )
    parser.add_argument("--worker-memory", default=DASK_MEMORY, help="DASK_WORKER_MEMORY")
    parser.add_argument("--batch", type=int, default=500_000, help="customers generated at once")
    parser.add_argument("--distinct", type=float, default=0.6, help="share of distinct numbers")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between samples")
    parser.add_argument(
        "--deadline-per-million",
        type=float,
        default=900.0,
        help="seconds a run may take per million customers (at least that) before it is stopped",
    )
    parser.add_argument("--log-dir", type=Path, help="keep each flow's output in this folder")
    parser.add_argument(
        "--py-spy", type=Path, help="record each flow's tree with py-spy (CPU) into this folder"
    )
    parser.add_argument(
        "--py-spy-format", choices=("flamegraph", "raw", "speedscope"), default="flamegraph"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Load the CRM, start Prefect, run the three dry runs, print the figures."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.chunk_size < 1 or args.batch < 1 or args.interval <= 0:
        parser.error("--chunk-size, --batch and --interval must be positive")
    small, large = args.rows
    load_start = load_average()
    runs: list[Run] = []
    with (
        scratch_postgres() as crm_url,
        tempfile.TemporaryDirectory(prefix="wa-bench-cluster-") as directory,
        ExitStack() as stack,
    ):
        home = Path(directory)
        (home / "prefect").mkdir()
        loaded = load_customers(crm_url, 1, small, args)
        print(f"CRM: {small:,} customers loaded in {loaded:.1f} s", flush=True)
        api, server_s = stack.enter_context(prefect_server(home / "prefect"))
        server_pid = _server_pid(home / "prefect")
        print(f"Prefect server {api} answered in {server_s:.1f} s", flush=True)
        for runner in ("threads", "dask"):
            print(f"{runner} {small:,}: running", flush=True)
            runs.append(run_flow(runner, small, crm_url, home, api, server_pid, args))
        grown = load_customers(crm_url, small + 1, large, args)
        print(f"CRM: grown to {large:,} customers in {grown:.1f} s", flush=True)
        print(f"dask {large:,}: running", flush=True)
        runs.append(run_flow("dask", large, crm_url, home, api, server_pid, args))
    threads, dask_small, dask_large = runs
    figures = comparison_figures(threads, dask_small, dask_large)
    figures += [f for run in runs for f in run_figures(run, rss_target=run is dask_large)]
    title = (
        f"cluster: broadcast dry runs through Prefect (one server), CRM + warehouse in "
        f"PostgreSQL; threads and Dask ({args.workers} workers x {args.threads_per_worker} "
        f"threads, {args.worker_memory}) at {small:,}, Dask at {large:,} customers"
    )
    report(
        "cluster",
        title,
        figures,
        {
            "rows": args.rows,
            "chunk_size": args.chunk_size,
            "workers": args.workers,
            "threads_per_worker": args.threads_per_worker,
            "worker_memory": args.worker_memory,
            "distinct": args.distinct,
            "seed": args.seed,
            "interval_s": args.interval,
            "load_average_start": load_start,
            "crm_load_s": [loaded, grown],
            "prefect_server_start_s": server_s,
            "runs": [run.as_json() for run in runs],
        },
    )
    return 0 if all(run.flow.code == 0 for run in runs) else 1


def _server_pid(prefect_home: Path) -> int:
    """The pid of the `prefect server start` serving this PREFECT_HOME."""
    for process in psutil.process_iter(["cmdline", "environ"]):
        try:
            command = process.info["cmdline"] or []
            environ = process.info["environ"] or {}
        except psutil.Error:
            continue
        if "server" in command and environ.get("PREFECT_HOME") == str(prefect_home):
            return process.pid
    raise RuntimeError("the Prefect server's process was not found")


if __name__ == "__main__":
    raise SystemExit(main())
