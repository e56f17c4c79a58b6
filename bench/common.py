"""Figures with their targets: print them as a table and keep them as JSON in bench/results/."""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

RESULTS = Path(__file__).resolve().parent / "results"
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
        return f"{self.op} {number(self.bound)}"


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
    if value == int(value) and abs(value) >= 100:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
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


def environment() -> dict[str, Any]:
    """Where and with what the figures were measured."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.node(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "pandas": _version("pandas"),
        "phonenumbers": _version("phonenumbers"),
        "httpx": _version("httpx"),
    }


def report(
    name: str, title: str, figures: Sequence[Figure], params: Mapping[str, Any]
) -> Path:
    """Print the table and write `bench/results/<name>.json`; returns the JSON's path."""
    print(table(title, figures), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {
        "bench": name,
        **environment(),
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
