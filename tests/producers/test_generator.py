"""Fast unit tests of the pure generator: determinism, shapes of the streams and of each fraud pattern."""

from __future__ import annotations

import dataclasses
import io
import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import fastavro
import pytest

from producers import catalog, geo
from producers.bank import BankSize, build_bank
from producers.model import (
    BalanceMovement,
    CardTransaction,
    CardUpdate,
    CustomerUpdate,
    Event,
    FraudLabel,
    FraudPattern,
    Payment,
    PriceTick,
    Stream,
    Trade,
    event_id_of,
    event_time_ms_of,
)
from producers.simulation import Simulation, SimulationConfig, split_rate
from producers.streams import STRUCTURING_THRESHOLD_MINOR
from producers.wire import TOPICS, fraud_label_record, key_of, record_of

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
START_MS = 1_767_268_800_000  # 2026-01-01 12:00 UTC
SMALL = BankSize(customers=300, counterparties=60)


def run(
    streams: list[Stream],
    *,
    rate: float = 500,
    duration_s: float = 20,
    seed: int = 11,
    fraud_rate: float = 0.0,
    start_ms: int = START_MS,
    time_scale: float = 1.0,
) -> tuple[list[Event], list[object]]:
    config = SimulationConfig(
        rates=split_rate(streams, rate),
        start_ms=start_ms,
        duration_s=duration_s,
        seed=seed,
        bank_size=SMALL,
        fraud_rate=fraud_rate,
        time_scale=time_scale,
    )
    sim = Simulation(config)
    events = list(sim.events())
    return events, list(sim.side)


def labels_of(side: list[object]) -> list[FraudLabel]:
    return [s for s in side if isinstance(s, FraudLabel)]


@pytest.fixture(scope="module")
def fraud_run() -> tuple[dict[str, Event], list[FraudLabel], list[object]]:
    events, side = run(list(Stream), rate=600, duration_s=120, seed=5, fraud_rate=0.01)
    return {event_id_of(e): e for e in events}, labels_of(side), side


def labelled(
    fraud_run: tuple[dict[str, Event], list[FraudLabel], list[object]], pattern: FraudPattern
) -> Iterator[tuple[FraudLabel, list[Event], list[Event]]]:
    by_id, labels, _ = fraud_run
    chosen = [lb for lb in labels if lb.pattern is pattern]
    assert len(chosen) >= 3, f"too few {pattern.value} labels: {len(chosen)}"
    for label in chosen:
        yield label, [by_id[i] for i in label.event_ids], [by_id[i] for i in label.context_event_ids]


# ---- determinism and volume ---------------------------------------------------------------------


def test_same_seed_gives_the_same_events_and_labels_and_another_seed_does_not() -> None:
    a_events, a_side = run(list(Stream), seed=42, fraud_rate=0.01)
    b_events, b_side = run(list(Stream), seed=42, fraud_rate=0.01)
    c_events, _ = run(list(Stream), seed=43, fraud_rate=0.01)
    assert [record_of(e) for e in a_events] == [record_of(e) for e in b_events]
    assert [key_of(e) for e in a_events] == [key_of(e) for e in b_events]
    assert a_side == b_side
    assert labels_of(a_side)
    assert [event_id_of(e) for e in a_events] != [event_id_of(e) for e in c_events]


def test_events_with_a_hand_written_init_set_every_field_by_its_name() -> None:
    events, side = run(list(Stream), rate=200, duration_s=5)
    samples = [
        next(e for e in events if isinstance(e, CardTransaction)),
        next(e for e in events if isinstance(e, PriceTick)),
        next(m for m in side if isinstance(m, BalanceMovement)),
    ]
    for sample in samples:
        rebuilt = type(sample)(**{f.name: getattr(sample, f.name) for f in dataclasses.fields(sample)})
        assert rebuilt == sample and repr(rebuilt) == repr(sample)
        # Positionally, in the order of the fields (how the generator builds them).
        assert type(sample)(*(getattr(sample, f.name) for f in dataclasses.fields(sample))) == sample


def test_bank_is_deterministic_and_ids_are_offset_by_seed() -> None:
    a, b, c = build_bank(3, SMALL), build_bank(3, SMALL), build_bank(4, SMALL)
    assert [x.token for x in a.cards.values()] == [x.token for x in b.cards.values()]
    assert set(a.customers).isdisjoint(c.customers)
    assert set(a.accounts).isdisjoint(c.accounts)
    for account in a.accounts.values():  # IBAN check digits (ISO 13616 mod 97)
        rearranged = account.iban[4:] + account.iban[:4]
        assert int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def test_event_count_follows_rate_and_duration_and_ids_are_unique() -> None:
    events, _ = run([Stream.TRANSACTIONS], rate=1000, duration_s=10)
    assert 9_500 <= len(events) <= 10_500
    ids = [event_id_of(e) for e in events]
    assert len(set(ids)) == len(ids)
    times = [event_time_ms_of(e) for e in events]
    assert times == sorted(times)
    assert times[0] >= START_MS and times[-1] < START_MS + 10_000


def test_all_streams_share_the_rate() -> None:
    events, _ = run(list(Stream), rate=1000, duration_s=10)
    kinds = Counter(type(e).__name__ for e in events)
    assert kinds["CardTransaction"] > kinds["PriceTick"] > kinds["Payment"] > kinds["Trade"] > 0
    assert 9_000 <= sum(kinds.values()) <= 11_000


# ---- records match the schemas ------------------------------------------------------------------


def _schema(topic: str) -> object:
    import tomllib

    entry = tomllib.loads((SCHEMAS / "subjects.toml").read_text())["topics"][topic]
    return fastavro.parse_schema(json.loads((SCHEMAS / entry["value"]).read_text()))


def test_every_record_is_valid_for_its_topic_schema_and_carries_no_label() -> None:
    events, side = run(list(Stream), rate=800, duration_s=30, fraud_rate=0.01)
    schemas = {s: _schema(t) for s, t in TOPICS.items()}
    streams = {
        CardTransaction: Stream.TRANSACTIONS,
        Payment: Stream.PAYMENTS,
        Trade: Stream.TRADES,
        PriceTick: Stream.TICKS,
    }
    for event in events:
        record = record_of(event)
        schema = schemas[streams[type(event)]]
        fastavro.validate(record, schema, strict=True)
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, schema, record)
        assert not {k for k in record if "fraud" in k or "label" in k}
    label_schema = _schema("fraud.labels")
    labels = labels_of(side)
    assert labels
    for label in labels:
        fastavro.validate(fraud_label_record(label), label_schema, strict=True)


# ---- realistic shapes ---------------------------------------------------------------------------


def test_amounts_follow_their_category() -> None:
    events, _ = run([Stream.TRANSACTIONS], rate=2000, duration_s=20)
    by_mcc: dict[str, list[float]] = defaultdict(list)
    for e in events:
        assert isinstance(e, CardTransaction)
        by_mcc[e.merchant.mcc].append(e.amount_minor / 100 / geo.EUR_RATES[e.currency])
    grocery, transit, electronics = (statistics.median(by_mcc[m]) for m in ("5411", "4111", "5732"))
    assert transit < grocery < electronics
    assert 20 < grocery < 50


def test_daily_cycle_moves_the_mix_of_categories_and_places() -> None:
    # 07:00 UTC: Europe commutes; 23:00 UTC: Europe is in bars.
    morning, _ = run([Stream.TRANSACTIONS], rate=2000, duration_s=10, start_ms=START_MS - 5 * 3_600_000)
    night, _ = run([Stream.TRANSACTIONS], rate=2000, duration_s=10, start_ms=START_MS + 11 * 3_600_000)

    def share(events: list[Event], mccs: set[str]) -> float:
        return sum(1 for e in events if isinstance(e, CardTransaction) and e.merchant.mcc in mccs) / len(
            events
        )

    assert share(night, {"5813"}) > 3 * share(morning, {"5813"})
    assert share(morning, {"4111"}) > 2 * share(night, {"4111"})

    # Fewer European cards are active at night, so travellers abroad make a larger share.
    def abroad(events: list[Event]) -> float:
        return sum(
            1
            for e in events
            if isinstance(e, CardTransaction) and e.merchant.city and e.merchant.city.utc_offset > 2
        ) / len(events)

    assert abroad(night) > 1.5 * abroad(morning)


def test_travellers_pay_where_they_are() -> None:
    events, _ = run([Stream.TRANSACTIONS], rate=2000, duration_s=10)
    bank = build_bank(1, SMALL)
    for e in events:
        assert isinstance(e, CardTransaction)
        customer = bank.customers[e.card.customer_id]
        if e.card_present and e.merchant.city is not None:
            assert e.merchant.city == customer.current_city


# ---- fraud patterns -----------------------------------------------------------------------------


def test_every_pattern_is_injected_and_labels_cover_existing_events(fraud_run) -> None:  # type: ignore[no-untyped-def]
    by_id, labels, _ = fraud_run
    assert {lb.pattern for lb in labels} == set(FraudPattern)
    covered = [i for lb in labels for i in lb.event_ids]
    assert len(covered) == len(set(covered)), "an event belongs to two labels"
    for label in labels:
        events = [by_id[i] for i in label.event_ids]
        assert events
        times = [event_time_ms_of(e) for e in events]
        assert label.first_event_time_ms <= min(times) and max(times) <= label.last_event_time_ms
        assert TOPICS[label.stream]


def test_card_testing_is_a_burst_of_small_online_authorizations(fraud_run) -> None:  # type: ignore[no-untyped-def]
    for label, events, _ in labelled(fraud_run, FraudPattern.CARD_TESTING):
        assert len(events) >= 8
        assert all(isinstance(e, CardTransaction) for e in events)
        txs = [e for e in events if isinstance(e, CardTransaction)]
        assert {e.card.token for e in txs} == {label.card_id}
        assert all(e.channel == "ECOM" and not e.card_present for e in txs)
        assert all(e.amount_minor <= 200 for e in txs)
        assert len({e.device_id for e in txs}) == 1
        customer_devices = set(build_bank(1, SMALL).customers[label.customer_id].devices)
        assert txs[0].device_id not in customer_devices
        assert any(e.status == "DECLINED" for e in txs) or len(txs) < 4
        assert label.last_event_time_ms - label.first_event_time_ms <= 90_000


def test_impossible_travel_is_faster_than_any_plane(fraud_run) -> None:  # type: ignore[no-untyped-def]
    bank = build_bank(1, SMALL)
    for label, events, context in labelled(fraud_run, FraudPattern.IMPOSSIBLE_TRAVEL):
        assert len(context) == 1 and events
        home = context[0]
        assert isinstance(home, CardTransaction) and home.card_present
        assert home.merchant.city == bank.customers[label.customer_id].home
        for far in events:
            assert isinstance(far, CardTransaction) and far.card_present
            assert far.card.token == home.card.token == label.card_id
            assert far.merchant.city is not None and home.merchant.city is not None
            km = geo.distance_km(home.merchant.city, far.merchant.city)
            hours = (far.event_time_ms - home.event_time_ms) / 3_600_000
            assert km > 2000 and km / hours > geo.MAX_TRAVEL_KMH


def test_merchant_anomaly_uses_a_risky_category_the_customer_never_uses(fraud_run) -> None:  # type: ignore[no-untyped-def]
    bank = build_bank(1, SMALL)
    risky = {c.mcc for c in catalog.CATEGORIES if c.high_risk}
    by_id, _, _ = fraud_run
    for label, events, _ in labelled(fraud_run, FraudPattern.MERCHANT_ANOMALY):
        habits = set(bank.customers[label.customer_id].habits)
        for e in events:
            assert isinstance(e, CardTransaction)
            assert e.merchant.mcc in risky and e.merchant.mcc not in habits
    # Normal spending never touches those categories except for customers who have them as habits.
    fraud_ids = {i for lb in fraud_run[1] for i in lb.event_ids}
    for event_id, e in by_id.items():
        if isinstance(e, CardTransaction) and event_id not in fraud_ids and e.merchant.mcc in risky:
            assert e.merchant.mcc in bank.customers[e.card.customer_id].habits


def test_account_takeover_is_a_new_device_abroad_then_a_large_transfer(fraud_run) -> None:  # type: ignore[no-untyped-def]
    bank = build_bank(1, SMALL)
    side = fraud_run[2]
    for label, events, _ in labelled(fraud_run, FraudPattern.ACCOUNT_TAKEOVER):
        customer = bank.customers[label.customer_id]
        payments = [e for e in events if isinstance(e, Payment)]
        assert len(payments) == len(events) == 4  # test transfer and large transfer, initiated and settled
        assert {p.status for p in payments} == {"INITIATED", "SETTLED"}
        assert len({p.payment_id for p in payments}) == 2
        assert all(
            p.device_id not in customer.devices and p.ip_country != customer.home.country for p in payments
        )
        small, large = sorted({p.payment_id: p.amount_minor for p in payments}.values())
        assert large >= 300_000 * geo.EUR_RATES[payments[0].currency] * 0.99 > small
        assert all(p.creditor_account_id is None for p in payments)  # money leaves the bank
        contact = [
            s
            for s in side
            if isinstance(s, CustomerUpdate)
            and s.customer_id == customer.customer_id
            and s.time_ms == label.first_event_time_ms
        ]
        assert contact, "the takeover starts with a change of contact details"


def test_structuring_stays_just_under_the_threshold(fraud_run) -> None:  # type: ignore[no-untyped-def]
    for label, events, _ in labelled(fraud_run, FraudPattern.STRUCTURING):
        payments = [e for e in events if isinstance(e, Payment)]
        assert len(payments) == len(events)
        amounts = {p.payment_id: p.amount_minor for p in payments}
        assert len(amounts) >= 3
        assert all(
            0.9 * STRUCTURING_THRESHOLD_MINOR <= a < STRUCTURING_THRESHOLD_MINOR for a in amounts.values()
        )
        assert {p.debtor_account_id for p in payments} == {label.account_id}


# ---- bank-table changes -------------------------------------------------------------------------


def test_balance_movements_match_the_events(fraud_run) -> None:  # type: ignore[no-untyped-def]
    by_id, _, side = fraud_run
    bank = build_bank(1, SMALL)
    expected: Counter[int] = Counter()
    for e in by_id.values():
        if isinstance(e, CardTransaction) and e.status == "APPROVED":
            expected[e.card.account_id] -= e.billing_minor
        elif isinstance(e, Payment) and e.status == "SETTLED":
            expected[e.debtor_account_id] -= e.amount_minor
            if e.creditor_account_id is not None:
                creditor = bank.accounts[e.creditor_account_id]
                expected[e.creditor_account_id] += geo.convert_minor(
                    e.amount_minor, e.currency, creditor.currency
                )
        elif isinstance(e, Trade):
            account = bank.accounts[e.portfolio.account_id]
            cash = geo.convert_minor(e.notional_e4 // 100, e.instrument.currency, account.currency)
            expected[account.account_id] += -cash if e.side == "BUY" else cash
    moved: Counter[int] = Counter()
    for s in side:
        if isinstance(s, BalanceMovement):
            assert s.event_id in by_id
            moved[s.account_id] += s.amount_minor
    assert {k: v for k, v in moved.items() if v} == {k: v for k, v in expected.items() if v}
    assert any(isinstance(s, CardUpdate) for s in side)
    assert {u.reason for u in side if isinstance(u, CustomerUpdate)} >= {"CONTACT_CHANGE"}


def test_blocked_cards_are_declined() -> None:
    events, side = run([Stream.TRANSACTIONS], rate=2000, duration_s=30, fraud_rate=0.01)
    blocked_at = {}
    for s in side:
        if isinstance(s, CardUpdate):
            blocked_at.setdefault(s.card_id, s.time_ms)
    assert blocked_at
    for e in events:
        if (
            isinstance(e, CardTransaction)
            and e.card.card_id in blocked_at
            and e.event_time_ms > blocked_at[e.card.card_id]
        ):
            assert e.status == "DECLINED"
