"""`python -m connectors.warehouse migrate [--url URL] [--revision REV]`: migrate a warehouse."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from connectors.settings import Connections, mask_url
from connectors.warehouse.connect import engine_for
from connectors.warehouse.migrate import current_revision, upgrade


def main(argv: Sequence[str] | None = None) -> int:
    """Bring the warehouse (WAREHOUSE_DATABASE_URL, else the embedded SQLite) to a revision."""
    parser = argparse.ArgumentParser(
        prog="python -m connectors.warehouse", description=main.__doc__
    )
    parser.add_argument("command", choices=["migrate"])
    parser.add_argument("--url", help="warehouse URL (default: WAREHOUSE_DATABASE_URL or embedded)")
    parser.add_argument("--revision", default="head")
    args = parser.parse_args(argv)
    connections = Connections.from_env()
    url = args.url or connections.warehouse_url.get_secret_value()
    if url.startswith("sqlite:///"):
        connections.data_dir.mkdir(parents=True, exist_ok=True)
    engine = engine_for(url)
    before = current_revision(engine)
    upgrade(engine, args.revision)
    print(f"warehouse {mask_url(url)}: revision {before or 'none'} -> {current_revision(engine)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
