"""Where the fraud bench's slow alerts come from: episodes of them, set against the job's checkpoints.

At 2,000 events/s about one event in seven raises an alert, so the p99 of a two-minute phase is the
slowest few hundred alerts: a few stalls of a hundred milliseconds or more decide it. This
groups the slow alerts into episodes (alerts sent close together) and says, for each, where the
time went (into the job or out of it, split at the scored record's ``scored_at``) and how far it
started from a checkpoint trigger, so a stall that follows the checkpoints shows as such.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from flink_jobs.runner import FlinkRest
from riverbank.errors import RiverbankError
from riverbank.settings import Settings

log = logging.getLogger(__name__)

#: Checkpoints triggered this long before a phase starts still count: their stall can reach into it.
LOOKBACK_MS = 10_000


@dataclass(frozen=True)
class Checkpoint:
    checkpoint_id: int
    trigger_ms: int
    duration_ms: int
    size_bytes: int


@dataclass
class CheckpointWatcher:
    """Collects the job's completed checkpoints from the JobManager's REST history while it runs.

    The history holds the last few checkpoints only (``web.checkpoints.history``, 10), so it is
    polled more often than ten intervals."""

    settings: Settings
    job_id: str
    poll_s: float = 3.0
    seen: dict[int, Checkpoint] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with FlinkRest(self.settings) as rest:
            while not self.stop.wait(self.poll_s):
                try:
                    reply = rest.request("GET", f"/jobs/{self.job_id}/checkpoints", job_id=self.job_id)
                except RiverbankError as exc:  # a missed poll costs figures, not the bench
                    log.warning("checkpoint history not read: %s", exc)
                    continue
                for entry in reply.get("history", []):
                    if entry.get("status") == "COMPLETED":
                        self.seen[int(entry["id"])] = Checkpoint(
                            int(entry["id"]),
                            int(entry["trigger_timestamp"]),
                            int(entry["end_to_end_duration"]),
                            int(entry.get("checkpointed_size") or entry.get("state_size") or 0),
                        )

    def checkpoints(self) -> list[Checkpoint]:
        return sorted(self.seen.values(), key=lambda c: c.trigger_ms)


@dataclass(frozen=True)
class SlowAlert:
    sent_ms: int
    scored_ms: int
    alerted_ms: int

    @property
    def latency_ms(self) -> int:
        return self.alerted_ms - self.sent_ms

    @property
    def inbound_ms(self) -> int:
        return self.scored_ms - self.sent_ms


@dataclass(frozen=True)
class Episode:
    alerts: tuple[SlowAlert, ...]

    @property
    def start_ms(self) -> int:
        return self.alerts[0].sent_ms

    @property
    def span_ms(self) -> int:
        return self.alerts[-1].sent_ms - self.alerts[0].sent_ms

    @property
    def worst_ms(self) -> int:
        return max(a.latency_ms for a in self.alerts)

    @property
    def inbound_share(self) -> float:
        """Of the episode's latency, the part before the scorer (0..1)."""
        total = sum(a.latency_ms for a in self.alerts)
        return sum(a.inbound_ms for a in self.alerts) / total if total else 0.0


def episodes(alerts: Sequence[SlowAlert], gap_ms: int = 250) -> list[Episode]:
    """Slow alerts grouped by send time: a new episode starts after ``gap_ms`` without one."""
    ordered = sorted(alerts, key=lambda a: a.sent_ms)
    groups: list[list[SlowAlert]] = []
    for alert in ordered:
        if groups and alert.sent_ms - groups[-1][-1].sent_ms <= gap_ms:
            groups[-1].append(alert)
        else:
            groups.append([alert])
    return [Episode(tuple(g)) for g in groups]


def last_checkpoint(at_ms: int, checkpoints: Sequence[Checkpoint]) -> Checkpoint | None:
    """The last checkpoint triggered at or before ``at_ms`` (``checkpoints`` in trigger order)."""
    index = bisect.bisect_right(checkpoints, at_ms, key=lambda c: c.trigger_ms)
    return checkpoints[index - 1] if index else None


def checkpoint_share(
    slow: Sequence[SlowAlert], checkpoints: Sequence[Checkpoint], window_ms: int
) -> tuple[float, float] | None:
    """(share of the slow alerts scored within ``window_ms`` after a trigger, share of the phase those
    windows cover): the first well above the second says the checkpoints cause the stalls."""
    if len(checkpoints) < 2 or not slow:
        return None
    inside = 0
    for alert in slow:
        checkpoint = last_checkpoint(alert.scored_ms, checkpoints)
        inside += checkpoint is not None and alert.scored_ms - checkpoint.trigger_ms < window_ms
    interval = (checkpoints[-1].trigger_ms - checkpoints[0].trigger_ms) / (len(checkpoints) - 1)
    return inside / len(slow), min(window_ms / interval, 1.0)


def stall_report(
    slow: Sequence[SlowAlert], checkpoints: Sequence[Checkpoint], phase_start_ms: int, threshold_ms: int
) -> str:
    found = episodes(slow)
    if not found:
        return f"  slow alerts (over {threshold_ms} ms): none"
    lines = [
        f"  slow alerts (over {threshold_ms} ms): {len(slow):,} in {len(found)} episodes; "
        f"{len(checkpoints)} checkpoints from {LOOKBACK_MS / 1000:g} s before the phase to its end"
    ]
    share = checkpoint_share(slow, checkpoints, window_ms=500)
    if share is not None:
        lines.append(
            f"    scored within 500 ms after a checkpoint trigger: {share[0]:.0%} of them "
            f"(those windows are {share[1]:.0%} of the phase)"
        )
    worst = sorted(found, key=lambda e: len(e.alerts), reverse=True)[:8]
    for episode in sorted(worst, key=lambda e: e.start_ms):
        checkpoint = last_checkpoint(episode.start_ms, checkpoints)
        if checkpoint is None:
            where = "no checkpoint before it"
        else:
            where = (
                f"sent {episode.start_ms - checkpoint.trigger_ms} ms after checkpoint "
                f"{checkpoint.checkpoint_id}'s trigger "
                f"({checkpoint.duration_ms} ms, {checkpoint.size_bytes / 1e6:.1f} MB)"
            )
        lines.append(
            f"    at +{(episode.start_ms - phase_start_ms) / 1000:.1f}s for {episode.span_ms} ms: "
            f"{len(episode.alerts)} alerts, worst {episode.worst_ms} ms, "
            f"{episode.inbound_share:.0%} of it before the scorer; {where}"
        )
    return "\n".join(lines)
