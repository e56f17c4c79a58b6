"""The report's charts in the flow run's artifacts: one markdown artifact with PNG images
(the Prefect UI shows `data:image/png` images; it blanks inline SVG)."""

from __future__ import annotations

import base64
import logging

from prefect.artifacts import create_markdown_artifact
from pydantic import SecretStr

from connectors.warehouse.connect import warehouse
from tasks.insight.figures import CampaignFigures, load
from tasks.report import artifact_key

logger = logging.getLogger(__name__)


def _image(title: str, png: bytes) -> list[str]:
    return [
        f"## {title}",
        "",
        f"![{title}](data:image/png;base64,{base64.b64encode(png).decode()})",
        "",
    ]


def charts_markdown(figures: CampaignFigures) -> str:
    """The campaign's charts as markdown with inline PNG images."""
    from tasks.insight import charts  # matplotlib loads here, not when the flow is imported

    lines = [f"# Campaign `{figures.campaign_id}` in charts", ""]
    lines += _image("Funnel", charts.funnel_chart(figures.funnel, "png"))
    lines += _image(
        f"Messages per {figures.bucket}",
        charts.timeline_chart(figures.timeline, figures.bucket, "png"),
    )
    if not figures.reasons.empty:
        lines += _image(
            "Exclusions and failures by reason", charts.reasons_chart(figures.reasons, "png")
        )
    if figures.costs["cost_usd"].notna().any():
        lines += _image("Cost by country", charts.cost_chart(figures.costs, "png"))
    lines.append("The same charts, with their tables: `python -m flows.report <campaign_id>`.")
    return "\n".join(lines)


def publish_charts(warehouse_url: SecretStr, campaign_id: str) -> None:
    """The campaign's charts as a markdown artifact; a failure is logged, never raised (the
    warehouse, not the picture, holds the run's results)."""
    try:
        figures = load(warehouse(warehouse_url.get_secret_value()), campaign_id)
        create_markdown_artifact(
            key=artifact_key(campaign_id, "charts"),
            markdown=charts_markdown(figures),
            description=f"Charts of campaign {campaign_id}",
        )
    except Exception as exc:
        logger.warning("charts artifact not published: %s", type(exc).__name__)
