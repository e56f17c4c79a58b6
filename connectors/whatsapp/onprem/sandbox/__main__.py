"""`python -m connectors.whatsapp.onprem.sandbox`: serve the sandbox in the foreground to Ctrl-C."""

from __future__ import annotations

import argparse
import threading
from collections.abc import Sequence

from connectors.whatsapp.onprem.sandbox.config import FAULT_KINDS, RateLimit, SandboxConfig
from connectors.whatsapp.onprem.sandbox.server import start_sandbox


def _rate(value: str) -> RateLimit | None:
    """`N` (burst 3N, as the API's 50/150), `N:BURST`, or `off`."""
    if value == "off":
        return None
    rate, _, burst = value.partition(":")
    return float(rate), int(burst) if burst else max(1, int(3 * float(rate)))


def _fault(value: str) -> tuple[str, str, float]:
    """`ENDPOINT:KIND:P`, e.g. `messages:503:0.05`."""
    endpoint, kind, probability = value.split(":")
    return endpoint, kind, float(probability)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m connectors.whatsapp.onprem.sandbox", description=__doc__
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password", default="sandbox-password")
    parser.add_argument("--api-key", action="append", help="D360-API-KEY accepted (repeatable)")
    parser.add_argument("--token", action="append", default=[], help="static bearer token")
    parser.add_argument("--token-lifetime-s", type=float, default=7 * 24 * 3600)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every answer")
    parser.add_argument("--always-valid", action="store_true", help="v2.43: every number valid")
    parser.add_argument("--shuffle-contacts", action="store_true")
    parser.add_argument("--success-status", type=int, choices=(200, 201), default=201)
    parser.add_argument("--rate-limit-messages", type=_rate, default=(50.0, 150), metavar="N")
    parser.add_argument("--rate-limit-other", type=_rate, default=(20.0, 60), metavar="N")
    parser.add_argument("--rate-limit-login", type=_rate, default=(20.0, 60), metavar="N")
    parser.add_argument(
        "--fault",
        type=_fault,
        action="append",
        default=[],
        metavar="ENDPOINT:KIND:P",
        help=f"random fault, e.g. messages:503:0.05; kinds {', '.join(FAULT_KINDS)}",
    )
    parser.add_argument(
        "--retry-after-s", type=int, help="Retry-After of a 429 (default: one request's refill)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random faults")
    parser.add_argument("--hang-s", type=float, default=30.0)
    parser.add_argument("--webhook-url", help="where status pushes go")
    return parser


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    """A SandboxConfig from parsed arguments."""
    rates: dict[str, dict[str, float]] = {}
    for endpoint, kind, probability in args.fault:
        rates.setdefault(endpoint, {})[kind] = probability
    return SandboxConfig(
        username=args.username,
        password=args.password,
        api_keys=tuple(args.api_key or ("sandbox-api-key",)),
        static_tokens=tuple(args.token),
        token_lifetime_s=args.token_lifetime_s,
        latency_s=args.latency_ms / 1000,
        always_valid=args.always_valid,
        shuffle_contacts=args.shuffle_contacts,
        success_status=args.success_status,
        rate_limit_messages=args.rate_limit_messages,
        rate_limit_other=args.rate_limit_other,
        rate_limit_login=args.rate_limit_login,
        retry_after_s=args.retry_after_s,
        fault_rates=rates,  # type: ignore[arg-type]  # checked in SandboxConfig.__post_init__
        fault_seed=args.seed,
        hang_s=args.hang_s,
        webhook_url=args.webhook_url,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until interrupted, after telling the user how to reach and authenticate."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    with start_sandbox(config, host=args.host, port=args.port) as running:
        print(
            f"WhatsApp v1 sandbox at {running.url}. Log in with POST /v1/users/login and HTTP "
            f"Basic {config.username}:{config.password}, then send 'Authorization: Bearer "
            f"<token>'; or send 'D360-API-KEY: {config.api_keys[0]}'. Numbers with 8-15 digits "
            "are WhatsApp users unless the last digit is 0; Brazilian mobiles (55 + area + 9 + "
            "8 digits) get a wa_id without the 9. Admin: GET /sandbox/requests, /sandbox/stats. "
            "Ctrl-C stops.",
            flush=True,
        )
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopping", flush=True)


if __name__ == "__main__":
    main()
