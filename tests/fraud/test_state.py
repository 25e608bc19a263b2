"""KeyState's windows against a direct statement of their definitions."""

from __future__ import annotations

import random

from fraud.state import KeyState


def test_in_window_is_the_amounts_with_end_minus_window_before_time_up_to_end() -> None:
    rng = random.Random(7)
    for _ in range(200):
        times = sorted(rng.randrange(0, 1_000) for _ in range(rng.randrange(0, 60)))
        state = KeyState(recent=[(t, float(i)) for i, t in enumerate(times)])
        end, window = rng.randrange(-50, 1_050), rng.randrange(0, 400)
        expected = [a for t, a in state.recent if end - window < t <= end]
        assert state.in_window(end, window) == expected


def test_burst_is_the_densest_window_span_around_the_event() -> None:
    rng = random.Random(11)
    for _ in range(300):
        times = sorted(rng.randrange(0, 1_000) for _ in range(rng.randrange(0, 40)))
        state = KeyState(recent=[(t, float(rng.choice([1, 5, 50]))) for t in times])
        at, window = rng.randrange(0, 1_000), rng.randrange(1, 300)

        def small(amount: float) -> bool:
            return amount < 10

        # Every span [s, s + window) that contains `at`: the counted events in the densest one.
        densest = max(
            sum(1 for t, a in state.recent if s <= t < s + window and small(a))
            for s in range(at - window + 1, at + 1)
        )
        burst = state.burst(at, window, small)
        assert len(burst) == densest
        assert all(small(a) for a in burst)
