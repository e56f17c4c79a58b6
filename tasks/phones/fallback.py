"""The per-number fallback: phonenumbers itself, one key at a time, in this process and in children.

A key is either `+<digits>` (the region cannot change the result, so it is left out) or
`<REGION>:<digits>`, as `tasks.phones.normalise` builds them. `tasks.phones.bulk` decides most
keys against the metadata in bulk and leaves the rest here, where large remainders are shared
with child processes. Kept free of pandas, pyarrow and prefect so that a child
(`python -m tasks.phones.fallback`) starts fast.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType, ValidationResult

from tasks.phones.verdict import Verdict

# Distinct numbers each process gets at least: below that, a child's start-up, cold metadata and
# piping cost more than it saves.
MIN_SHARE: Final = 10_000


_PARSE_ERRORS: Final = {
    NumberParseException.INVALID_COUNTRY_CODE: Verdict.INVALID_COUNTRY_CODE,
    NumberParseException.NOT_A_NUMBER: Verdict.NOT_A_NUMBER,
    NumberParseException.TOO_SHORT_AFTER_IDD: Verdict.TOO_SHORT,
    NumberParseException.TOO_SHORT_NSN: Verdict.TOO_SHORT,
    NumberParseException.TOO_LONG: Verdict.TOO_LONG,
}
_NOT_POSSIBLE: Final = {
    ValidationResult.TOO_SHORT: Verdict.TOO_SHORT,
    ValidationResult.TOO_LONG: Verdict.TOO_LONG,
    ValidationResult.INVALID_COUNTRY_CODE: Verdict.INVALID_COUNTRY_CODE,
}
_MOBILE_TYPES: Final = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})

Results = tuple[list[str | None], list[Verdict]]


def classify(key: str, mobile_only: bool) -> tuple[str | None, Verdict]:
    """Parse and validate one key: its E.164 form when valid, else why not."""
    if key.startswith("+"):
        region, number = None, key
    else:
        region, _, number = key.partition(":")
    try:
        parsed = phonenumbers.parse(number, region)
    except NumberParseException as error:
        return None, _PARSE_ERRORS.get(error.error_type, Verdict.NOT_A_NUMBER)
    if not phonenumbers.is_valid_number(parsed):
        possible = phonenumbers.is_possible_number_with_reason(parsed)
        return None, _NOT_POSSIBLE.get(possible, Verdict.INVALID_FOR_REGION)
    if mobile_only and phonenumbers.number_type(parsed) not in _MOBILE_TYPES:
        return None, Verdict.NOT_MOBILE
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164), Verdict.VALID


def classify_batch(keys: Sequence[str], mobile_only: bool) -> Results:
    """Classify keys in this process, in order."""
    # Numbers from many regions use more metadata patterns than `re` caches (512), and each
    # recompiled pattern costs far more than a parse: keep them all (idempotent, a few MB).
    phonenumbers.enable_pattern_cache()
    e164: list[str | None] = []
    verdicts: list[Verdict] = []
    for key in keys:
        number, verdict = classify(key, mobile_only)
        e164.append(number)
        verdicts.append(verdict)
    return e164, verdicts


def _cores() -> int:
    """CPUs this process may run on (the container's share, not the host's)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _in_child(keys: Sequence[str], mobile_only: bool) -> Results | None:
    """Classify keys in a fresh Python process; None if it failed in any way."""
    root = str(Path(__file__).resolve().parents[2])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
    }
    payload = ("1" if mobile_only else "0") + "\n" + "\n".join(keys)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tasks.phones.fallback"],
            input=payload,
            capture_output=True,
            text=True,
            env=env,
            timeout=60 + len(keys) / 1_000,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = done.stdout.splitlines()
    if done.returncode != 0 or len(lines) != len(keys):
        return None
    e164: list[str | None] = []
    verdicts: list[Verdict] = []
    try:
        for line in lines:
            number, _, verdict = line.partition("\t")
            e164.append(number or None)
            verdicts.append(Verdict(int(verdict)))
    except ValueError:
        return None
    return e164, verdicts


def classify_each(
    keys: Sequence[str], *, mobile_only: bool, parallel: bool | None = None
) -> Results:
    """Parse keys one by one in order, sharing the work with child processes when there are many.

    `parallel=None` uses one process per `MIN_SHARE` keys, up to one per core. Children are
    started with `python -m` (fork + exec), not `multiprocessing`: no fork of a threaded process
    holding phonenumbers' metadata lock, and no re-import of the caller's `__main__`. Each key
    is classified on its own and the shares come back in order, so the result does not depend
    on where it ran; a child that fails has its share redone here.
    """
    if parallel is None:
        parts = min(_cores(), len(keys) // MIN_SHARE)
    else:
        parts = min(_cores(), len(keys)) if parallel else 1
    if parts < 2:
        return classify_batch(keys, mobile_only)
    bounds = [len(keys) * part // parts for part in range(parts + 1)]
    shares = [keys[start:end] for start, end in itertools.pairwise(bounds)]
    with ThreadPoolExecutor(max_workers=parts - 1) as helpers:
        children = [helpers.submit(_in_child, share, mobile_only) for share in shares[1:]]
        results = [classify_batch(shares[0], mobile_only)]
        for share, child in zip(shares[1:], children, strict=True):
            results.append(child.result() or classify_batch(share, mobile_only))
    return (
        [number for result in results for number in result[0]],
        [verdict for result in results for verdict in result[1]],
    )


def _serve() -> None:
    """Child side: read a mobile-only flag line and keys from stdin, write one line per key."""
    flag, *keys = sys.stdin.read().split("\n")
    e164, verdicts = classify_batch(keys, flag == "1")
    sys.stdout.write(
        "".join(f"{number or ''}\t{int(v)}\n" for number, v in zip(e164, verdicts, strict=True))
    )


if __name__ == "__main__":
    _serve()
