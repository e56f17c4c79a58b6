"""Templates (issue 20): CPU of the template checks and send bodies, whole vs body-only.

The per-customer checks and the per-message Cloud send bodies of a whole template (header and
buttons), beside a body-only one, in the same run.

The audience is `--rows` customers as the shape stage passes them on (every one still in the
running, with a wa_id): distinct numbers of four markets, a first name, an image link (100
distinct), a URL suffix and a coupon code (one each per customer) and a language column (en 35%,
de 20%, de-DE 10%, es 10%, fr 5%, none 20%). About 1% of each value is missing or one the API
would refuse, so both outcomes are exercised.

(a) body-only: `Fill.plain(template, ["first_name"])`. (b) whole: the same body, an IMAGE header
from `param_image`, button 0 a URL suffix from `param_path`, button 1 a constant quick-reply
payload, button 2 a copy-code coupon from `param_coupon`; approved in en and de (de-DE gets de,
es and fr the campaign's en).

1. checks: `choose_template_languages` then `check_fills` over the whole frame, as
   `tasks.partition.stages.shape_stage` runs them.
2. messages: every item of `outgoing(frame, fill, Past.of(empty))` (the frame as each fill's
   checks left it) turned into the Cloud `template_body`, as the Cloud client builds it.

After one untimed pass of both over 1,000 rows, each is timed `--repeat` times, (a) and (b) in
turn, with `time.process_time` (CPU of this process, so another process busy on the other core
counts less than in wall time); the median and the minimum are reported, and (b)/(a) of the
medians.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Final, TypeVar

import numpy as np
import pandas as pd

from bench.common import Figure, load_average, report
from connectors.vocabulary import (
    CUSTOMER_ID,
    LANGUAGE,
    PARAM_PREFIX,
    PHONE_E164,
    WA_ID,
)
from connectors.warehouse import ledger
from connectors.whatsapp import Template
from connectors.whatsapp.cloud.body import template_body
from tasks.frame import Tally, in_running, with_stage_columns
from tasks.send.messages import Past, outgoing
from tasks.template import Fill, TemplateSpec
from tasks.template.customers import check_fills, choose_template_languages

T = TypeVar("T")

NAME: Final = "order_update"
MARKETS: Final = (("1415", 7, "2"), ("49151", 8, "1"), ("55119", 8, "8"), ("447", 9, "4"))
"""(calling code and leading digits, digits after them, the first of those): one per market."""
LANGUAGES: Final = {"en": 0.35, "de": 0.20, "de-DE": 0.10, "es": 0.10, "fr": 0.05, None: 0.20}
BAD_SHARE: Final = 0.005
"""Share of each column missing, and again of values the API would refuse."""
BUDGET_US: Final = 1_000.0
"""1,000 messages/s on one core: the CPU a message may take, all of it."""


def _template(language: str) -> Template:
    return Template(None, NAME, language, category="MARKETING", parameter_format="POSITIONAL")


def body_only() -> Fill:
    """(a) the body's first name only, one language: the checks before issue 20."""
    return Fill.plain(_template("en"), ["first_name"])


def whole() -> Fill:
    """(b) image header, URL suffix, quick reply, coupon; approved in en and de."""
    spec = TemplateSpec.model_validate(
        {
            "name": NAME,
            "language": "en",
            "languages": ["de"],
            "body_params": ["first_name"],
            "header": {"format": "IMAGE", "link_param": "image"},
            "buttons": [
                {"index": 0, "sub_type": "url", "param": "path"},
                {"index": 1, "sub_type": "quick_reply", "value": "STOP_PROMOS"},
                {"index": 2, "sub_type": "copy_code", "param": "coupon"},
            ],
        }
    )
    return Fill.of(spec, {code: _template(code) for code in ("en", "de")})


def _spoilt(rng: np.random.Generator, values: list[str], bad: Callable[[str], str]) -> pd.Series:
    """`values` with `BAD_SHARE` of them missing and as many made refusable by `bad`."""
    draw = rng.random(len(values))
    out: list[str | None] = [
        None if d < BAD_SHARE else bad(v) if d < 2 * BAD_SHARE else v
        for v, d in zip(values, draw, strict=True)
    ]
    return pd.Series(out, dtype="str")


def audience(rows: int, seed: int) -> pd.DataFrame:
    """A chunk as the shape stage passes it on (like tests/helpers.py `make_chunk`), with the
    template's `param_*` columns, a language column and a wa_id for everyone."""
    rng = np.random.default_rng(seed)
    phones = []
    for i in range(rows):
        prefix, digits, first = MARKETS[i % len(MARKETS)]
        phones.append(f"+{prefix}{first}{i // len(MARKETS):0{digits - 1}d}")
    frame = with_stage_columns(pd.DataFrame({CUSTOMER_ID: [str(i) for i in range(rows)]}))
    frame[PHONE_E164] = pd.Series(phones, dtype="str")
    frame[WA_ID] = pd.Series([p[1:] for p in phones], dtype="str")
    names = ["Asha", "Jonas", "María", "Chloé", "Wei", "Oluwaseun"]
    frame[f"{PARAM_PREFIX}first_name"] = _spoilt(
        rng, [names[i] for i in rng.integers(0, len(names), rows)], lambda v: "  "
    )
    frame[f"{PARAM_PREFIX}image"] = _spoilt(
        rng,
        [f"https://cdn.example.com/products/{i}.jpg" for i in rng.integers(0, 100, rows)],
        lambda v: v.replace("https://", "http://"),
    )
    frame[f"{PARAM_PREFIX}path"] = _spoilt(
        rng, [f"orders/A{i:07d}" for i in range(rows)], lambda v: v + " x"
    )
    frame[f"{PARAM_PREFIX}coupon"] = _spoilt(
        rng, [f"SAVE{i:07d}" for i in range(rows)], lambda v: v + "-TOO-LONG"
    )
    codes = list(LANGUAGES)
    weights = np.array(list(LANGUAGES.values()))
    picks = rng.choice(len(codes), rows, p=weights / weights.sum())
    frame[LANGUAGE] = pd.Series([codes[i] for i in picks], dtype="str")
    return frame


def checked(frame: pd.DataFrame, fill: Fill) -> pd.DataFrame:
    """The per-customer checks as the shape stage runs them."""
    return check_fills(choose_template_languages(frame, fill), fill)


def build(frame: pd.DataFrame, fill: Fill, past: Past) -> int:
    """Every message's Cloud send body, as the send loop and the Cloud client make them."""
    made = 0
    for item in outgoing(frame, fill, past):
        template_body(item.wa_id, item.template or fill.template, item.params, extras=item.extras)
        made += 1
    return made


class Timings:
    """CPU seconds of each repeat."""

    def __init__(self) -> None:
        self.cpu: list[float] = []

    def time(self, work: Callable[[], T]) -> T:
        """Run `work` once, keep its CPU time, return what it returned."""
        started = time.process_time()
        result = work()
        self.cpu.append(time.process_time() - started)
        return result

    def median_us(self, units: int) -> float:
        """Median CPU per unit, in µs."""
        return statistics.median(self.cpu) / units * 1e6

    def min_us(self, units: int) -> float:
        """Least CPU per unit, in µs."""
        return min(self.cpu) / units * 1e6


def main(argv: Sequence[str] | None = None) -> int:
    """Time the checks and the send bodies for both fills; print and save the figures."""
    parser = argparse.ArgumentParser(
        prog="python -m bench templates",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=200_000, help="customers (default 200,000)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each (median and min)")
    parser.add_argument("--seed", type=int, default=20)
    args = parser.parse_args(argv)
    if args.rows < 1 or args.repeat < 1:
        parser.error("--rows and --repeat must be positive")
    rows, repeat = args.rows, args.repeat

    load_before = load_average()
    print(f"load average before: {load_before}", flush=True)
    started = time.perf_counter()
    frame = audience(rows, args.seed)
    fills = {"a": body_only(), "b": whole()}
    past = Past.of(pd.DataFrame(columns=list(ledger.LEDGER_COLUMNS)))
    print(
        f"{rows:,} customers generated in {time.perf_counter() - started:.1f} s; "
        f"{repeat} runs of each, (a) and (b) in turn",
        flush=True,
    )

    for fill in fills.values():  # untimed: first calls pay lazy imports and caches
        build(checked(frame.iloc[:1_000], fill), fill, past)
    checks = {key: Timings() for key in fills}
    shaped: dict[str, pd.DataFrame] = {}
    for _ in range(repeat):
        for key, fill in fills.items():
            shaped[key] = checks[key].time(partial(checked, frame, fill))
    messages = {key: Timings() for key in fills}
    made = dict.fromkeys(fills, 0)
    for _ in range(repeat):
        for key, fill in fills.items():
            made[key] = messages[key].time(partial(build, shaped[key], fill, past))
    load_after = load_average()
    print(f"load average after: {load_after}", flush=True)

    check_us = {key: checks[key].median_us(rows) for key in fills}
    message_us = {key: messages[key].median_us(made[key]) for key in fills}
    loads = f"load average {load_before} before, {load_after} after"
    figures = [
        Figure(
            "checks (a) body only, CPU per customer",
            check_us["a"],
            "µs",
            note=f"median of {repeat}; min {checks['a'].min_us(rows):.2f} µs; {loads}",
        ),
        Figure(
            "checks (b) whole template, CPU per customer",
            check_us["b"],
            "µs",
            note=f"median of {repeat}; min {checks['b'].min_us(rows):.2f} µs",
        ),
        Figure("checks b / a", check_us["b"] / check_us["a"], "x", note="medians, same run"),
        Figure(
            "messages (a) outgoing + Cloud template_body, CPU per message",
            message_us["a"],
            "µs",
            note=f"median of {repeat}; min {messages['a'].min_us(made['a']):.2f} µs; "
            f"{made['a']:,} messages",
        ),
        Figure(
            "messages (b) outgoing + Cloud template_body, CPU per message",
            message_us["b"],
            "µs",
            note=f"median of {repeat}; min {messages['b'].min_us(made['b']):.2f} µs; "
            f"{made['b']:,} messages",
        ),
        Figure("messages b / a", message_us["b"] / message_us["a"], "x", note="medians, same run"),
        Figure(
            "messages (a): share of 1,000/s on one core",
            message_us["a"] / BUDGET_US * 100,
            "%",
            note=f"of {BUDGET_US:,.0f} µs CPU per message",
        ),
        Figure(
            "messages (b): share of 1,000/s on one core", message_us["b"] / BUDGET_US * 100, "%"
        ),
        Figure(
            "messages: (b) - (a) per message",
            message_us["b"] - message_us["a"],
            "µs",
            note="what the header and buttons add to each send",
        ),
    ]
    for key in fills:
        for (outcome, reason), count in sorted(Tally.of(shaped[key]).outcomes.items()):
            figures.append(Figure(f"({key}) {outcome} / {reason}", count, "customers"))
        left = int(in_running(shaped[key]).sum())
        figures.append(Figure(f"({key}) still in the running", left, "customers"))
    params = {
        "rows": rows,
        "repeat": repeat,
        "seed": args.seed,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "cpu_s": {
            f"{what}_{key}": timings[key].cpu
            for what, timings in (("checks", checks), ("messages", messages))
            for key in fills
        },
        "messages": made,
    }
    report("templates", f"Templates (issue 20): {rows:,} customers, {repeat} runs", figures, params)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
