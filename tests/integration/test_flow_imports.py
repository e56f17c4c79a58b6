"""A production run loads no emulator: the demo CRM, sandbox and receiver only when embedded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EMULATORS = ("connectors.whatsapp.onprem.sandbox", "connectors.webhooks", "connectors.demo")


def test_importing_the_flow_loads_no_emulator() -> None:
    probe = (
        "import sys, flows.broadcast; "
        f"print([m for m in sys.modules if m.startswith({EMULATORS!r}) or m == 'flows.embedded'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.strip() == "[]"
