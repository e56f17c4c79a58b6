"""Quiet hours: a customer outside the campaign's `send_window`, in the local time of every zone
the number may be in, is `deferred` / `outside_send_window` until the window next opens in all.

The zones come from the number (`phonenumbers.timezone`): one for +1 212…, eight for a +61 mobile.
A number with no known zone has no constraint and is sent. phonenumbers takes ~50 µs a number,
so it is asked once per zone key: `+` and the shortest prefix (at most `TIMEZONE_LONGEST_PREFIX`
digits) past which no entry of its zone table can match (+1212, +614…), on the first number seen
with that key. Keying by all `1 + TIMEZONE_LONGEST_PREFIX` characters would give the same answers
but, for +1 numbers, almost one key per number. The key assumes numbers sharing it share what
phonenumbers decides from the whole number: valid or not (the normalise stage passes valid ones)
and geographic (zone by prefix) or not (zone by country); types follow leading digits (NANP area
codes, mobile ranges), and where both answers are the country's zones the type does not matter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt
import pandas as pd
import phonenumbers
from phonenumbers.timezone import UNKNOWN_TIMEZONE, time_zones_for_number
from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

from connectors.vocabulary import PHONE_E164, Reason
from tasks.campaign import SendWindow
from tasks.frame import in_running
from tasks.rules.settle import defer, with_not_before

Zones = tuple[str, ...]
ZoneLookup = Callable[[str], Zones]

HORIZON_DAYS: Final = 8
"""How far ahead an opening common to all of a number's zones is looked for."""
_PREFIXES: Final = {
    length: sorted({k[:length] for k in TIMEZONE_DATA if len(k) >= length})
    for length in range(1, TIMEZONE_LONGEST_PREFIX + 1)
}
"""The prefixes of the zone table's keys by length: digits past these cannot change a number's
zones."""


def zones_of_number(e164: str) -> Zones:
    """The zones phonenumbers gives one E.164 number, without "Etc/Unknown" (empty if none)."""
    try:
        number = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return ()
    return tuple(z for z in time_zones_for_number(number) if z != UNKNOWN_TIMEZONE and _loadable(z))


@lru_cache(maxsize=1024)
def _loadable(zone: str) -> bool:
    """Whether zoneinfo knows the zone (an older tz database may lack a new name)."""
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _zone_keys(numbers: pd.Series) -> tuple[npt.NDArray[np.intp], list[str]]:
    """Per number the index in the returned list of its zone key: `+` and the shortest prefix
    that decides which zone-table entries can match it (found level by level, not per number)."""
    depth = np.zeros(len(numbers), dtype=np.intp)
    alive = np.arange(len(numbers))
    for length, prefixes in _PREFIXES.items():
        known = numbers.iloc[alive].str.slice(1, 1 + length).isin(prefixes).to_numpy()
        alive = alive[known]
        depth[alive] = length
        if not alive.size:
            break
    codes = np.empty(len(numbers), dtype=np.intp)
    keys: list[str] = []
    for length in np.unique(depth):
        rows = np.flatnonzero(depth == length)
        found, distinct = pd.factorize(numbers.iloc[rows].str.slice(0, 1 + int(length)))
        codes[rows] = found + len(keys)
        keys.extend(distinct.tolist())
    return codes, keys


_ZONES_BY_KEY: dict[str, Zones] = {}
"""Zones by zone key for the process (a race between threads looks one key up twice, alike)."""


def _zone_codes(
    phones: pd.Series, lookup: ZoneLookup | None
) -> tuple[npt.NDArray[np.intp], list[Zones]]:
    """Per number the index of its zones in the returned list (-1 for a null number)."""
    ids = np.full(len(phones), -1, dtype=np.intp)
    present = phones.notna().to_numpy()
    if not present.any():
        return ids, []
    numbers = phones[present].astype("str")
    codes, keys = _zone_keys(numbers)
    firsts = numbers.iloc[np.unique(codes, return_index=True)[1]].tolist()
    cache = _ZONES_BY_KEY if lookup is None else {}
    found = lookup or zones_of_number
    distinct: dict[Zones, int] = {}
    by_key = np.empty(len(keys), dtype=np.intp)
    for code, (key, number) in enumerate(zip(keys, firsts, strict=True)):
        if key not in cache:
            cache[key] = found(number)
        by_key[code] = distinct.setdefault(cache[key], len(distinct))
    ids[present] = by_key[codes]
    return ids, list(distinct)


def zones_of(phones: pd.Series, *, lookup: ZoneLookup | None = None) -> pd.Series:
    """The tuple of zone names of each number (empty for a null number or one with no known
    zone); `lookup` replaces phonenumbers (and the process-wide cache) for one call."""
    ids, zones = _zone_codes(phones, lookup)
    table = np.empty(len(zones) + 1, dtype=object)
    for i, z in enumerate([*zones, ()]):
        table[i] = z
    return pd.Series(table[ids], index=phones.index, dtype=object)


def _aware_utc(now: datetime) -> datetime:
    """`now` in UTC, refusing a naive time (its instant is unknown)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(
            f"now={now.isoformat()} is naive; quiet hours need a timezone-aware UTC time "
            "(datetime.now(UTC))"
        )
    return now.astimezone(UTC)


def _is_open(instant: datetime, zone: ZoneInfo, opens: time, closes: time) -> bool:
    """Whether the local clock in the zone at the instant is within [opens, closes)."""
    clock = instant.astimezone(zone).time()
    if opens < closes:
        return opens <= clock < closes
    return clock >= opens or clock < closes


def _local_instant(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """The UTC instant the zone's clock first shows `clock` on `day`; a time skipped by a DST
    change is taken at the first instant after it (the change itself)."""
    wall = datetime.combine(day, clock)
    instant = wall.replace(tzinfo=zone).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall:
        return instant
    ends = sorted(int(wall.replace(tzinfo=zone, fold=f).timestamp()) for f in (0, 1))
    before, after = ends
    while after - before > 1:  # local wall time is before `wall` at `before`, after it at `after`
        mid = (before + after) // 2
        if datetime.fromtimestamp(mid, zone).replace(tzinfo=None) > wall:
            after = mid
        else:
            before = mid
    return datetime.fromtimestamp(after, UTC)


def _openings(zone: ZoneInfo, opens: time, now: datetime) -> Iterator[datetime]:
    """The zone's opening instants from `now` to `HORIZON_DAYS` later, in order."""
    today = now.astimezone(zone).date()
    horizon = now + timedelta(days=HORIZON_DAYS)
    for offset in range(-1, HORIZON_DAYS + 2):
        instant = _local_instant(today + timedelta(days=offset), opens, zone)
        if now <= instant <= horizon:
            yield instant


def next_open(zones: Zones, window: SendWindow, now: datetime) -> datetime | None:
    """None when the window is open now in every zone (or no zone is known: no constraint), else
    the earliest UTC instant from `now` on at which it is open in all of them.

    Candidates are each zone's openings within `HORIZON_DAYS`. If the zones' windows never overlap
    in that time, the latest of the zones' own next openings is returned: by then each zone has
    opened once, and a later run finds the number still closed somewhere and defers it again.
    """
    now = _aware_utc(now)
    if not zones:
        return None
    opens, closes = window.opens, window.closes
    places = [ZoneInfo(z) for z in zones]
    if all(_is_open(now, p, opens, closes) for p in places):
        return None
    candidates = sorted({t for p in places for t in _openings(p, opens, now)})
    for candidate in candidates:
        if all(_is_open(candidate, p, opens, closes) for p in places):
            return candidate
    own = (
        now
        if _is_open(now, p, opens, closes)
        else next(
            (t for t in _openings(p, opens, now) if _is_open(t, p, opens, closes)),
            now + timedelta(days=HORIZON_DAYS),
        )
        for p in places
    )
    return max(own)


_next_open_cached = lru_cache(maxsize=4096)(next_open)


def defer_outside_window(
    frame: pd.DataFrame, window: SendWindow | None, now: datetime
) -> pd.DataFrame:
    """Defer customers in the running whose window is closed now until it opens in all their
    zones (`not_before`, UTC); the rest, and rows with an outcome, are left as they are."""
    if window is None:
        return frame.copy()
    now = _aware_utc(now)
    out = with_not_before(frame)
    running = (in_running(out) & out[PHONE_E164].notna()).to_numpy()
    if not running.any():
        return out
    ids, zones = _zone_codes(out.loc[running, PHONE_E164], None)
    nat = np.datetime64("NaT", "ns")
    stamps = np.array(
        [
            nat if t is None else np.datetime64(t.replace(tzinfo=None), "ns")
            for t in (_next_open_cached(z, window, now) for z in zones)
        ]
        + [nat],
        dtype="datetime64[ns]",
    )
    when = np.full(len(out), nat, dtype="datetime64[ns]")
    when[running] = stamps[ids]
    deferred = pd.Series(~np.isnat(when), index=out.index)
    until = pd.Series(pd.DatetimeIndex(when).tz_localize(UTC), index=out.index)
    defer(out, deferred, Reason.OUTSIDE_SEND_WINDOW, until)
    return out
