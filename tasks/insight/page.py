"""The campaign report as one self-contained HTML file: inline SVG charts, tables, no links out."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from html import escape
from typing import Any

import pandas as pd

from connectors.masking import mask_phones_in
from tasks.insight import charts
from tasks.insight.figures import CampaignFigures

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { padding: 0.25rem 0.6rem; border-bottom: 1px solid #ddd; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
svg { max-width: 100%; height: auto; }
.note { color: #666; font-size: 0.9rem; }
"""


def build_html(figures: CampaignFigures, generated_at: datetime) -> str:
    """The whole report page."""
    title = f"Campaign {figures.campaign_id}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="note">From the warehouse at {generated_at:%Y-%m-%d %H:%M} UTC.</p>',
        "<h2>Funnel</h2>",
        _svg(charts.funnel_chart(figures.funnel)),
        _table(
            ["stage", "customers", "share of customers read", "kept from the stage before"],
            [
                (s, f"{c:,}", f"{sh:.1%}", f"{k:.1%}")
                for s, c, sh, k in figures.funnel.itertuples(index=False)
            ],
            numeric=(1, 2, 3),
        ),
        "<h2>Deliveries over time</h2>",
        _svg(charts.timeline_chart(figures.timeline, figures.bucket)),
        "<h2>Exclusions and failures by reason</h2>",
        *_reasons(figures.reasons),
        "<h2>Cost by country</h2>",
        *_costs(figures.costs),
        "<h2>Runs</h2>",
        _runs(figures.runs),
        "</body></html>",
    ]
    return "\n".join(parts)


def _svg(data: bytes) -> str:
    return f"<figure>{data.decode()}</figure>"


def _reasons(reasons: pd.DataFrame) -> list[str]:
    if reasons.empty:
        return ['<p class="note">No customer was excluded, deferred or failed.</p>']
    return [
        _svg(charts.reasons_chart(reasons)),
        _table(
            ["kind", "outcome: reason", "customers"],
            [(k, lbl, f"{n:,}") for k, lbl, n in reasons.itertuples(index=False)],
            numeric=(2,),
        ),
    ]


def _costs(costs: pd.DataFrame) -> list[str]:
    if costs.empty:
        return [
            '<p class="note">No billable delivery priced yet (costs come with the Cloud '
            "API's pricing statuses).</p>"
        ]
    rows = [
        (m, f"{n:,}", "no rate" if usd is None else f"${usd:,.2f}")
        for m, n, usd in costs.itertuples(index=False)
    ]
    chart = [_svg(charts.cost_chart(costs))] if costs["cost_usd"].notna().any() else []
    return [*chart, _table(["country", "billable messages", "cost (USD)"], rows, numeric=(1, 2))]


def _runs(runs: pd.DataFrame) -> str:
    header = ["run", "started (UTC)", "finished", "status", "customers", "sent", "excluded"]
    counts = ["customers", "messages_sent", "excluded", "deferred", "send_failed", "unknown"]
    rows = [
        (
            f"{str(r['run_id'])[:8]}…#{int(r['attempt'])}",
            _when(r["started_at"]),
            _when(r["finished_at"]),
            mask_phones_in(str(r["status"])) + (" (dry run)" if bool(r["dry_run"]) else ""),
            *(f"{int(r[name]):,}" for name in counts),
        )
        for r in runs.to_dict("records")
    ]
    return _table([*header, "deferred", "send failed", "unknown"], rows, numeric=range(4, 10))


def _when(value: Any) -> str:
    if value is None or value is pd.NaT:
        return "-"
    return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M:%S")


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], numeric: Iterable[int]) -> str:
    right = set(numeric)
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{escape(v)}</td>' if i in right else f"<td>{escape(v)}</td>"
            for i, v in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
