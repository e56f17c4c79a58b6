"""`python -m bench`: every benchmark in turn; `python -m bench NAME [flags]`: one, with its flags.

Run together, each benchmark gets a fresh Python process, so one's imports, caches and peak
memory do not colour the next one's figures.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

HERE: Final = Path(__file__).resolve().parent
ROOT: Final = HERE.parent
# Run by `python -m bench`, in this order; each is `bench/<name>.py` with `main(argv) -> int`.
# Most defaults take a few minutes, the issues' full sizes are flags; cluster runs issue 18's
# own sizes (~10 min). See bench/README.md.
BENCHES: Final = (
    "phones",
    "send",
    "senders",
    "webhooks",
    "funnel",
    "cluster",
    "campaign",
    "rules",
    "templates",
)


def benches() -> dict[str, str]:
    """The benchmarks `python -m bench` runs, each with its docstring's first line."""
    found = {}
    for name in BENCHES:
        tree = ast.parse((HERE / f"{name}.py").read_text())  # not imported: --help stays fast
        found[name] = (ast.get_docstring(tree) or "").split("\n")[0]
    return found


def runnable(name: str) -> bool:
    """True for any benchmark module here, listed in BENCHES or not (run one by name)."""
    if not name.isidentifier() or name.startswith("_") or name == "common":
        return False
    return (HERE / f"{name}.py").is_file()


def _usage() -> str:
    lines = [
        "usage: python -m bench [NAME [flags]]",
        "",
        "Without NAME every benchmark runs with its defaults; NAME --help lists its flags.",
    ]
    lines += [f"  {name:9} {about}" for name, about in benches().items()]
    return "\n".join(lines)


def run_all() -> int:
    """Each benchmark in its own process, one after another; non-zero if any failed."""
    failed = []
    for name in benches():
        print(f"\n=== bench {name} ===", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", f"bench.{name}"], cwd=ROOT)
        print(f"=== bench {name}: exit {code}, {time.perf_counter() - started:.0f} s ===")
        if code != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to one benchmark's `main`, or run them all."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        return run_all()
    name, flags = args[0], args[1:]
    if name in ("-h", "--help"):
        print(_usage())
        return 0
    if not runnable(name):
        print(f"unknown benchmark {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"bench.{name}")
    code: int = module.main(flags)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
