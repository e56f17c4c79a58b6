"""Phones (issue 4): consent + normalise + dedupe against the naive per-row baseline, same run.

The CRM rows are generated, deterministic for a seed: numbers of 10 regions (mobile and fixed
line, around phonenumbers' example numbers) written E.164, international, national with the
row's country, `00`-prefixed, with dots, dashes or brackets, plus too short, too long and junk
values; 5% of rows have no country (the default region applies). `--distinct` (0.6) of the rows
carry distinct (phone_raw, country) values, a tenth of those a second spelling of a number
already used; the rest repeat earlier rows exactly. Every customer has consented, so every row
reaches normalise: the worst case for the stages after consent.

The pipeline runs as the flow runs it: consent and normalise per chunk of `--chunk-size` rows,
one after another, then dedupe over all chunks. The baseline is `df.apply` of
parse + is_valid_number + format(E164) per row, with the row's country as region.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from typing import Final, TypeVar

import numpy as np
import pandas as pd
import phonenumbers
from phonenumbers import (
    NumberParseException,
    PhoneNumber,
    PhoneNumberFormat,
    PhoneNumberType,
)

from bench.common import MIB, Figure, Target, TreeMemory, peak_rss_mib, report
from connectors.vocabulary import COUNTRY, CUSTOMER_ID, OPT_IN_AT, OPT_OUT_AT, PHONE_E164, PHONE_RAW
from tasks.consent import apply_consent
from tasks.frame import with_stage_columns
from tasks.phones.dedupe import dedupe
from tasks.phones.normalise import normalise

T = TypeVar("T")

REGIONS: Final = ("US", "DE", "GB", "FR", "IN", "BR", "MX", "NG", "ID", "AU")
DEFAULT_REGION: Final = "US"
TAIL: Final = 4
"""Trailing digits drawn at random; the two digits before them vary per number 'block'."""

# How distinct values are written, and how often.
STYLES: Final = {
    "e164": 0.15,
    "international": 0.15,
    "national": 0.18,
    "00": 0.10,
    "dots": 0.08,
    "dashes": 0.12,
    "brackets": 0.13,
    "too_short": 0.06,
    "too_long": 0.03,
}
JUNK: Final = ("", " ", "n/a", "-", "unknown", "0", "000000", "1-800-FLOWERS", "see notes")
JUNK_SHARE: Final = 0.01
NO_COUNTRY_SHARE: Final = 0.05
RESPELLED_SHARE: Final = 0.10
TARGET_ROWS: Final = 1_000_000
TARGET_SPEEDUP: Final = Target(">=", 10)
TARGET_SECONDS: Final = Target("<", 60)
TARGET_RSS_MIB: Final = Target("<", 1.5 * 1024)


class Shape:
    """A number written in one style, with where its last `TAIL` digits sit."""

    __slots__ = ("chars", "positions")

    def __init__(self, text: str) -> None:
        self.chars = list(text)
        self.positions = [i for i, c in enumerate(text) if c.isdigit()][-TAIL:]

    def render(self, tail: str) -> str:
        """The text with its last digits replaced by `tail`."""
        chars = self.chars.copy()
        for position, digit in zip(self.positions, tail, strict=True):
            chars[position] = digit
        return "".join(chars)


def _shapes(number: PhoneNumber) -> dict[str, Shape]:
    """The valid styles of one number, as shapes whose tail can be swapped."""
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    head, _, rest = national.partition(" ")
    bracketed = national if national.startswith("(") or not rest else f"({head}) {rest}"
    dotted = national.replace("(", "").replace(")", "").replace(" ", ".").replace("-", ".")
    return {
        "e164": Shape(e164),
        "international": Shape(phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)),
        "national": Shape(national),
        "00": Shape("00" + e164[1:]),
        "dots": Shape(dotted),
        "dashes": Shape(
            phonenumbers.format_number(number, PhoneNumberFormat.RFC3966).removeprefix("tel:")
        ),
        "brackets": Shape(bracketed),
    }


def _blocks(rng: np.random.Generator, region: str, kind: int) -> list[dict[str, Shape]]:
    """Up to 60 blocks (two digits before the tail varied) around the example number, all valid."""
    example = phonenumbers.example_number_for_type(region, kind)
    if example is None:
        return []
    nsn = str(example.national_number)
    blocks: list[dict[str, Shape]] = []
    for block in rng.permutation(100)[:60]:
        digits = nsn[: -TAIL - 2] + f"{block:02d}" + nsn[-TAIL:]
        number = PhoneNumber(
            country_code=example.country_code,
            national_number=int(digits),
            italian_leading_zero=example.italian_leading_zero,
        )
        if phonenumbers.is_valid_number(number):
            blocks.append(_shapes(number))
    return blocks


def _distinct_values(rng: np.random.Generator, count: int) -> tuple[list[str], list[str | None]]:
    """`count` distinct (phone_raw, country) pairs in the mixed styles."""
    blocks = {
        region: [
            _blocks(rng, region, kind)
            for kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE)
        ]
        for region in REGIONS
    }
    styles, weights = list(STYLES), np.array(list(STYLES.values()))
    seen: dict[tuple[str, str | None], None] = {}
    last: tuple[str, int, int, str] | None = None
    while len(seen) < count:
        todo = count - len(seen) + 16
        regions = rng.integers(0, len(REGIONS), todo)
        kinds = (rng.random(todo) < 0.3).astype(int)  # 70% mobile
        picks = rng.integers(0, 1 << 30, todo)
        tails = rng.integers(0, 10**TAIL, todo)
        style_picks = rng.choice(len(styles), todo, p=weights / weights.sum())
        respell = rng.random(todo) < RESPELLED_SHARE
        casing = rng.random(todo)
        for i in range(todo):
            if respell[i] and last is not None:
                region, kind, pick, tail = last  # the previous number, in this row's style
            else:
                region = REGIONS[regions[i]]
                kind, pick, tail = int(kinds[i]), int(picks[i]), f"{tails[i]:0{TAIL}d}"
            last = (region, kind, pick, tail)
            options = blocks[region][kind] or blocks[region][0]
            shapes = options[pick % len(options)]
            style = styles[style_picks[i]]
            if style == "too_short":
                raw = shapes["national"].render(tail)[:-3]
            elif style == "too_long":
                raw = shapes["e164"].render(tail) + "12"
            else:
                raw = shapes[style].render(tail)
            country: str | None = region if casing[i] < 0.8 else region.lower()
            if casing[i] >= 1 - NO_COUNTRY_SHARE:
                country = None
            seen[(raw, country)] = None
            if len(seen) == count:
                break
    return [raw for raw, _ in seen], [country for _, country in seen]


def crm_rows(rows: int, *, distinct: float = 0.6, seed: int = 7) -> pd.DataFrame:
    """Generated CRM rows in the extract frame's columns, every customer consented."""
    rng = np.random.default_rng(seed)
    count = max(1, round(rows * distinct))
    raw, country = _distinct_values(rng, count)
    pick = np.concatenate([np.arange(count), rng.integers(0, count, rows - count)])
    rng.shuffle(pick)
    phone = np.array(raw, dtype=object)[pick]
    junk = rng.random(rows) < JUNK_SHARE
    phone[junk] = np.array(JUNK, dtype=object)[rng.integers(0, len(JUNK), int(junk.sum()))]
    opt_in = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(
        rng.integers(0, 2 * 365 * 86_400, rows), unit="s"
    )
    frame = pd.DataFrame(
        {
            CUSTOMER_ID: pd.array([str(i) for i in range(1, rows + 1)], dtype="str"),
            PHONE_RAW: pd.array(phone, dtype="str"),
            COUNTRY: pd.array(np.array(country, dtype=object)[pick], dtype="str"),
            OPT_IN_AT: opt_in,
            OPT_OUT_AT: pd.Series(pd.NaT, index=range(rows), dtype=opt_in.dtype),
        }
    )
    return with_stage_columns(frame)


def _naive_row(row: pd.Series) -> str | None:
    """The baseline for one row: parse, is_valid_number, format E.164."""
    country = row[COUNTRY]
    region = country.upper() if isinstance(country, str) else DEFAULT_REGION
    if region not in phonenumbers.SUPPORTED_REGIONS:
        region = DEFAULT_REGION
    try:
        number = phonenumbers.parse(row[PHONE_RAW], region)
    except NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def baseline(frame: pd.DataFrame) -> pd.Series:
    """The naive per-row baseline of issue 4: `df.apply` over rows."""
    return frame[[PHONE_RAW, COUNTRY]].apply(_naive_row, axis=1)


class Stages:
    """Best time of each pipeline stage over the repeats, and the last run's output."""

    def __init__(self) -> None:
        self.consent = self.normalise = self.dedupe = self.total = float("inf")
        self.output: list[pd.DataFrame] = []

    def run(self, frame: pd.DataFrame, chunk_size: int) -> None:
        """Consent and normalise chunk by chunk, then dedupe all chunks; keep the best times."""
        chunks = [frame.iloc[i : i + chunk_size] for i in range(0, len(frame), chunk_size)]
        started = time.perf_counter()
        consented = [apply_consent(chunk) for chunk in chunks]
        consent_done = time.perf_counter()
        normalised = [normalise(chunk, default_region=DEFAULT_REGION) for chunk in consented]
        normalise_done = time.perf_counter()
        self.output = dedupe(normalised)
        finished = time.perf_counter()
        self.consent = min(self.consent, consent_done - started)
        self.normalise = min(self.normalise, normalise_done - consent_done)
        self.dedupe = min(self.dedupe, finished - normalise_done)
        self.total = min(self.total, finished - started)


def best_of(repeat: int, work: Callable[[], T]) -> tuple[float, T]:
    """The shortest wall time of `repeat` runs of `work`, and the last run's result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - started)
    assert result is not None
    return best, result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench phones",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=200_000, help="CRM rows (default 200,000)")
    parser.add_argument("--distinct", type=float, default=0.6, help="share of distinct values")
    parser.add_argument("--chunk-size", type=int, default=50_000, help="rows per chunk (flow)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best counts")
    parser.add_argument("--seed", type=int, default=7)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Generate the rows, time pipeline and baseline, print and save the figures."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.rows < 1 or args.chunk_size < 1 or not 0 < args.distinct <= 1:
        parser.error("--rows and --chunk-size must be positive, --distinct in (0, 1]")
    rows, repeat = args.rows, max(1, args.repeat)
    started = time.perf_counter()
    frame = crm_rows(rows, distinct=args.distinct, seed=args.seed)
    raw_share = len(frame[[PHONE_RAW, COUNTRY]].drop_duplicates()) / rows
    print(
        f"{rows:,} rows generated in {time.perf_counter() - started:.1f} s: "
        f"{raw_share:.1%} distinct (phone_raw, country); pipeline in chunks of "
        f"{args.chunk_size:,}, best of {repeat}",
        flush=True,
    )

    stages = Stages()
    with TreeMemory() as tree:
        for _ in range(repeat):
            stages.run(frame, args.chunk_size)
    rss_main = peak_rss_mib()
    rss_tree = max(rss_main, tree.peak_mib or 0.0)
    base_s, naive = best_of(repeat, lambda: baseline(frame))

    ours = pd.concat(stages.output)[PHONE_E164]
    theirs = pd.Series(naive.to_numpy(), dtype="str")
    agree = float((ours.fillna("").to_numpy() == theirs.fillna("").to_numpy()).mean())
    valid_ours, valid_naive = float(ours.notna().mean()), float(theirs.notna().mean())
    distinct_e164 = ours.nunique() / rows
    full = rows >= TARGET_ROWS
    scale = TARGET_ROWS / rows
    figures = [
        Figure("baseline df.apply", rows / base_s, "rows/s", note=f"{base_s:.2f} s"),
        Figure("consent", rows / stages.consent, "rows/s", note=f"{stages.consent:.2f} s"),
        Figure("normalise", rows / stages.normalise, "rows/s", note=f"{stages.normalise:.2f} s"),
        Figure("dedupe", rows / stages.dedupe, "rows/s", note=f"{stages.dedupe:.2f} s"),
        Figure("speed-up: normalise vs baseline", base_s / stages.normalise, "x", TARGET_SPEEDUP),
        Figure(
            "speed-up: normalise + dedupe vs baseline",
            base_s / (stages.normalise + stages.dedupe),
            "x",
            TARGET_SPEEDUP,
        ),
        Figure(
            f"consent + normalise + dedupe, {rows:,} rows",
            stages.total,
            "s",
            TARGET_SECONDS if full else None,
            note="extract is not included (no CRM database here)",
        ),
    ]
    if not full:
        figures.append(
            Figure(
                f"  same, projected linearly to {TARGET_ROWS:,} rows",
                stages.total * scale,
                "s",
                TARGET_SECONDS,
                note=f"a projection; measure it with --rows {TARGET_ROWS}",
            )
        )
    figures += [
        Figure(
            "peak RSS, this process",
            rss_main,
            "MiB",
            note="ru_maxrss after generation + pipeline, before the baseline ran",
        ),
        Figure(
            "peak RSS, with parse children",
            rss_tree,
            "MiB",
            TARGET_RSS_MIB if full else None,
            note="this process + its child processes (phones.fallback), sampled every 100 ms; "
            + (
                f"largest child {tree.child_peak_mib:.0f} MiB"
                if tree.child_peak_mib
                else "no child process seen"
            )
            + ("" if full else f"; the target is for {TARGET_ROWS:,} rows"),
        ),
        Figure(
            "valid share: normalise / baseline",
            valid_ours * 100,
            "%",
            note=f"baseline: {valid_naive:.1%}",
        ),
        Figure("same E.164 as baseline", agree * 100, "% rows"),
        Figure("distinct E.164 numbers", distinct_e164 * 100, "% rows"),
    ]
    params = {
        "rows": rows,
        "distinct": args.distinct,
        "distinct_raw_measured": raw_share,
        "chunk_size": args.chunk_size,
        "repeat": repeat,
        "seed": args.seed,
        "seconds": {
            "baseline": base_s,
            "consent": stages.consent,
            "normalise": stages.normalise,
            "dedupe": stages.dedupe,
            "pipeline": stages.total,
        },
        "peak_rss_bytes": {"main": rss_main * MIB, "with_children": rss_tree * MIB},
    }
    report("phones", f"phones: {rows:,} CRM rows, best of {repeat}", figures, params)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
