"""`python -m bench scorer`: the fraud job's Python work per event, without Flink or Kafka.

Runs :class:`flink_jobs.fraud_scorer.BatchScorer` (what the job runs on each batch: decode, score,
encode, pack) over the fraud bench's seeded traffic, and pickles every changed state as the job
writes it back to Flink state. Only the schema registry runs (the embedded one, for the encoders'
schema ids). Prints the cost per event after a warm-up that gives cards a history, and a digest of
every output, so a change to the scorer can be checked for identical results as well as speed.

The time an event swings with the machine's speed (by a quarter within minutes on the 2-core dev
machine). Instructions hardly do: callgrind counts those of the timed part alone, whatever else
runs on the machine, in a few minutes (a fixed hash seed keeps dictionaries laid out alike)::

    PYTHONHASHSEED=0 valgrind --tool=callgrind --toggle-collect=functools_reduce \
        .venv/bin/python -m bench scorer --warm-up 20000 --events 5000

and divide the ``Collected`` figure it prints by the events timed.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import pickle
import statistics
import time

from bench.fraud_traffic import generate
from flink_jobs.avro import Encoder
from flink_jobs.batches import BatchRecord, pack_records
from flink_jobs.fraud_scorer import BatchScorer, JobConfig
from flink_jobs.schemas import ensure_fraud_subjects
from fraud.events import Source
from fraud.job import initial_rules
from fraud.state import KeyState
from riverbank.settings import load_settings
from tests.stack_harness import environ, running_stack

#: A fixed event-time start (2026-01-01): the same seed then gives the same outputs in every run.
_START_MS = 1_767_225_600_000


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench scorer")
    parser.add_argument("--warm-up", type=int, default=300_000, help="events scored before timing")
    parser.add_argument("--events", type=int, default=40_000, help="events timed")
    parser.add_argument("--batch", type=int, default=500, help="events per batch (one Flink element)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with running_stack("scorer-bench", ["registry"]) as stack, environ(stack.env):
        settings = load_settings()
        ensure_fraud_subjects(settings)
        config = JobConfig.from_settings(settings)
        scorer = BatchScorer(config)
        topics = {source: topic for topic, source in config.sources}
        encoders = {source: Encoder(config.registry, f"{topic}-value") for source, topic in topics.items()}

        started = time.monotonic()
        traffic = generate(args.seed, args.warm_up + args.events, _START_MS)
        batches = _packed_batches(traffic.events, encoders, topics, args.batch)
        print(f"{len(traffic.events):,} events generated and encoded in {time.monotonic() - started:.0f}s")

        states: dict[str, KeyState] = {}
        rules = initial_rules()
        digest = hashlib.sha256()

        def state_of(key: str) -> KeyState:
            state = states.get(key)
            if state is None:
                state = states[key] = KeyState()
            return state

        def run(_: None, batch: tuple[str, bytes, int]) -> None:
            topic, packed, _count = batch
            out, changed = scorer.score(
                topic,
                0,
                packed,
                rules,
                watermark_ms=None,
                state_of=state_of,
                now_ms=0,  # a fixed clock: outputs comparable between runs
            )
            for state in changed.values():
                pickle.dumps(state.to_dict())  # what the job's write-back costs
            digest.update(out.to_bytes())

        cut = _batch_holding(batches, args.warm_up)
        for batch in batches[:cut]:
            run(None, batch)
        remembered = [len(state.times) for state in states.values()]
        timed = batches[cut:]
        count = sum(n for _, _, n in timed)
        started = time.perf_counter()
        # Only the timed batches run inside functools.reduce, so callgrind can count their
        # instructions alone (module docstring): a figure the machine's speed does not move.
        functools.reduce(run, timed, None)
        elapsed = time.perf_counter() - started
        print(
            f"scorer: {count:,} events after {sum(n for _, _, n in batches[:cut]):,} of warm-up, "
            f"{len(states):,} keys remembering median {statistics.median(remembered):.0f} / "
            f"max {max(remembered)} events: {elapsed / count * 1e6:.1f} us an event, "
            f"{count / elapsed:,.0f} events/s on one core; outputs sha256 {digest.hexdigest()[:16]}"
        )


def _packed_batches(
    events: list[tuple[Source, dict[str, object]]],
    encoders: dict[Source, Encoder],
    topics: dict[Source, str],
    size: int,
) -> list[tuple[str, bytes, int]]:
    """(topic, packed records, count) per batch of up to ``size`` consecutive events of one topic,
    in the layout the connector hands the job (``batches.records``: offset, timestamp, key, value,
    no headers)."""
    out: list[tuple[str, bytes, int]] = []
    batch: list[BatchRecord] = []
    batch_source: Source | None = None
    for offset, (source, record) in enumerate(events):
        if batch and (source is not batch_source or len(batch) >= size):
            out.append((topics[batch_source or source], pack_records(batch), len(batch)))
            batch = []
        batch_source = source
        batch.append(BatchRecord(offset, offset, None, encoders[source](record), ()))
    if batch and batch_source is not None:
        out.append((topics[batch_source], pack_records(batch), len(batch)))
    return out


def _batch_holding(batches: list[tuple[str, bytes, int]], event: int) -> int:
    """The index of the first batch after ``event`` events."""
    seen = 0
    for index, (_, _, count) in enumerate(batches):
        if seen >= event:
            return index
        seen += count
    return len(batches)
