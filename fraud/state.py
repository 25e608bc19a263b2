"""What the scorer remembers per key (a card, or a paying account), bounded in size.

Plain data with ``to_dict``/``from_dict`` so a Flink job can keep it in keyed state. Events may
arrive out of order: the recent events stay sorted by event time, and windows are measured in
event time, so a late event is counted where it belongs.

The recent events are two parallel arrays (times, amounts) rather than a list of pairs: the job
writes every changed state back to Flink state, pickled, after each batch, and arrays pickle as
two byte strings where a list of pairs costs a tuple and two numbers apiece (measured offline at
300 events: about 24 us a write for the list). For the same reason the first-seen maps (merchants,
countries, devices) are written as one byte string, pickled again only after one of them changed:
most events add nothing new to them, and pickling their entries was most of a write's cost.
"""

from __future__ import annotations

import bisect
import math
import pickle
import sys
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from fraud.events import ScoredEvent

#: Longest look-back any rule may use; older events are forgotten.
MAX_WINDOW_MS = 8 * 86_400_000
MAX_RECENT = 512
MAX_SEEN = 256
#: Protocol of the pickled first-seen maps: fixed, so a state written once reads everywhere.
_SEEN_PROTOCOL = 4


@dataclass(slots=True)
class Location:
    latitude: float
    longitude: float
    event_time_ms: int


@dataclass(slots=True)
class KeyState:
    #: Event times (ms) of recent events, sorted, and their amounts at the same positions.
    times: array[int] = field(default_factory=lambda: array("q"))
    amounts: array[float] = field(default_factory=lambda: array("d"))
    #: Welford running moments of log(1 + amount) over the key's whole history.
    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    last_location: Location | None = None
    #: First-seen event time per merchant, country and device (bounded, oldest dropped first).
    merchants: dict[str, int] = field(default_factory=dict)
    countries: dict[str, int] = field(default_factory=dict)
    devices: dict[str, int] = field(default_factory=dict)
    max_event_time_ms: int = 0
    #: The three first-seen maps as ``to_dict`` writes them; None once one of them has changed.
    seen_pickled: bytes | None = field(default=None, repr=False, compare=False)

    @classmethod
    def remembering(cls, events: Iterable[tuple[int, float]]) -> KeyState:
        """A state whose recent events are these (time, amount) pairs."""
        state = cls()
        for time_ms, amount in sorted(events, key=lambda event: event[0]):
            state.times.append(time_ms)
            state.amounts.append(amount)
        return state

    @property
    def recent(self) -> list[tuple[int, float]]:
        """(event time, amount) of the remembered events, oldest first."""
        return list(zip(self.times, self.amounts, strict=True))

    # -- features, read before the event is added ---------------------------------------------

    def in_window(self, end_ms: int, window_ms: int) -> array[float]:
        """Amounts of remembered events with end - window < time <= end."""
        lo = bisect.bisect_right(self.times, end_ms - window_ms)
        hi = bisect.bisect_right(self.times, end_ms, lo=lo)
        return self.amounts[lo:hi]

    def burst(self, time_ms: int, window_ms: int, counts: Callable[[float], bool]) -> list[float]:
        """Amounts of the densest run of counted events, plus this one, within any window_ms span
        that contains ``time_ms``. Trailing windows alone would miss a burst whose members arrive
        out of order; on an in-order stream this equals the trailing window."""
        lo = bisect.bisect_right(self.times, time_ms - window_ms)
        hi = bisect.bisect_left(self.times, time_ms + window_ms, lo=lo)
        near = zip(self.times[lo:hi], self.amounts[lo:hi], strict=True)
        counted = [(t, a) for t, a in near if counts(a)]
        times = [t for t, _ in counted]
        # Every best span [start, start + window) starts at a counted event at or before time_ms,
        # or at time_ms itself; all of them contain time_ms (the bisection kept times after
        # time_ms - window). One pass: the span's end only moves forward as its start does.
        candidates = [(times[i], i) for i in range(bisect.bisect_right(times, time_ms))]
        candidates.append((time_ms, bisect.bisect_left(times, time_ms)))
        best_from = best_to = end = 0
        for start, first in candidates:  # first: the span's first counted event
            while end < len(times) and times[end] < start + window_ms:
                end += 1
            if end - first > best_to - best_from:
                best_from, best_to = first, end
        return [a for _, a in counted[best_from:best_to]]

    @property
    def stddev(self) -> float:
        return math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else 0.0

    def zscore(self, amount: float) -> float:
        """How unusual ``amount`` is for this key, in standard deviations of log amounts."""
        spread = max(self.stddev, 0.25)  # a floor, so a key with very regular amounts is not brittle
        return (math.log1p(amount) - self.mean) / spread

    def speed_kmh(self, event: ScoredEvent) -> float | None:
        """Ground speed needed to get from the previous located event to this one."""
        previous = self.last_location
        if previous is None or event.latitude is None or event.longitude is None:
            return None
        km = haversine_km(previous.latitude, previous.longitude, event.latitude, event.longitude)
        hours = abs(event.event_time_ms - previous.event_time_ms) / 3_600_000
        if km < 1.0:
            return 0.0
        return km / max(hours, 1 / 3600)  # events in the same second: at most one second apart

    # -- update, after scoring -----------------------------------------------------------------

    def add(self, event: ScoredEvent) -> None:
        amount = float(event.amount)
        time_ms = event.event_time_ms
        times, amounts = self.times, self.amounts
        if not times or time_ms >= times[-1]:  # in order, as nearly every event arrives
            times.append(time_ms)
            amounts.append(amount)
        else:
            at = bisect.bisect_right(times, time_ms)
            times.insert(at, time_ms)
            amounts.insert(at, amount)
        if time_ms > self.max_event_time_ms:
            self.max_event_time_ms = time_ms
        horizon = self.max_event_time_ms - MAX_WINDOW_MS
        if times[0] < horizon or len(times) > MAX_RECENT:
            drop = max(bisect.bisect_left(times, horizon), len(times) - MAX_RECENT)
            del times[:drop]
            del amounts[:drop]

        self.count += 1
        x = math.log1p(amount)
        delta = x - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (x - self.mean)

        if event.latitude is not None and event.longitude is not None:
            last = self.last_location
            if last is None or time_ms >= last.event_time_ms:
                self.last_location = Location(event.latitude, event.longitude, time_ms)
        for seen, value in ((self.merchants, event.merchant_id), (self.countries, event.country),
                            (self.devices, event.device_id)):  # fmt: skip
            if value is None:
                continue
            first = seen.get(value)
            if first is None or time_ms < first:  # new, or seen earlier than known: seldom
                _note_first_seen(seen, value, time_ms, new=first is None)
                self.seen_pickled = None

    # -- keyed state ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        loc = self.last_location
        if self.seen_pickled is None:
            self.seen_pickled = pickle.dumps((self.merchants, self.countries, self.devices), _SEEN_PROTOCOL)
        return {
            "times": _little_endian(self.times),
            "amounts": _little_endian(self.amounts),
            "count": self.count,
            "mean": self.mean,
            "m2": self.m2,
            "last_location": None if loc is None else [loc.latitude, loc.longitude, loc.event_time_ms],
            "seen": self.seen_pickled,
            "max_event_time_ms": self.max_event_time_ms,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KeyState:
        loc = data["last_location"]
        times, amounts = array("q"), array("d")
        if "recent" in data:  # written before the arrays: a list of (time, amount) pairs
            for t, a in data["recent"]:
                times.append(int(t))
                amounts.append(float(a))
        else:
            times.frombytes(data["times"])
            amounts.frombytes(data["amounts"])
            if sys.byteorder == "big":  # stored little-endian
                times.byteswap()
                amounts.byteswap()
        seen_pickled = data.get("seen")
        if seen_pickled is not None:
            merchants, countries, devices = pickle.loads(seen_pickled)  # noqa: S301 (our own state)
        else:  # written before the maps were pickled apart
            merchants, countries, devices = data["merchants"], data["countries"], data["devices"]
        return cls(
            times=times,
            amounts=amounts,
            count=data["count"],
            mean=data["mean"],
            m2=data["m2"],
            last_location=None if loc is None else Location(loc[0], loc[1], int(loc[2])),
            merchants=dict(merchants),
            countries=dict(countries),
            devices=dict(devices),
            max_event_time_ms=data["max_event_time_ms"],
            seen_pickled=seen_pickled,
        )


def _little_endian(values: array[Any]) -> bytes:
    if sys.byteorder == "little":
        return values.tobytes()
    swapped = array(values.typecode, values)
    swapped.byteswap()
    return swapped.tobytes()


def _note_first_seen(seen: dict[str, int], value: str, time_ms: int, *, new: bool) -> None:
    """Record ``value`` as first seen at ``time_ms``: a new value (the oldest sighting makes room
    once the map is full), or one an out-of-order event shows was seen earlier."""
    if new and len(seen) >= MAX_SEEN:
        del seen[min(seen, key=seen.__getitem__)]
    seen[value] = time_ms


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(a))
