"""`python -m flows.report CAMPAIGN_ID [--out campaign.html]`: a campaign's one-file HTML report
from the warehouse alone (WAREHOUSE_DATABASE_URL, else the embedded one)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from connectors.masking import safe_error
from connectors.settings import Connections, mask_url
from connectors.warehouse.connect import warehouse
from tasks.insight.figures import NoCampaignDataError, load
from tasks.insight.page import build_html


def write_report(warehouse_url: str, campaign_id: str, out: Path) -> Path:
    """Build the campaign's report from the warehouse and write it to `out`."""
    if url_is_missing_file(warehouse_url):  # never create an empty SQLite warehouse
        raise NoCampaignDataError(campaign_id)
    figures = load(warehouse(warehouse_url), campaign_id)
    out.write_text(build_html(figures, datetime.now(UTC)), encoding="utf-8")
    return out


def url_is_missing_file(url: str) -> bool:
    """True for a SQLite URL whose file does not exist."""
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").exists()


def main(argv: Sequence[str] | None = None) -> int:
    """Write a campaign's report; exit 2 when the warehouse holds nothing of it."""
    parser = argparse.ArgumentParser(prog="python -m flows.report", description=__doc__)
    parser.add_argument("campaign_id")
    parser.add_argument("--out", type=Path, help="the HTML file (default: <campaign_id>.html)")
    args = parser.parse_args(argv)
    url = Connections.from_env().warehouse_url.get_secret_value()
    out = args.out or Path(f"{args.campaign_id}.html")
    try:
        write_report(url, args.campaign_id, out)
    except NoCampaignDataError as exc:
        print(f"no report: {exc} (warehouse {mask_url(url)})", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"report failed: {safe_error(exc)}", file=sys.stderr)
        return 1
    print(f"Report of campaign {args.campaign_id}: {out.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
