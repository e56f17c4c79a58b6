"""Campaign (issue: end-to-end time): the whole `broadcast` flow through Prefect at 1,000 msg/s.

`--recipients` customers (default 100,000, the issue's run, ~4 min) are written into a
`crm_contacts` table in a scratch PostgreSQL database `wa_bench_<random>`, which is the warehouse
too, and dropped afterwards. Every one of them is messaged: numbers come from
`bench.phones.crm_rows` (10 regions, mixed formats) and only valid, distinct numbers of WhatsApp
users (by the sandbox's rule) are kept, all with consent and a first name, so N recipients are N
messages.

The sandbox runs in its own process with `--latency-ms` (50) and a message limit of `--headroom`
(1.2) times the rate, its bucket one second of that, so the client is the pacer. The flow
runs as `python -m flows.broadcast --params <json>` in a child process (no shared GIL with the
sandbox), with the connections in its environment and a temporary Prefect API: no
PREFECT_API_URL, PREFECT_HOME in a temporary directory. Its output is read line by line with
arrival times: the stage lines ("stage: ... (x.xx s)"), Prefect's "Starting temporary server",
"Beginning flow run" and the flow run's final state. Afterwards the Prefect database left in
PREFECT_HOME gives the task runs and their own durations.

Targets: total time (the flow process from start to exit) <= 1.05 x (N / rate) + 30 s; no
one-second window of the sandbox's arrivals holds more than 1.1 x the rate.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Final

import pandas as pd
from sqlalchemy import create_engine, func, select

from bench.common import Figure, Target, busiest_window, free_port, report, wait_answering
from bench.funnel import scratch_database, seed_crm
from bench.phones import crm_rows
from bench.send import Sandbox
from connectors.demo import DEMO_AUDIENCE_QUERY, DEMO_TEMPLATE
from connectors.vocabulary import COUNTRY, OPT_IN_AT, PHONE_E164, PHONE_RAW
from connectors.warehouse.schema import deliveries
from connectors.whatsapp.onprem.sandbox import rules
from tasks.phones.normalise import normalise
from tasks.send.senders import default_concurrency

ROOT: Final = Path(__file__).resolve().parents[1]
SANDBOX_USER: Final = ("admin", "sandbox-password")
TARGET_FACTOR: Final = 1.05
TARGET_SLACK_S: Final = 30.0
CEILING: Final = 1.1
"""No one-second window may hold more than this times the rate."""
STOP_DEADLINE_S: Final = 10.0
SERVER_DEADLINE_S: Final = 90.0
FIRST_NAMES: Final = ("Ana", "Liam", "Priya", "João", "Chinedu", "Sofía", "Lukas", "Emma")
# "12:00:01.234 | INFO    | Flow run 'name' - extract: 20,000 customers, ... (1.23 s)"
STAGE_LINE: Final = re.compile(
    r"- (?P<stage>[a-z][a-z-]*): (?P<customers>[\d,]+) customers, .*\((?P<seconds>[\d.]+) s\)"
)
SERVER_STARTING: Final = "Starting temporary server"
FLOW_BEGINS: Final = re.compile(r"Beginning flow run '[^']+' for flow 'broadcast'")
FLOW_ENDS: Final = re.compile(r"Flow run '[^']+' - Finished in state (?P<state>\w+)")
SENT_LINE: Final = re.compile(r"sent in this run\s+(?P<n>[\d,]+)")
FUNNEL_LINE: Final = re.compile(r"^  (?P<label>\S.*?)\s{2,}(?P<n>[\d,]+)$")


# The CRM ---------------------------------------------------------------------------------------


def recipients_table(count: int, *, seed: int) -> pd.DataFrame:
    """`count` crm_contacts rows that all get a message: valid, distinct WhatsApp numbers."""
    size = count + count // 2 + 1000
    while True:
        frame = crm_rows(size, distinct=1.0, seed=seed)
        e164 = normalise(frame, default_region="US")[PHONE_E164]
        usable = e164.notna() & e164.map(rules.is_whatsapp_user, na_action="ignore").fillna(False)
        usable &= ~e164.duplicated()
        picked = frame.loc[usable.to_numpy(dtype=bool)].head(count).reset_index(drop=True)
        if len(picked) == count:
            break
        size *= 2
    return pd.DataFrame(
        {
            "id": range(1, count + 1),
            "fname": [FIRST_NAMES[i % len(FIRST_NAMES)] for i in range(count)],
            "mobile": picked[PHONE_RAW],
            "cc": picked[COUNTRY],
            "optin": picked[OPT_IN_AT],
            "optout": pd.Series(pd.NaT, index=picked.index, dtype=picked[OPT_IN_AT].dtype),
        }
    )


# The flow in a child process ------------------------------------------------------------------


@dataclass
class Output:
    """The flow process's output lines, each with its arrival time (monotonic seconds)."""

    lines: list[tuple[float, str]] = field(default_factory=list)

    def first(self, pattern: str | re.Pattern[str]) -> tuple[float, re.Match[str]] | None:
        """The arrival time and match of the first line matching `pattern`."""
        for at, line in self.lines:
            found = re.search(pattern, line)
            if found:
                return at, found
        return None

    def text(self) -> str:
        """Every line, as printed."""
        return "\n".join(line for _, line in self.lines)


def _read(stream: IO[str], output: Output, echo: bool) -> None:
    """Collect lines until the stream closes; echo the stage lines as they come."""
    for line in stream:
        line = line.rstrip("\n")
        output.lines.append((time.monotonic(), line))
        if echo and (STAGE_LINE.search(line) or FLOW_ENDS.search(line)):
            print(f"  flow: {line.partition(' - ')[2] or line}", flush=True)


@dataclass
class FlowRun:
    """What the flow process did, in our clock."""

    started: float
    exited: float
    code: int
    output: Output

    @property
    def wall_s(self) -> float:
        """Process start to exit."""
        return self.exited - self.started


def prefect_env(prefect_home: Path) -> dict[str, str]:
    """This environment without its Prefect settings, Prefect's home at `prefect_home`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(prefect_home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    return env


def flow_env(
    crm_url: str, api_url: str, prefect_home: Path, data_dir: Path, prefect_api: str | None
) -> dict[str, str]:
    """The flow's environment: connections, and the running Prefect API (else a temporary one)
    in its own home."""
    env = prefect_env(prefect_home)
    env.update(
        CRM_DATABASE_URL=crm_url,
        WAREHOUSE_DATABASE_URL=crm_url,
        WHATSAPP_API_URL=api_url,
        WHATSAPP_USERNAME=SANDBOX_USER[0],
        WHATSAPP_PASSWORD=SANDBOX_USER[1],
        WA_DATA_DIR=str(data_dir),
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="90",
        PYTHONUNBUFFERED="1",
    )
    if prefect_api is not None:
        env["PREFECT_API_URL"] = prefect_api
    return env


def run_flow(params: Path, env: dict[str, str], deadline_s: float, py_spy: Path | None) -> FlowRun:
    """`python -m flows.broadcast --params <json>` to its end (killed past the deadline)."""
    command = [sys.executable, "-m", "flows.broadcast", "--params", str(params)]
    if py_spy is not None:
        spy = Path(sys.executable).with_name("py-spy")
        formats = {".raw": "raw", ".txt": "raw", ".json": "speedscope"}
        kind = formats.get(py_spy.suffix, "flamegraph")
        command = [
            *(str(spy), "record", "--subprocesses", "--idle", "--rate", "50"),
            *("--format", kind, "-o", str(py_spy), "--", *command),
        ]
    started = time.monotonic()
    with flow_child(command, env) as (process, output):
        code = wait_or_stop(process, deadline_s)
        exited = time.monotonic()
    return FlowRun(started, exited, code, output)


@contextmanager
def flow_child(
    command: list[str], env: dict[str, str]
) -> Iterator[tuple[subprocess.Popen[str], Output]]:
    """The flow's command as a child in its own process group, its output read as it comes
    (and echoed); stopped if the caller fails, its output drained at the end."""
    output = Output()
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: the whole tree can be stopped
    )
    assert process.stdout is not None
    reader = threading.Thread(target=_read, args=(process.stdout, output, True), daemon=True)
    reader.start()
    try:
        yield process, output
    except BaseException:
        _stop(process)
        raise
    finally:
        reader.join(timeout=STOP_DEADLINE_S)


def wait_or_stop(process: subprocess.Popen[str], deadline_s: float) -> int:
    """The child's exit code, stopping it past the deadline."""
    try:
        return process.wait(timeout=deadline_s)
    except subprocess.TimeoutExpired:
        print(f"flow still running after {deadline_s:.0f} s: stopping it", flush=True)
        return _stop(process)


def _stop(process: subprocess.Popen[str] | subprocess.Popen[bytes]) -> int:
    """SIGINT to the flow's process group, then SIGKILL if it does not end in time."""
    if process.poll() is not None:
        return process.returncode
    os.killpg(process.pid, signal.SIGINT)
    try:
        return process.wait(timeout=STOP_DEADLINE_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return process.wait()


@contextmanager
def prefect_server(prefect_home: Path) -> Iterator[tuple[str, float]]:
    """`prefect server start` on a free port, as a deployment's runs find it already running;
    yields its API URL and the seconds it took to answer `/api/health`."""
    port = free_port()
    env = prefect_env(prefect_home)
    env["PREFECT_UI_ENABLED"] = "false"
    command = [sys.executable, "-m", "prefect", "server", "start"]
    started = time.monotonic()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}/api"
        try:
            problem = wait_answering(f"{url}/health", process, SERVER_DEADLINE_S)
            if problem is not None:
                log.seek(0)
                output = log.read().decode(errors="replace")[-4000:]
                raise RuntimeError(f"prefect server {problem}:\n{output}")
            yield url, time.monotonic() - started
        finally:
            _stop(process)


# What Prefect recorded -------------------------------------------------------------------------


@dataclass
class TaskRuns:
    """The flow run's task runs as Prefect stored them."""

    flow_run_s: float | None = None
    count: int = 0
    by_name: Counter[str] = field(default_factory=Counter)
    run_s: dict[str, float] = field(default_factory=dict)
    unfinished: int = 0

    @property
    def total_run_s(self) -> float:
        """Sum of the task runs' own durations (their bodies, as Prefect measured them)."""
        return sum(self.run_s.values())


def task_runs(prefect_home: Path) -> TaskRuns:
    """Task runs of the (only) flow run in the temporary Prefect database."""
    found = TaskRuns()
    database = prefect_home / "prefect.db"
    if not database.exists():
        return found
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        flow = conn.execute(
            "SELECT id, start_time, end_time FROM flow_run ORDER BY start_time DESC LIMIT 1"
        ).fetchone()
        if flow is None:
            return found
        flow_id, start, end = flow
        if start and end:
            found.flow_run_s = (_when(end) - _when(start)).total_seconds()
        rows = conn.execute(
            "SELECT task_key, name, start_time, end_time FROM task_run WHERE flow_run_id = ?",
            (flow_id,),
        ).fetchall()
    for _key, name, start, end in rows:
        stem = re.sub(r"-[0-9a-f]{3}$", "", str(name))
        found.count += 1
        found.by_name[stem] += 1
        if start and end:
            seconds = (_when(end) - _when(start)).total_seconds()
            found.run_s[stem] = found.run_s.get(stem, 0.0) + seconds
        else:
            found.unfinished += 1
    return found


def settled_task_runs(prefect_home: Path, deadline_s: float = 30.0) -> TaskRuns:
    """`task_runs` once the server has recorded every task run's end (a running server turns
    the flow's events into rows a moment after the flow exits)."""
    deadline = time.monotonic() + deadline_s
    found = task_runs(prefect_home)
    while (found.unfinished or found.flow_run_s is None) and time.monotonic() < deadline:
        time.sleep(0.2)  # the server's event pipeline has no signal to wait on
        found = task_runs(prefect_home)
    return found


def ledger_states(url: str) -> dict[str, int]:
    """Rows of the send ledger per state (and error code), read before the database goes."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(deliveries.c.state, deliveries.c.error_code, func.count()).group_by(
                    deliveries.c.state, deliveries.c.error_code
                )
            ).all()
    finally:
        engine.dispose()
    return {f"{state}:{code}" if code else str(state): int(n) for state, code, n in rows}


def funnel_lines(output: Output) -> dict[str, int]:
    """The funnel the flow printed at its end ("  sent in this run   20,000")."""
    found: dict[str, int] = {}
    for _, line in output.lines:
        match = FUNNEL_LINE.match(line)
        if match:
            found[match["label"]] = int(match["n"].replace(",", ""))
    return found


def _when(text: str) -> datetime:
    return datetime.fromisoformat(str(text))


@dataclass
class Arrivals:
    """When the sandbox accepted the messages (its clock): rate, and the longest pause."""

    statuses: Counter[str] = field(default_factory=Counter)
    rate: float | None = None
    span_s: float | None = None
    longest_gap_s: float = 0.0
    gap_after: int = 0
    tenths: list[float] = field(default_factory=list)  # rate within each tenth of the messages
    busiest_second: int = 0  # the most messages accepted within any one second

    @classmethod
    def of(cls, record: Sequence[tuple[float, int | None]]) -> Arrivals:
        """From the sandbox's (arrival time, status) of each /v1/messages request."""
        # A status of None: no answer went out (the client gave up, or the connection broke).
        found = cls(statuses=Counter(str(status) for _, status in record))
        accepted = sorted(at for at, status in record if status in (200, 201))
        if len(accepted) > 1:
            found.span_s = accepted[-1] - accepted[0]
            found.rate = (len(accepted) - 1) / found.span_s
            gaps = [later - earlier for earlier, later in itertools.pairwise(accepted)]
            found.longest_gap_s = max(gaps)
            found.gap_after = gaps.index(found.longest_gap_s) + 1
            step = max(1, len(accepted) // 10)
            bounds = list(range(0, len(accepted) - step + 1, step))
            found.tenths = [
                step / max(accepted[min(i + step, len(accepted) - 1)] - accepted[i], 1e-9)
                for i in bounds
            ]
        found.busiest_second = busiest_window(accepted)
        return found


# Figures ---------------------------------------------------------------------------------------


@dataclass
class Measured:
    """Everything one campaign run measured."""

    recipients: int
    rate: float
    chunk_size: int
    flow: FlowRun
    stages: dict[str, float]
    tasks: TaskRuns
    sent: int | None
    state: str | None
    temporary_server: bool
    before_server_s: float | None
    server_start_s: float | None
    flow_s: float | None
    after_flow_s: float | None
    arrivals: Arrivals
    ledger: dict[str, int]


def measured(
    recipients: int,
    rate: float,
    chunk_size: int,
    flow: FlowRun,
    tasks: TaskRuns,
    arrivals: Arrivals,
    ledger: dict[str, int],
    running_server_start_s: float | None = None,
) -> Measured:
    """Read stage times, server start and flow span out of the flow's output; with a running
    server (`running_server_start_s`, its start before the clock), there is no server start in
    the output."""
    stages: dict[str, float] = {}
    for _, line in flow.output.lines:
        found = STAGE_LINE.search(line)
        if found:
            stages[found["stage"]] = float(found["seconds"])
    server = flow.output.first(SERVER_STARTING)
    begins = flow.output.first(FLOW_BEGINS)
    ends = flow.output.first(FLOW_ENDS)
    sent = flow.output.first(SENT_LINE)
    return Measured(
        recipients=recipients,
        rate=rate,
        chunk_size=chunk_size,
        flow=flow,
        stages=stages,
        tasks=tasks,
        sent=int(sent[1]["n"].replace(",", "")) if sent else None,
        state=ends[1]["state"] if ends else None,
        temporary_server=running_server_start_s is None,
        before_server_s=server[0] - flow.started if server else None,
        server_start_s=_server_start(server, begins, running_server_start_s),
        flow_s=ends[0] - begins[0] if begins and ends else None,
        after_flow_s=flow.exited - ends[0] if ends else None,
        arrivals=arrivals,
        ledger=ledger,
    )


def _server_start(
    server: tuple[float, re.Match[str]] | None,
    begins: tuple[float, re.Match[str]] | None,
    running_server_start_s: float | None,
) -> float | None:
    """The running server's start, else the temporary one's as the flow's output shows it."""
    if running_server_start_s is not None:
        return running_server_start_s
    return begins[0] - server[0] if server and begins else None


def figures(run: Measured) -> list[Figure]:
    """The figures of the run, targets beside them."""
    ideal = run.recipients / run.rate
    bound = TARGET_FACTOR * ideal + TARGET_SLACK_S
    in_stages = sum(run.stages.values())
    out = [
        Figure(
            "total time (flow process start to exit)",
            run.flow.wall_s,
            "s",
            Target("<=", round(bound, 1)),
            note=f"1.05 x {run.recipients:,} / {run.rate:g} + 30 s; the ideal N / rate is "
            f"{ideal:.0f} s; exit code {run.flow.code}, flow run {run.state or 'unknown'}",
        ),
        Figure("total / ideal (N / rate)", run.flow.wall_s / ideal, "x"),
        Figure(
            "messages sent",
            run.sent,
            "",
            note="the flow's funnel: sent in this run",
        ),
        Figure(
            "sends not accepted",
            None if run.sent is None else run.recipients - run.sent,
            "",
            Target("<=", 0),
            note=f"ledger rows by state: {run.ledger}; sandbox answers to /v1/messages: "
            f"{dict(run.arrivals.statuses)}",
        ),
    ]
    send = run.stages.get("send")
    arrivals = run.arrivals
    out += [
        Figure(
            "send stage rate",
            None if not send else run.recipients / send,
            "msg/s",
            note=f"{run.recipients:,} / the send stage's {send or 0:.1f} s",
        ),
        Figure(
            "arrival rate at the sandbox",
            arrivals.rate,
            "msg/s",
            note=f"accepted messages / {arrivals.span_s or 0:.1f} s from the first to the last "
            "(sandbox clock)",
        ),
        Figure(
            "busiest second / rate",
            arrivals.busiest_second / run.rate,
            "x",
            Target("<=", CEILING),
            note=f"{arrivals.busiest_second:,} messages in the busiest one-second window of the "
            "sandbox's arrivals (sliding)",
        ),
        Figure(
            "longest pause between messages",
            arrivals.longest_gap_s,
            "s",
            note=f"after message {arrivals.gap_after:,} (chunks hold {run.chunk_size:,} customers)",
        ),
        Figure(
            "arrival rate, slowest tenth of the messages",
            min(arrivals.tenths, default=None),
            "msg/s",
            note="each tenth in order: " + ", ".join(f"{r:.0f}" for r in arrivals.tenths),
        ),
    ]
    out += [
        Figure(f"stage: {stage}", seconds, "s", note=_task_note(run.tasks, stage))
        for stage, seconds in run.stages.items()
    ]
    out += [
        Figure("sum of stage times", in_stages, "s"),
        Figure(
            "Prefect: temporary API server start"
            if run.temporary_server
            else "Prefect: API server start (before the clock)",
            run.server_start_s,
            "s",
            note="'Starting temporary server' to 'Beginning flow run'; in the total"
            if run.temporary_server
            else "`prefect server start` to /api/health answering; not in the total: a "
            "deployment's runs find the server running",
        ),
        Figure(
            "flow run wall time",
            run.flow_s,
            "s",
            note="'Beginning flow run' to 'Finished in state'"
            + (f"; Prefect's record: {run.tasks.flow_run_s:.1f} s" if run.tasks.flow_run_s else ""),
        ),
        Figure(
            "flow time in no stage",
            None if run.flow_s is None else run.flow_s - in_stages,
            "s",
            note="flow wall - sum of stages: connections and preflight, campaign lock, start-run "
            "(migrations), record's reconcile, artifacts, finish-run, and Prefect's task "
            "orchestration between them",
        ),
        Figure(
            "process time outside the flow run",
            None if run.flow_s is None else run.flow.wall_s - run.flow_s,
            "s",
            note=(
                f"start to 'Starting temporary server' (imports, parameters) "
                f"{_seconds(run.before_server_s)}, server start {_seconds(run.server_start_s)}, "
                f"'Finished in state' to exit (funnel printed, server stopped) "
                f"{_seconds(run.after_flow_s)}"
            )
            if run.temporary_server
            else (
                "start to 'Beginning flow run' (imports, parameters, flow run created) "
                f"{_seconds(run.flow.wall_s - (run.flow_s or 0) - (run.after_flow_s or 0))}, "
                f"'Finished in state' to exit (funnel printed) {_seconds(run.after_flow_s)}"
            ),
        ),
        Figure(
            "Prefect task runs",
            run.tasks.count,
            "",
            note=", ".join(f"{name} {n}" for name, n in sorted(run.tasks.by_name.items())),
        ),
        Figure(
            "task runs' own time",
            run.tasks.total_run_s,
            "s",
            note="sum of (end - start) of every task run, as Prefect stored them",
        ),
    ]
    return out


def _seconds(value: float | None) -> str:
    return "?" if value is None else f"{value:.1f} s"


def _task_note(tasks: TaskRuns, stage: str) -> str:
    name = {"record": "record", "opt-outs": "opt-outs"}.get(stage, stage)
    count = tasks.by_name.get(name)
    if not count:
        return ""
    return f"{count} task run{'s' if count > 1 else ''}, {tasks.run_s.get(name, 0):.2f} s own time"


# Main ------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench campaign",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--recipients", type=int, default=100_000, help="messages (default: the issue's 100,000)"
    )
    parser.add_argument("--rate", type=float, default=1000.0, help="messages per second")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="sandbox answer latency")
    parser.add_argument("--headroom", type=float, default=1.2, help="sandbox limit / rate")
    parser.add_argument(
        "--concurrency", type=int, help="in flight (default: the flow's, rate x 0.2 s + 2)"
    )
    parser.add_argument("--contacts-batch-size", type=int, default=10_000)
    parser.add_argument("--chunk-size", type=int, default=50_000, help="customers per task run")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--prefect",
        choices=("server", "temporary"),
        default="server",
        help="server (default): a `prefect server start` running before the clock starts, as "
        "deployments run; temporary: no PREFECT_API_URL, the flow starts Prefect's temporary "
        "server itself, its start in the total",
    )
    parser.add_argument("--log", type=Path, help="write the flow's whole output to this file")
    parser.add_argument(
        "--py-spy",
        type=Path,
        help="profile the flow process with py-spy into this "
        "file: .svg flame graph, .json speedscope, .raw/.txt collapsed stacks; idle time included",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Seed the CRM, start the sandbox, run the flow as a child process, print the figures."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.recipients < 1 or args.rate <= 0 or args.headroom <= 0:
        parser.error("--recipients, --rate and --headroom must be positive")
    concurrency = args.concurrency or default_concurrency(args.rate)
    bucket = math.ceil(args.rate * args.headroom)  # one second of the sandbox's limit
    started = time.perf_counter()
    table = recipients_table(args.recipients, seed=args.seed)
    print(f"{args.recipients:,} recipients generated in {time.perf_counter() - started:.1f} s")
    campaign = f"bench-campaign-{uuid.uuid4().hex[:8]}"
    params = {
        "campaign_id": campaign,
        "template": DEMO_TEMPLATE,
        "audience": {"query": DEMO_AUDIENCE_QUERY},
        "default_region": "US",
        "rate_limit_per_s": args.rate,
        "concurrency": concurrency,
        "contacts_batch_size": args.contacts_batch_size,
        "chunk_size": args.chunk_size,
    }
    ideal = args.recipients / args.rate
    deadline = 2 * (TARGET_FACTOR * ideal + TARGET_SLACK_S) + 120
    with (
        scratch_database("postgres") as url,
        tempfile.TemporaryDirectory(prefix="wa-bench-campaign-") as directory,
        ExitStack() as stack,
        Sandbox(
            "onprem", latency_ms=args.latency_ms, rate=args.rate * args.headroom, burst=bucket
        ) as sandbox,
    ):
        seed_crm(url, table)
        del table
        home = Path(directory)
        (home / "prefect").mkdir()
        (home / "params.json").write_text(json.dumps(params))
        server = (
            prefect_server(home / "prefect")
            if args.prefect == "server"
            else nullcontext((None, None))
        )
        api, server_s = stack.enter_context(server)
        if api is not None:
            print(f"Prefect server {api} answered in {server_s:.1f} s", flush=True)
        print(
            f"CRM and warehouse in a scratch PostgreSQL database; sandbox {sandbox.url} "
            f"({args.latency_ms:g} ms, {args.rate * args.headroom:g}/s, bucket {bucket}); "
            f"flow at {args.rate:g}/s, {concurrency} in flight; deadline {deadline:.0f} s",
            flush=True,
        )
        env = flow_env(url, sandbox.url, home / "prefect", home, api)
        flow = run_flow(home / "params.json", env, deadline, args.py_spy)
        tasks = settled_task_runs(home / "prefect")
        arrivals = Arrivals.of(sandbox.arrivals())
        states = ledger_states(url)
    if args.log is not None:
        args.log.write_text(flow.output.text() + "\n")
    run = measured(
        args.recipients, args.rate, args.chunk_size, flow, tasks, arrivals, states, server_s
    )
    if flow.code != 0 or run.state != "Completed":
        print(flow.output.text()[-6000:], file=sys.stderr)
    funnel = funnel_lines(flow.output)
    print("\n".join(f"  {label:<36} {n:>9,}" for label, n in funnel.items()), flush=True)
    report(
        "campaign",
        f"campaign: broadcast flow through Prefect, {args.recipients:,} recipients at "
        f"{args.rate:g}/s (sandbox {args.latency_ms:g} ms), CRM + warehouse in PostgreSQL",
        figures(run),
        {
            "recipients": args.recipients,
            "rate": args.rate,
            "latency_ms": args.latency_ms,
            "headroom": args.headroom,
            "concurrency": concurrency,
            "contacts_batch_size": args.contacts_batch_size,
            "chunk_size": args.chunk_size,
            "prefect": args.prefect,
            "prefect_server_start_s": server_s,
            "stages_s": run.stages,
            "task_runs": dict(tasks.by_name),
            "task_run_s": tasks.run_s,
            "exit_code": flow.code,
            "funnel": funnel,
            "ledger": states,
            "py_spy": str(args.py_spy) if args.py_spy else None,
        },
    )
    return 0 if flow.code == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
