"""`python -m connectors.whatsapp.cloud.sandbox`: serve the Cloud sandbox until Ctrl-C."""

from __future__ import annotations

import argparse
import threading
from collections.abc import Sequence

from connectors.whatsapp.cloud.sandbox.config import (
    DEFAULT_APP_SECRET,
    DEFAULT_DISPLAY_NUMBER,
    DEFAULT_PHONE_NUMBER_ID,
    DEFAULT_TOKEN,
    DEFAULT_WABA_ID,
    ENDPOINTS,
    GRAPH_VERSION,
    MESSAGING_LIMITS,
    CloudSandboxConfig,
    Endpoint,
)
from connectors.whatsapp.cloud.sandbox.faults import CloudFault, check_fault
from connectors.whatsapp.cloud.sandbox.server import start_cloud_sandbox
from connectors.whatsapp.onprem.sandbox.config import FAULT_KINDS

RULE = (
    "Number rule (digits of `to`): <8 or >15 digits or last digit 0 -> failed 131026; on MARKETING "
    "templates last digit 9 -> failed 131049, 8 -> failed 131050, 7 -> held_for_quality_assessment "
    "then sent, delivered; every other -> sent, delivered, read."
)


def _throughput(value: str) -> float | None:
    """`N` messages per second, or `off`."""
    return None if value == "off" else float(value)


def _fault(value: str) -> tuple[str, str, float]:
    """`ENDPOINT:KIND:P`, e.g. `messages:503:0.05` or `messages:code:131042:0.01`."""
    endpoint, _, rest = value.partition(":")
    kind, _, probability = rest.rpartition(":")
    return endpoint, kind, float(probability)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m connectors.whatsapp.cloud.sandbox", description=__doc__, epilog=RULE
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1")
    add("--port", type=int, default=8080, help="0 picks a free port")
    add("--token", action="append", help=f"accepted access token (default {DEFAULT_TOKEN})")
    add("--graph-version", default=GRAPH_VERSION, help="the version printed; any vN.M is served")
    add("--waba-id", default=DEFAULT_WABA_ID)
    add("--phone-number-id", default=DEFAULT_PHONE_NUMBER_ID)
    add("--display-phone-number", default=DEFAULT_DISPLAY_NUMBER, help="digits")
    add("--messaging-limit", choices=MESSAGING_LIMITS, default="TIER_100K")
    add("--throughput", type=_throughput, default=80.0, metavar="N", help="sends/s, or off")
    add("--throughput-burst", type=int, help="bucket size (default: one second's worth)")
    add("--throttle-status", type=int, choices=(429, 400), default=429, help="HTTP of 130429")
    add("--throttle-retry-after-s", type=int, help="Retry-After on 130429 (Meta sends none)")
    add("--pair-interval-s", type=float, default=6.0, help="131056 window per recipient; 0: off")
    add("--no-marketing-on-messages", action="store_true", help="MARKETING on /messages: 131063")
    add("--no-bsuids", action="store_true", help="no user_id / recipient_user_id")
    add("--text-format-code", type=int, choices=(100, 132012), default=100)
    add("--latency-ms", type=float, default=0.0, help="added to every answer")
    add(
        "--fault",
        type=_fault,
        action="append",
        default=[],
        metavar="ENDPOINT:KIND:P",
        help=f"random fault; endpoints {', '.join(ENDPOINTS)}; kinds {', '.join(FAULT_KINDS)}, "
        "or code:<n> (a Cloud error code's answer)",
    )
    add("--seed", type=int, default=0, help="seed of the random faults")
    add("--hang-s", type=float, default=30.0)
    add("--webhook-url", help="where signed webhooks go")
    add("--app-secret", default=DEFAULT_APP_SECRET, help="HMAC key of X-Hub-Signature-256")
    return parser


def config_from_args(args: argparse.Namespace) -> CloudSandboxConfig:
    """A CloudSandboxConfig from parsed arguments (raises ValueError on a bad combination)."""
    rates: dict[Endpoint, dict[CloudFault, float]] = {}
    for endpoint, kind, probability in args.fault:
        if endpoint not in ENDPOINTS:
            raise ValueError(f"--fault {endpoint}:{kind}: use ENDPOINT:KIND:P (see --help)")
        rates.setdefault(endpoint, {})[check_fault(kind)] = probability
    return CloudSandboxConfig(
        tokens=tuple(args.token or (DEFAULT_TOKEN,)),
        graph_version=args.graph_version,
        waba_id=args.waba_id,
        phone_numbers={args.phone_number_id: args.display_phone_number},
        messaging_limit=args.messaging_limit,
        throughput_per_s=args.throughput,
        throughput_burst=args.throughput_burst,
        throttle_status=args.throttle_status,
        throttle_retry_after_s=args.throttle_retry_after_s,
        pair_interval_s=args.pair_interval_s,
        marketing_on_messages=not args.no_marketing_on_messages,
        bsuids=not args.no_bsuids,
        text_format_code=args.text_format_code,
        latency_s=args.latency_ms / 1000,
        fault_rates=rates,
        fault_seed=args.seed,
        hang_s=args.hang_s,
        webhook_url=args.webhook_url,
        app_secret=args.app_secret,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until interrupted, after telling the user how to reach and authenticate."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    hooks = config.webhook_url or 'off (POST /sandbox/webhook {"url": ...})'
    with start_cloud_sandbox(config, host=args.host, port=args.port) as running:
        print(
            f"WhatsApp Cloud API sandbox at {running.graph_url}\n"
            f"  token (Authorization: Bearer): {config.tokens[0]}\n"
            f"  phone number id: {config.phone_number_id}   WABA id: {config.waba_id}\n"
            f"  app secret (X-Hub-Signature-256): {config.app_secret}\n"
            f"  webhooks: {hooks}\n"
            f"  {RULE}\n"
            "  Admin: GET /sandbox/requests, /sandbox/stats. Ctrl-C stops.",
            flush=True,
        )
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopping", flush=True)


if __name__ == "__main__":
    main()
