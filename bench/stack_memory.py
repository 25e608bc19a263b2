"""Idle memory of the embedded stack (target: under 3 GiB RSS in total).

Starts a private stack on free ports (so it never disturbs a developer's own), lets it settle,
samples every component's resident memory (process tree) a few times and prints the figures.
"""

from __future__ import annotations

import statistics
import time

from infra import stack
from riverbank.settings import ALL_COMPONENTS
from tests.stack_harness import running_stack

SETTLE_S = 20
SAMPLES = 5
TARGET_BYTES = 3 * 2**30


def main() -> None:
    with running_stack("bench-memory", list(ALL_COMPONENTS)) as handle:
        time.sleep(SETTLE_S)
        samples = []
        for _ in range(SAMPLES):
            samples.append(stack.status(handle.settings))
            time.sleep(2)
    print(f"idle after {SETTLE_S}s, {SAMPLES} samples, median RSS per component (process tree):")
    for i, component in enumerate(samples[0].components):
        rss = statistics.median(s.components[i].rss_bytes for s in samples)
        print(f"  {component.name:<20} {rss / 2**20:8.0f} MiB")
    supervisor = statistics.median(s.supervisor_rss_bytes for s in samples)
    total = statistics.median(s.total_rss_bytes for s in samples)
    print(f"  {'supervisord':<20} {supervisor / 2**20:8.0f} MiB")
    verdict = "within" if total < TARGET_BYTES else "OVER"
    print(f"  {'total':<20} {total / 2**20:8.0f} MiB  ({verdict} the 3 GiB target)")


if __name__ == "__main__":
    main()
