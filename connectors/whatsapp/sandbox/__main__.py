"""`python -m connectors.whatsapp.sandbox [--api onprem|cloud] ...`: the chosen sandbox's own CLI.

Every argument other than `--api` goes to that sandbox unchanged (`--help` shows its flags).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from connectors.whatsapp.cloud.sandbox.__main__ import main as cloud_main
from connectors.whatsapp.onprem.sandbox.__main__ import main as onprem_main


def main(argv: Sequence[str] | None = None) -> None:
    """Pick the flavour from `--api` (default onprem) and hand it the other arguments."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--api", choices=("onprem", "cloud"), default="onprem")
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    (cloud_main if args.api == "cloud" else onprem_main)(rest)


if __name__ == "__main__":
    main()
