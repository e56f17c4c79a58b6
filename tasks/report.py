"""Report: what a run leaves in the Prefect UI (funnel table, summary, progress per campaign)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from uuid import UUID

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from tasks.summary import RunReport, format_funnel

logger = logging.getLogger(__name__)


def artifact_key(campaign_id: str, kind: str) -> str:
    """A stable key per campaign and kind (lowercase letters, digits, dashes), so the UI keeps
    the history of every run of the campaign under one name."""
    slug = re.sub(r"[^a-z0-9]+", "-", campaign_id.lower()).strip("-")[:80] or "campaign"
    return f"{slug}-{re.sub(r'[^a-z0-9]+', '-', kind.lower()).strip('-')}"


def start_progress(campaign_id: str, total: int, sender: str = "") -> UUID | None:
    """A progress artifact at 0 % for the sends about to start (of one `sender`, when named)."""
    artifact = create_progress_artifact(
        progress=0.0 if total else 100.0,
        key=artifact_key(campaign_id, f"progress-{sender}" if sender else "progress"),
        description=f"Sending {total:,} messages" + (f" through {sender}" if sender else ""),
    )
    return artifact if isinstance(artifact, UUID) else None


def advance_progress(artifact_id: UUID | None, done: int, total: int) -> None:
    """Move the progress artifact to `done` of `total` sends."""
    if artifact_id is not None and total:
        update_progress_artifact(artifact_id=artifact_id, progress=min(100.0, 100.0 * done / total))


class Progress:
    """Reports sends done to the progress artifact; a failed update is logged, never raised:
    the artifact must not stop a campaign mid-send."""

    def __init__(
        self,
        artifact_id: UUID | None,
        *,
        total: int,
        update: Callable[[UUID | None, int, int], None] = advance_progress,
    ) -> None:
        self.artifact_id = artifact_id
        self.total = total
        self._update = update

    def __call__(self, done: int) -> None:
        try:
            self._update(self.artifact_id, done, self.total)
        except Exception as exc:  # cosmetic: the ledger, not the artifact, holds the truth
            logger.warning("progress artifact not updated: %s", type(exc).__name__)


def _checks_line(report: RunReport) -> str:
    """What the verify stage did: contact checks (v1), or numbers it suppressed (Cloud)."""
    if report["api"] == "cloud":
        return (
            f"- reachability: {report['suppressed_undeliverable']:,} numbers left out as "
            "undeliverable by an earlier send (131026)"
        )
    return (
        f"- contact checks: {report['contacts_checked']:,} asked, "
        f"{report['contacts_from_cache']:,} reused from the 7-day cache"
    )


def funnel_rows(funnel: dict[str, int]) -> list[dict[str, str]]:
    """The funnel table's rows: each line's customers with thousands separators and its share
    of the customers read."""
    total = funnel.get("customers read", 0)
    return [
        {
            "stage": stage,
            "customers": f"{count:,}",
            "share of customers read": f"{count / total:.1%}" if total else "-",
        }
        for stage, count in funnel.items()
    ]


def _reason_table(title: str, pairs: list[tuple[str, int]]) -> list[str]:
    if not pairs:
        return []
    lines = ["", f"## {title}", "", "| outcome: reason | customers |", "|---|---:|"]
    return lines + [f"| `{k}` | {v:,} |" for k, v in pairs]


def _sent_line(report: RunReport) -> list[str]:
    """Says so when a real run sent nothing new (a re-run of a finished campaign)."""
    funnel = report["funnel"]
    if report["dry_run"] or funnel.get("sent in this run", 0):
        return []
    earlier = funnel.get("sent by an earlier run", 0)
    why = f": {earlier:,} customers were already messaged by earlier runs" if earlier else ""
    return ["", f"**Nothing new sent**{why}."]


def summary_markdown(report: RunReport) -> str:
    """The run's story: what ran, what it sent, why customers were left out or failed."""
    lines = [
        f"# Campaign `{report['campaign_id']}`",
        "",
        f"- run: `{report['run_id']}` (attempt {report['attempt']})",
        "- dry run: **yes**, nothing checked, nothing sent"
        if report["dry_run"]
        else "- dry run: no",
        f"- template: `{report['template']}`",
        f"- senders: {report['senders'] or '-'}",
        _checks_line(report),
        f"- sends: {report['messages_sent']:,} in {report['send_seconds']:.1f} s "
        f"({report['send_rate']:.1f}/s against a limit of {report['rate_limit']:g}/s)",
        *_sent_line(report),
        "",
        "```",
        format_funnel(report["funnel"]),
        "```",
    ]
    if report["messaging_limit"] is not None:
        lines += [
            "",
            f"- messaging limit: {report['messaging_limit']:,} unique recipients / 24 h, "
            f"{report['messaged_in_window']:,} messaged in the window",
        ]
    if report["costs"]:
        lines += ["", "## Cost (USD at the rate card: estimate, and billed so far)", ""]
        lines += report["costs"]
    lines += _reason_table("Top exclusion reasons", report["top_exclusions"])
    lines += _reason_table("Top failure reasons", report["top_failures"])
    if report["failure_examples"]:
        lines += ["", "## Examples (masked)", "", "| number | outcome | reason |", "|---|---|---|"]
        lines += [f"| `{p}` | {o} | {r} |" for p, o, r in report["failure_examples"]]
    return "\n".join(lines)


def publish_report(report: RunReport) -> None:
    """The funnel as a table artifact and the run's story as a markdown artifact."""
    campaign_id = report["campaign_id"]
    create_table_artifact(
        key=artifact_key(campaign_id, "funnel"),
        table=funnel_rows(report["funnel"]),
        description=f"Funnel of campaign {campaign_id}, run {report['run_id']}",
    )
    create_markdown_artifact(
        key=artifact_key(campaign_id, "summary"),
        markdown=summary_markdown(report),
        description=f"Summary of campaign {campaign_id}",
    )
