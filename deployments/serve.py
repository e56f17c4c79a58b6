"""Serve the broadcast flow without a work pool: `.venv/bin/python deployments/serve.py`."""

from __future__ import annotations

import json
from pathlib import Path

from prefect.schedules import Cron

from flows.broadcast import broadcast

DEMO_CAMPAIGN = Path(__file__).with_name("demo-campaign.json")


def main() -> None:
    """Register the `broadcast/broadcast-served` deployment and run its flow runs here."""
    broadcast.serve(
        name="broadcast-served",
        description="The demo campaign, served from this process (no work pool needed).",
        schedules=[Cron("0 9 * * 1", timezone="Europe/Berlin")],
        parameters={"campaign": json.loads(DEMO_CAMPAIGN.read_text())},
        global_limit=1,
        tags=["whatsapp", "campaign"],
    )


if __name__ == "__main__":
    main()
