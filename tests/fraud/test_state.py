"""KeyState's windows against a direct statement of their definitions."""

from __future__ import annotations

import random

from fraud.state import KeyState


def test_in_window_is_the_amounts_with_end_minus_window_before_time_up_to_end() -> None:
    rng = random.Random(7)
    for _ in range(200):
        times = sorted(rng.randrange(0, 1_000) for _ in range(rng.randrange(0, 60)))
        state = KeyState.remembering((t, float(i)) for i, t in enumerate(times))
        end, window = rng.randrange(-50, 1_050), rng.randrange(0, 400)
        expected = [a for t, a in state.recent if end - window < t <= end]
        assert list(state.in_window(end, window)) == expected


def test_burst_is_the_densest_window_span_around_the_event() -> None:
    rng = random.Random(11)
    for _ in range(300):
        times = sorted(rng.randrange(0, 1_000) for _ in range(rng.randrange(0, 40)))
        state = KeyState.remembering((t, float(rng.choice([1, 5, 50]))) for t in times)
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


def test_a_state_survives_its_keyed_state_form_and_reads_the_earlier_form() -> None:
    import pickle
    from decimal import Decimal

    from fraud.events import ScoredEvent, Source

    state = KeyState()
    for i, t in enumerate([5_000, 1_000, 3_000, 3_000, 9_000]):
        event = ScoredEvent(source=Source.CARD, event_id=f"e{i}", key="c1", customer_id="u1",
                            account_id="a1", card_id="c1", amount=Decimal(10 + i), currency="GBP",
                            event_time_ms=t, merchant_id=f"m{i % 2}", country="GB", latitude=51.5,
                            longitude=-0.1)  # fmt: skip
        state.add(event)
    restored = KeyState.from_dict(pickle.loads(pickle.dumps(state.to_dict())))  # noqa: S301
    assert restored == state
    assert restored.recent == [(1_000, 11.0), (3_000, 12.0), (3_000, 13.0), (5_000, 10.0), (9_000, 14.0)]
    # Savepoints taken before the arrays held a list of (time, amount) pairs.
    earlier = state.to_dict() | {"recent": [[1_000, 11.0], [3_000, 12.0]]}
    del earlier["times"], earlier["amounts"]
    assert KeyState.from_dict(earlier).recent == [(1_000, 11.0), (3_000, 12.0)]
    # And before the first-seen maps were pickled apart, they were plain entries.
    maps = {"merchants": dict(state.merchants), "countries": dict(state.countries), "devices": {}}
    before_seen = {k: v for k, v in state.to_dict().items() if k != "seen"} | maps
    assert KeyState.from_dict(before_seen) == state


def test_the_written_first_seen_maps_follow_every_change_and_only_then_are_pickled_again() -> None:
    import pickle
    from decimal import Decimal

    from fraud.events import ScoredEvent, Source

    def event(t: int, merchant: str) -> ScoredEvent:
        return ScoredEvent(source=Source.CARD, event_id=f"e{t}", key="c1", customer_id="u1",
                           account_id="a1", card_id="c1", amount=Decimal(1), currency="GBP",
                           event_time_ms=t, merchant_id=merchant, country="GB")  # fmt: skip

    def written(state: KeyState) -> KeyState:
        return KeyState.from_dict(pickle.loads(pickle.dumps(state.to_dict())))  # noqa: S301

    state = KeyState()
    state.add(event(5_000, "m1"))
    first = state.to_dict()["seen"]
    state.add(event(6_000, "m1"))  # seen before, and earlier: nothing new to write
    assert state.to_dict()["seen"] is first
    state.add(event(7_000, "m2"))  # a new merchant
    assert written(state).merchants == {"m1": 5_000, "m2": 7_000}
    again = state.to_dict()["seen"]
    state.add(event(4_000, "m1"))  # out of order: m1 was first seen earlier than thought
    assert state.to_dict()["seen"] is not again
    assert written(state).merchants == {"m1": 4_000, "m2": 7_000}
    assert written(state).countries == {"GB": 4_000}
