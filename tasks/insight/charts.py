"""The campaign's charts drawn with matplotlib, as inline SVG or PNG bytes (nothing to fetch)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final, Literal

import matplotlib

matplotlib.use("Agg")  # no display here; must precede pyplot

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

Format = Literal["svg", "png"]
COLOURS: Final = {
    "sent": "#4c72b0",
    "delivered": "#55a868",
    "read": "#8172b2",
    "failed": "#c44e52",
    "excluded": "#937860",
    "deferred": "#ccb974",
}
_THOUSANDS: Final = FuncFormatter(lambda value, _pos: f"{value:,.0f}")


@contextmanager
def _figure(height: float) -> Iterator[Figure]:
    """A figure of the report's width, closed afterwards (pyplot keeps every open figure)."""
    figure = plt.figure(figsize=(8.0, height), dpi=100)
    try:
        yield figure
    finally:
        plt.close(figure)


def render(figure: Figure, fmt: Format) -> bytes:
    """The figure as SVG text (UTF-8, no XML prologue) or PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, bbox_inches="tight", metadata=_metadata(fmt))
    data = buffer.getvalue()
    if fmt == "svg":
        text = data.decode()
        data = text[text.index("<svg") :].encode()
    return data


def _metadata(fmt: Format) -> dict[str, str | None]:
    """No creation date in the files, so the same figures give the same bytes."""
    return {"Date": None} if fmt == "svg" else {"Software": None}


def funnel_chart(funnel: pd.DataFrame, fmt: Format = "svg") -> bytes:
    """Horizontal bars per stage, each labelled with its customers and share of customers read."""
    with _figure(0.45 * len(funnel) + 1.0) as figure:
        ax = figure.subplots()
        stages = list(funnel["stage"])[::-1]
        counts = list(funnel["customers"])[::-1]
        shares = list(funnel["share"])[::-1]
        ax.barh(stages, counts, color=COLOURS["sent"])
        top = max(counts, default=0) or 1
        for y, (count, share) in enumerate(zip(counts, shares, strict=True)):
            ax.text(count + top * 0.01, y, f"{count:,} ({share:.1%})", va="center", fontsize=9)
        ax.set_xlim(0, top * 1.25)
        ax.xaxis.set_major_formatter(_THOUSANDS)
        ax.set_title("Funnel: customers at each stage (share of customers read)")
        ax.spines[["top", "right"]].set_visible(False)
        return render(figure, fmt)


def timeline_chart(timeline: pd.DataFrame, bucket: str, fmt: Format = "svg") -> bytes:
    """Messages sent, delivered, read and failed per bucket, one line each."""
    with _figure(3.2) as figure:
        ax = figure.subplots()
        if timeline.empty:
            ax.text(0.5, 0.5, "no messages sent yet", ha="center", transform=ax.transAxes)
        when = pd.DatetimeIndex(timeline.index).tz_localize(None)
        # Lines often coincide (a sandbox delivers and reads at once): styles keep each visible.
        for name, style in zip(timeline.columns, ("-", "--", ":", "-."), strict=False):
            total = int(timeline[name].sum())
            ax.plot(
                when,
                timeline[name],
                style,
                label=f"{name} ({total:,})",
                color=COLOURS[name],
                linewidth=2 if style == "-" else 1.5,
            )
        ax.yaxis.set_major_formatter(_THOUSANDS)
        ax.set_title(f"Messages per {bucket} (UTC)")
        if not timeline.empty:
            # Below the axes: inside, it hides the lines' ends.
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=4, frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
        figure.autofmt_xdate()
        return render(figure, fmt)


def reasons_chart(reasons: pd.DataFrame, fmt: Format = "svg", limit: int = 15) -> bytes:
    """The most frequent reasons customers were excluded, deferred or failed."""
    shown = reasons.head(limit).iloc[::-1]
    with _figure(0.35 * max(len(shown), 2) + 1.0) as figure:
        ax = figure.subplots()
        colours = [COLOURS.get(kind, COLOURS["excluded"]) for kind in shown["kind"]]
        ax.barh(list(shown["label"]), list(shown["customers"]), color=colours)
        for y, count in enumerate(shown["customers"]):
            ax.text(count, y, f" {count:,}", va="center", fontsize=9)
        ax.xaxis.set_major_formatter(_THOUSANDS)
        ax.set_title("Excluded, deferred and failed customers by reason")
        ax.spines[["top", "right"]].set_visible(False)
        return render(figure, fmt)


def cost_chart(costs: pd.DataFrame, fmt: Format = "svg") -> bytes:
    """Cost so far per country (USD at the rate card); markets without a rate are left out."""
    priced = costs.loc[costs["cost_usd"].notna()]
    with _figure(3.0) as figure:
        ax = figure.subplots()
        amounts = [float(v) for v in priced["cost_usd"]]
        ax.bar(list(priced["market"]), amounts, color=COLOURS["sent"], width=0.6)
        ax.set_xlim(-0.75, max(len(amounts), 4) - 0.25)  # one market is not one wide slab
        for x, amount in enumerate(amounts):
            ax.text(x, amount, f"${amount:,.2f}", ha="center", va="bottom", fontsize=9)
        unpriced = len(costs) - len(priced)
        note = (
            f"; {unpriced} {'country' if unpriced == 1 else 'countries'} without a rate"
            if unpriced
            else ""
        )
        ax.set_title(f"Cost so far by country (USD at the rate card{note})")
        ax.spines[["top", "right"]].set_visible(False)
        return render(figure, fmt)
