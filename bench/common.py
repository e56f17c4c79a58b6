"""Figures with their targets: print them as a table and keep them as JSON in bench/results/."""

from __future__ import annotations

import json
import os
import platform
import resource
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

import httpx
from sqlalchemy import create_engine, make_url, text

RESULTS = Path(__file__).resolve().parent / "results"
POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MIB = 1024 * 1024

Comparison = Literal[">=", "<=", "<", ">"]
_PASSES: dict[Comparison, Callable[[float, float], bool]] = {
    ">=": lambda value, bound: value >= bound,
    "<=": lambda value, bound: value <= bound,
    ">": lambda value, bound: value > bound,
    "<": lambda value, bound: value < bound,
}


@dataclass(frozen=True, slots=True)
class Target:
    """A bound a figure should meet, e.g. `Target(">=", 10)`."""

    op: Comparison
    bound: float

    def met(self, value: float) -> bool:
        """True when the value meets the bound."""
        return _PASSES[self.op](value, self.bound)

    def __str__(self) -> str:
        return f"{self.op} {self.bound:g}"


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured value, its unit and, when an issue sets one, its target."""

    name: str
    value: float | None
    unit: str
    target: Target | None = None
    note: str = ""

    @property
    def met(self) -> bool | None:
        """Whether the target is met; None without a target or a value."""
        if self.target is None or self.value is None:
            return None
        return self.target.met(self.value)

    def as_json(self) -> dict[str, Any]:
        """The figure as a JSON-ready dict."""
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "target": None if self.target is None else str(self.target),
            "met": self.met,
            "note": self.note or None,
        }


def number(value: float | None) -> str:
    """A value written for people: thousands separators, about three significant digits."""
    if value is None:
        return "–"
    if isinstance(value, int) or (value == int(value) and abs(value) >= 100):
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    if abs(value) >= 0.01:
        return f"{value:.3f}"
    return f"{value:.3g}"


def _met_text(met: bool | None) -> str:
    return "–" if met is None else ("yes" if met else "NO")


def table(title: str, figures: Sequence[Figure]) -> str:
    """The figures as an aligned text table, target and verdict beside each, notes below."""
    header = ("figure", "value", "unit", "target", "met")
    rows = [
        (
            f.name + (f" [{i}]" if f.note else ""),
            number(f.value),
            f.unit,
            "–" if f.target is None else str(f.target),
            _met_text(f.met),
        )
        for i, f in enumerate(figures, start=1)
    ]
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    align = ["<", ">", "<", "<", "<"]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths, strict=True))

    out = [title, line(header), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    out += [f"[{i}] {f.note}" for i, f in enumerate(figures, start=1) if f.note]
    return "\n".join(out)


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages: other work on a shared machine skews figures."""
    try:
        return [round(load, 2) for load in os.getloadavg()]
    except OSError:
        return None


def code_state() -> dict[str, Any]:
    """The commit measured, and which files of the measured code differ from it."""
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        try:
            done = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, check=False
            )
        except OSError:
            return ""
        return done.stdout if done.returncode == 0 else ""

    # Porcelain lines are "XY path": two status columns, a space, the path.
    changed = git("status", "--porcelain", "--", "tasks", "connectors", "flows")
    return {
        "commit": git("rev-parse", "--short", "HEAD").strip() or None,
        "uncommitted": [line[3:] for line in changed.splitlines() if line.strip()],
    }


def environment() -> dict[str, Any]:
    """Where and with what the figures were measured."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.node(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "platform": platform.platform(),
        "load_average": load_average(),
        "code": code_state(),
        "python": platform.python_version(),
        "pandas": _version("pandas"),
        "phonenumbers": _version("phonenumbers"),
        "httpx": _version("httpx"),
    }


def report(name: str, title: str, figures: Sequence[Figure], params: Mapping[str, Any]) -> Path:
    """Print the table and write `bench/results/<name>.json`; returns the JSON's path."""
    where = environment()
    heading = (
        f"{title}\n{where['date']} on {where['machine']}, {where['cpus_usable']} CPUs, "
        f"load average {where['load_average']} (other work skews the figures); code at "
        f"{where['code']['commit']}"
        + (" + uncommitted changes" if where["code"]["uncommitted"] else "")
    )
    print(table(heading, figures), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {
        "bench": name,
        **where,
        "argv": sys.argv[1:],
        "params": dict(params),
        "figures": [f.as_json() for f in figures],
    }
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    print(f"(written to {path})", flush=True)
    return path


def peak_rss_mib(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident memory so far (ru_maxrss), in MiB, of this process or its largest child."""
    peak = resource.getrusage(who).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / MIB if sys.platform == "darwin" else peak / 1024


def _status_kib(pid: int | str, field: str) -> int:
    """A `Vm*` line of /proc/<pid>/status in KiB, 0 when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _children(pid: int) -> list[str]:
    """Pids whose parent is `pid` (scans /proc: the children file needs a kernel option)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                # The command name is bracketed and may hold spaces: split after it.
                fields = stat.read().rpartition(")")[2].split()
        except OSError:
            continue
        if fields and int(fields[1]) == pid:
            found.append(entry)
    return found


class TreeMemory:
    """Samples this process's RSS plus its children's peak RSS every `interval_s` (Linux only).

    ru_maxrss cannot see children well: a child started with vfork + exec inherits the parent's
    high-water mark. The children's own VmHWM is exact per child; the sum is taken per sample.
    """

    def __init__(self, interval_s: float = 0.1) -> None:
        self.interval_s = interval_s
        self.peak_kib = 0
        self.child_peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="tree-memory", daemon=True)
        self.available = os.path.exists("/proc/self/status")

    def _sample(self) -> None:
        me = os.getpid()
        while True:
            peaks = [_status_kib(child, "VmHWM:") for child in _children(me)]
            self.child_peak_kib = max([self.child_peak_kib, *peaks])
            self.peak_kib = max(self.peak_kib, _status_kib(me, "VmRSS:") + sum(peaks))
            if self._stop.wait(self.interval_s):
                return

    def __enter__(self) -> TreeMemory:
        if self.available:
            self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self.available:
            self._thread.join()

    @property
    def peak_mib(self) -> float | None:
        """Largest sampled RSS of the process tree, in MiB."""
        return self.peak_kib / 1024 if self.available else None

    @property
    def child_peak_mib(self) -> float | None:
        """Largest peak RSS of one child, in MiB."""
        return self.child_peak_kib / 1024 if self.available else None


def free_port() -> int:
    """A local port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_answering(url: str, process: subprocess.Popen[bytes], deadline_s: float) -> str | None:
    """Poll GET `url` until it answers 200 (None); else say why not: the child exited, or
    `deadline_s` passed."""
    deadline = time.monotonic() + deadline_s
    with httpx.Client(timeout=5.0) as http:
        while True:
            try:
                if http.get(url).status_code == 200:
                    return None
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                return f"not answering on {url} after {deadline_s:g} s"
            try:
                code = process.wait(timeout=0.05)  # the pause between polls; notices an exit
            except subprocess.TimeoutExpired:
                continue
            return f"exited with {code}"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), 0.0 elsewhere."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def scratch_postgres() -> Iterator[str]:
    """The URL of a fresh database `wa_bench_<random>` on the PostgreSQL test server, dropped
    on the way out."""
    name = f"wa_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
        try:
            yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    finally:
        admin.dispose()


def busiest_window(times: Sequence[float], window_s: float = 1.0) -> int:
    """The most of `times` (seconds, any order) that fall within any one window of `window_s`:
    the sliding count a rate ceiling is checked against."""
    ordered = sorted(times)
    busiest = start = 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= window_s:
            start += 1
        busiest = max(busiest, end - start + 1)
    return busiest
