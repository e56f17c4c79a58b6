"""`python -m connectors.webhooks --port 8090`: receive webhooks in the foreground until stopped.

Settings come from the environment (see `connectors.webhooks.settings`); SIGINT or SIGTERM stops
after the requests in flight are committed and answered.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import uvicorn

from connectors.settings import mask_url
from connectors.webhooks.app import ReceiverApp
from connectors.webhooks.server import uvicorn_config
from connectors.webhooks.settings import ReceiverSettings


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until a signal; exits 2 when neither WEBHOOK_TOKEN nor WHATSAPP_APP_SECRET is set."""
    parser = argparse.ArgumentParser(prog="python -m connectors.webhooks", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        settings = ReceiverSettings.from_env()
    except ValueError as exc:
        parser.error(str(exc))
    if settings.token is None and settings.app_secret is None:
        parser.error("set WEBHOOK_TOKEN (v1 webhooks) and/or WHATSAPP_APP_SECRET (Cloud API)")
    app = ReceiverApp(settings)
    server = uvicorn.Server(uvicorn_config(app, host=args.host, port=args.port))
    print(
        f"webhook receiver on http://{args.host}:{args.port}: POST /webhooks/v1/<WEBHOOK_TOKEN> "
        f"(or Basic auth on /webhooks/v1), POST /webhooks/cloud (signed); warehouse "
        f"{mask_url(settings.warehouse_url.get_secret_value())}",
        flush=True,
    )
    server.run()
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
