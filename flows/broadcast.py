"""The broadcast flow: CRM → consent → normalise + dedupe → plan → rules → verify → send → store."""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from prefect import flow, get_run_logger, runtime
from pydantic import SecretStr, ValidationError

from connectors.errors import StopRunError
from connectors.masking import masked_errors, safe_error, secrets_in
from connectors.settings import Connections, SecretBlocks, mask_url
from connectors.vocabulary import RunStatus
from connectors.warehouse.lease import Lease
from connectors.whatsapp import PhoneFacts, Template, WhatsAppSettings
from flows.connections import connections, exclusive, sender_facts, settle_webhooks
from flows.runner import remote_scheduler, task_runner
from flows.stages import PrefectRunner, Prepared, prepare
from tasks.campaign import Campaign
from tasks.costs import cost_report_task, estimate_task
from tasks.insight.artifact import publish_charts
from tasks.partition.stages import Check, sum_counts
from tasks.partition.store import Store
from tasks.partition.task import record_task
from tasks.record import (
    finish_run_task,
    reconcile_deliveries,
    sent_by_attempt,
    start_run_task,
)
from tasks.report import Progress, advance_progress, publish_report, start_progress
from tasks.rules.task import Rules
from tasks.send.senders import SenderPlan, describe_plan, plan_senders
from tasks.send.task import SenderDone, describe_send, send_through
from tasks.summary import (
    RunFacts,
    RunReport,
    build_report,
    describe_senders,
    format_funnel,
)
from tasks.template import Fill, resolve_template_task

T = TypeVar("T")


class SendersStoppedError(StopRunError):
    """Some of the campaign's senders stopped for causes of their own; the others finished and
    every outcome was recorded: the run ends failed so that someone looks at those numbers."""

    def __init__(self, stopped: dict[str, str], senders: int, report: RunReport) -> None:
        whys = "; ".join(stopped.values())
        deferred = report["funnel"]["deferred: their sender stopped"]
        super().__init__(
            f"{len(stopped)} of {senders} senders stopped ({whys}); the others finished, "
            f"{deferred:,} customers of the stopped ones are deferred to the next run"
        )
        self.report = report


def current_run_id() -> str:
    """The Prefect flow run id (kept by a UI retry), or a fresh id outside Prefect."""
    run_id = runtime.flow_run.id
    return str(run_id) if run_id else str(uuid.uuid4())


def current_attempt() -> int:
    """Which attempt of the flow run this is (a retry keeps the id and counts up from 1)."""
    return max(1, int(runtime.flow_run.run_count or 1))


@flow(name="broadcast", task_runner=task_runner())
def broadcast(campaign: Campaign, secrets: SecretBlocks | None = None) -> RunReport:
    """Send the campaign's template once to every consenting customer and record every outcome.

    `secrets` names Prefect Secret blocks for connection secrets; the values never pass through
    parameters. Unnamed ones come from the environment (see README).
    """
    return _broadcast(campaign, secrets)


@masked_errors
def _broadcast(campaign: Campaign, secrets: SecretBlocks | None) -> RunReport:
    """The flow's body; whatever ends it leaves no secret, SQL parameter or number behind."""
    run_id, attempt = current_run_id(), current_attempt()
    holder = f"{run_id}#{attempt}"
    with (
        connections(secrets, remote_scheduler()) as conns,
        exclusive(conns, campaign.campaign_id, holder, campaign.lease_seconds) as lease,
    ):
        wh = conns.warehouse_url
        start_run_task(
            wh, run_id, attempt, campaign.campaign_id, campaign.template.name, campaign.dry_run
        )
        try:
            report = _run(campaign, conns, run_id, attempt, lease)
        except SendersStoppedError as exc:
            error = safe_error(exc, secrets_in([conns]))
            _record_failure(wh, run_id, attempt, lease, error, exc.report["run_counts"])
            publish_report(exc.report)
            publish_charts(wh, campaign.campaign_id)
            raise
        except BaseException as exc:
            _record_failure(wh, run_id, attempt, lease, safe_error(exc, secrets_in([conns])))
            raise
        finish_run_task(wh, run_id, attempt, RunStatus.COMPLETED, report["run_counts"])
    publish_report(report)
    publish_charts(wh, campaign.campaign_id)
    return report


def _record_failure(
    wh: SecretStr,
    run_id: str,
    attempt: int,
    lease: Lease,
    error: str,
    counts: dict[str, int] | None = None,
) -> None:
    """Close the failed attempt's row with its counts (by default what it sent, read back from
    the ledger); never hides the error that ended it."""
    try:
        counts = counts or {"messages_sent": sent_by_attempt(wh, lease)}
        finish_run_task(wh, run_id, attempt, RunStatus.FAILED, counts, error[:2000])
    except Exception as exc:  # the warehouse may be why the run failed
        get_run_logger().warning("failed run not recorded: %s", type(exc).__name__)


def _run(
    campaign: Campaign, conns: Connections, run_id: str, attempt: int, lease: Lease
) -> RunReport:
    """The stages on the flow's task runner, its cluster's start awaited however they end."""
    run = PrefectRunner()
    try:
        return _stages(run, campaign, conns, run_id, attempt, lease)
    finally:
        run.started()


def _stages(
    run: PrefectRunner,
    campaign: Campaign,
    conns: Connections,
    run_id: str,
    attempt: int,
    lease: Lease,
) -> RunReport:
    """The stages, in the order of the diagram; the frames in the run's store, removed after."""
    wh = conns.warehouse_url
    plans, described = _plan_senders(run, campaign, conns)
    sender = plans[0].settings  # the account's: template look-ups, rules, reachability
    fill = run.once(resolve_template_task, campaign.template, sender)
    template = fill.template
    rules = campaign_rules(campaign, template, sender, sender_facts().values())
    check = None
    if not campaign.dry_run:
        batch, days = campaign.contacts_batch_size, campaign.undeliverable_suppress_days
        check = Check(plans, wh, batch, days)
    with run_store(conns, campaign.campaign_id, f"{run_id}-{attempt}") as store:
        prepared = prepare(
            run, campaign, conns.crm_url, wh, lease, store, fill=fill, rules=rules, check=check
        )
        cost_key = (wh, run_id, attempt, campaign.campaign_id)
        priced = run.once(estimate_task, prepared.markets, template.category, *cost_key)
        sent, send_seconds = [], 0.0
        if not campaign.dry_run:
            send_started = time.monotonic()
            sent = _send(run, campaign, plans, fill, run_id, lease, store, prepared, wh)
            send_seconds = time.monotonic() - send_started
        record = (store, len(sent), campaign.campaign_id, run_id, wh, datetime.now(UTC))
        recorded = run.each(record_task, prepared.partitions, *record)
        run.done("record", (r.tally for r in recorded))
    settle_webhooks()
    costs = run.once(cost_report_task, priced, wh, campaign.campaign_id, campaign.dry_run)
    facts = RunFacts(
        run_id=run_id,
        attempt=attempt,
        campaign_id=campaign.campaign_id,
        template=campaign.template.address,
        dry_run=campaign.dry_run,
        rate_limit=sum(p.rate_per_s for p in plans if not p.stopped),
        warehouse=mask_url(wh.get_secret_value()),
        contacts_checked=prepared.checks.checked,
        contacts_from_cache=prepared.checks.from_cache,
        in_doubt_from_earlier_runs=prepared.in_doubt,
        send_seconds=send_seconds,
        senders=described,
        api=sender.api,
        suppressed=prepared.checks.suppressed,
        limit=prepared.rules,
        costs=tuple(costs),
    )
    examples = [e for r in recorded for e in r.examples]
    delivery = reconcile_deliveries(wh, campaign.campaign_id)
    report = build_report(facts, sum_counts(recorded), examples, delivery)
    stopped = {d.sender_id: d.stopped for d in sent if d.stopped}
    if stopped:
        raise SendersStoppedError(stopped, len(plans), report)
    return report


def _plan_senders(
    run: PrefectRunner, campaign: Campaign, conns: Connections
) -> tuple[list[SenderPlan], str]:
    """Each sender's pace (or why it may not send) from what the preflight read; and the
    senders described for the logs and the summary."""
    route = {"marketing_route": campaign.marketing_route}
    senders = [s.model_copy(update=route) for s in conns.senders]
    facts = sender_facts()
    described = describe_senders(facts)
    run.logger.info("senders: %s", described)
    plans = plan_senders(
        senders, facts, rate_per_s=campaign.rate_limit_per_s, concurrency=campaign.concurrency
    )
    run.logger.info("sending through: %s", "; ".join(describe_plan(p) for p in plans))
    return plans, described


@contextmanager
def run_store(conns: Connections, campaign_id: str, attempt_key: str) -> Iterator[Store]:
    """The run's store of frames, removed when the run ends however it ends (it holds numbers)."""
    store = Store.for_run(conns.partitions_root, campaign_id, attempt_key)
    try:
        yield store
    finally:
        store.clear()


def campaign_rules(
    campaign: Campaign,
    template: Template,
    sender: WhatsAppSettings,
    facts: Iterable[PhoneFacts | None],
) -> Rules:
    """The rules for this campaign: its settings, the template's category and the portfolio's
    messaging limit, one budget for all its numbers (the campaign's `messaging_limit` overrides
    what the Cloud numbers say; where they differ, the lowest holds)."""
    limit = campaign.messaging_limit
    if limit is None:
        limit = min((f.messaging_limit for f in facts if f and f.messaging_limit), default=None)
    return Rules(
        category=template.category,
        paused_regions=tuple(campaign.marketing_paused_regions),
        send_window=campaign.send_window,
        messaging_limit=limit,
        business_id=sender.waba_id if sender.api == "cloud" else None,
    )


def _send(
    run: PrefectRunner,
    campaign: Campaign,
    plans: list[SenderPlan],
    fill: Fill,
    run_id: str,
    lease: Lease,
    store: Store,
    prepared: Prepared,
    wh: SecretStr,
) -> list[SenderDone]:
    """Every sender one task, one stream at its own rate over all partitions, with a progress
    artifact per sender (one for the campaign when it has one sender)."""
    progress = {}
    for plan in plans:
        owed = prepared.owed.get(plan.sender_id, 0)
        suffix = "" if len(plans) == 1 else plan.sender_id
        progress[plan.sender_id] = Progress(
            start_progress(campaign.campaign_id, owed, suffix), total=owed
        )
    started = time.monotonic()
    done = run.each(
        send_through,
        plans,
        store,
        prepared.partitions,
        plans,
        lease,
        run_id,
        fill,
        wh,
        campaign.circuit_breaker,
        progress,
    )
    for plan in plans:
        bar = progress[plan.sender_id]
        advance_progress(bar.artifact_id, bar.total, bar.total)
    run.said("send", describe_send(done, time.monotonic() - started))
    return done


def print_report(report: RunReport) -> None:
    """Print the funnel and where to find the results."""
    lines = report["funnel"]
    print(
        f"\nCampaign {report['campaign_id']} — run {report['run_id']}"
        + (" (dry run)" if report["dry_run"] else "")
    )
    print(format_funnel(lines))
    if report["api"] == "cloud":
        print(
            f"  reachability: {report['suppressed_undeliverable']:,} numbers left out as "
            "undeliverable by an earlier send (131026)"
        )
    else:
        print(
            f"  contact checks: {report['contacts_checked']:,} asked, "
            f"{report['contacts_from_cache']:,} reused from the 7-day cache"
        )
    if report["messaging_limit"] is not None:
        deferred = lines["deferred: messaging limit (24 h)"]
        print(
            f"  messaging limit: {report['messaging_limit']:,} unique recipients / 24 h, "
            f"{report['messaged_in_window']:,} messaged in the window, "
            f"{deferred:,} {'would be ' if report['dry_run'] else ''}deferred"
        )
    if report["costs"]:
        print("\nCost at the rate card (estimate before sending; billed by Meta so far):")
        print("\n".join(f"  {line}" for line in report["costs"]))
    if not report["dry_run"] and lines["sent in this run"] == 0 and lines["sent by an earlier run"]:
        print(
            f"\nNothing new sent: {lines['sent by an earlier run']:,} customers were already "
            f"messaged by earlier runs of campaign {report['campaign_id']}."
        )
    print(
        f"\nResults: {report['warehouse']}\n"
        "  tables wa_recipients (one row per customer), wa_deliveries (the send ledger), "
        "wa_campaign_runs, wa_contact_checks, wa_cost_estimates; views wa_campaign_funnel, "
        "wa_outcome_reasons, wa_delivery_timeline, wa_campaign_costs\n"
        f"  e.g. SELECT kind, outcome, reason, customers FROM wa_outcome_reasons "
        f"WHERE campaign_id = '{report['campaign_id']}';\n"
        f"  report: python -m flows.report {report['campaign_id']} --out campaign.html"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m flows.broadcast --params campaign.json [--dry-run] [--campaign-id ID]`."""
    parser = argparse.ArgumentParser(prog="python -m flows.broadcast", description=main.__doc__)
    parser.add_argument("--params", type=Path, required=True, help="campaign parameters (JSON)")
    parser.add_argument("--campaign-id", help="override the file's campaign_id")
    parser.add_argument("--dry-run", action="store_true", help="plan only: check and send nothing")
    parser.add_argument("--resend-unknown", action="store_true", help="resend sends left in doubt")
    args = parser.parse_args(argv)
    try:
        values = json.loads(args.params.read_text())
        if args.campaign_id:
            values["campaign_id"] = args.campaign_id
        if args.dry_run:
            values["dry_run"] = True
        if args.resend_unknown:
            values["resend_unknown"] = True
        campaign = Campaign.model_validate(values)
    except (OSError, ValueError, ValidationError) as exc:
        print(f"campaign parameters refused ({args.params}): {exc}", file=sys.stderr)
        return 2
    try:
        report = broadcast(campaign)
    except Exception as exc:  # the flow run is already marked failed in Prefect
        print(f"\nbroadcast failed: {safe_error(exc)}", file=sys.stderr)
        return 1
    print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
