"""The producers against the real broker, registry and PostgreSQL of the session stack."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from infra.stack.supervisor import Supervisor
from producers import geo
from producers.bank import BankSize, build_bank
from producers.bankdb import connect
from producers.model import FraudLabel, Stream, event_id_of, event_time_ms_of
from producers.publisher import AvroPublisher, ProducerOptions
from producers.runner import RunOptions, RunReport, produce, simulation_config
from producers.simulation import Simulation
from producers.wire import DLQ_TOPIC, LABELS_TOPIC, TOPICS, WIRE, fraud_label_record
from tests.producers.conftest import Record, read_topics
from tests.stack_harness import RunningStack, free_port

pytestmark = pytest.mark.integration

SIZE = BankSize(customers=400, counterparties=80)
ALL_TOPICS = [TOPICS[s] for s in Stream]


def expected_run(
    options: RunOptions, report: RunReport, start_ms: int
) -> tuple[dict[str, Any], list[FraudLabel]]:
    """Regenerate the run from its seed: the ids every topic must hold, and the labels."""
    sim = Simulation(simulation_config(options, report.seed, start_ms))
    events = {event_id_of(e): e for e in sim.events()}
    return events, [s for s in sim.side if isinstance(s, FraudLabel)]


def record_id(record: Record) -> str:
    value = record.value
    if record.topic == TOPICS[Stream.TICKS]:
        epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        micros = (value["tick_time"] - epoch) // dt.timedelta(microseconds=1)
        return f"{value['instrument_id']}:{value['venue']}:{micros}:{value['sequence']}"
    return str(value["event_id"] if record.topic != LABELS_TOPIC else value["label_id"])


@pytest.fixture(scope="module")
def all_streams_run(bank_stack: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    start_ms = int(time.time() * 1000)
    labels_file = tmp_path_factory.mktemp("labels") / "labels.jsonl"
    options = RunOptions(
        streams=tuple(Stream),
        rate=400,
        duration_s=8,
        seed=90_001,
        bank_seed=77,
        bank_size=SIZE,
        fraud_rate=0.03,
        change_rate=0.01,
        start_ms=start_ms,
        labels_file=labels_file,
    )
    report = produce(bank_stack.settings, options)
    events, labels = expected_run(options, report, start_ms)
    wanted = set(events) | {lb.label_id for lb in labels}

    def done(records: list[Record]) -> bool:
        return wanted <= {record_id(r) for r in records}

    records = read_topics(bank_stack, [*ALL_TOPICS, LABELS_TOPIC], done=done)
    mine = [r for r in records if record_id(r) in wanted]
    return {
        "options": options,
        "report": report,
        "events": events,
        "labels": labels,
        "records": mine,
        "labels_file": labels_file,
    }


def test_run_is_complete_and_every_event_is_in_its_topic_exactly_once(
    all_streams_run: dict[str, Any],
) -> None:
    report: RunReport = all_streams_run["report"]
    assert report.complete, report.to_json()
    assert report.failed == report.dlq == report.unflushed == 0
    counts = Counter(record_id(r) for r in all_streams_run["records"] if r.topic != LABELS_TOPIC)
    expected = set(all_streams_run["events"])
    assert set(counts) == expected, f"missing {len(expected - set(counts))}"
    assert max(counts.values()) == 1, f"duplicates: {[k for k, v in counts.items() if v > 1][:5]}"
    assert report.generated == len(expected)


def test_records_decode_with_the_registered_schemas(all_streams_run: dict[str, Any]) -> None:
    events = all_streams_run["events"]
    seen = Counter(r.topic for r in all_streams_run["records"])
    assert set(seen) == {*ALL_TOPICS, LABELS_TOPIC}
    for record in all_streams_run["records"]:
        if record.topic == LABELS_TOPIC:
            continue
        assert isinstance(record.key, str)
        event = events[record_id(record)]
        value = record.value
        # The Kafka timestamp is the event time: the fraud job's watermarks are built on it.
        assert record.timestamp == event_time_ms_of(event)
        if record.topic == TOPICS[Stream.TRANSACTIONS]:
            assert record.key == value["card_id"] == event.card.token
            assert value["amount"] == Decimal(event.amount_minor).scaleb(-2)
            assert value["merchant"]["mcc"] == event.merchant.mcc
            assert value["event_time"].timestamp() * 1000 == event.event_time_ms
        elif record.topic == TOPICS[Stream.PAYMENTS]:
            assert record.key == value["debtor_account_id"] == str(event.debtor_account_id)
            assert value["status"] == event.status
        elif record.topic == TOPICS[Stream.TRADES]:
            assert record.key == value["portfolio_id"]
            assert value["notional"] == Decimal(event.notional_e4).scaleb(-4)
        else:
            assert record.key == value["instrument_id"]
            assert value["sequence"] == event.sequence


def test_same_key_always_lands_on_the_same_partition(all_streams_run: dict[str, Any]) -> None:
    partitions: dict[tuple[str, str], set[int]] = defaultdict(set)
    for record in all_streams_run["records"]:
        partitions[(record.topic, record.key)].add(record.partition)
    assert all(len(p) == 1 for p in partitions.values())
    repeated = [
        k for k in partitions if sum(1 for r in all_streams_run["records"] if (r.topic, r.key) == k) > 1
    ]
    assert repeated, "no key was used twice; the test proves nothing"
    assert len({p for ps in partitions.values() for p in ps}) > 1


def test_labels_on_the_topic_and_in_the_file_match_the_events_they_describe(
    all_streams_run: dict[str, Any],
) -> None:
    labels: list[FraudLabel] = all_streams_run["labels"]
    assert len({lb.pattern for lb in labels}) >= 3, [lb.pattern for lb in labels]
    on_topic = {
        str(r.value["label_id"]): r.value for r in all_streams_run["records"] if r.topic == LABELS_TOPIC
    }
    in_file = [json.loads(line) for line in Path(all_streams_run["labels_file"]).read_text().splitlines()]
    assert {lb["label_id"] for lb in in_file} == set(on_topic) == {lb.label_id for lb in labels}
    by_id = {record_id(r): r for r in all_streams_run["records"] if r.topic != LABELS_TOPIC}
    for label in labels:
        value = on_topic[label.label_id]
        assert value["pattern"] == label.pattern.value
        assert value["event_ids"] == list(label.event_ids) == fraud_label_record(label)["event_ids"]
        for event_id in [*value["event_ids"], *value["context_event_ids"]]:
            record = by_id[event_id]
            assert record.topic == value["topic"]
            if record.topic == TOPICS[Stream.TRANSACTIONS]:
                assert record.value["card_id"] == value["card_id"]
                assert record.value["customer_id"] == value["customer_id"]
            else:
                assert record.value["debtor_account_id"] == value["account_id"]
                assert record.value["debtor_customer_id"] == value["customer_id"]
            assert "label" not in json.dumps(record.value, default=str).lower()


def test_postgres_balances_equal_the_sum_of_movements_and_match_the_events(
    bank_stack: RunningStack, all_streams_run: dict[str, Any]
) -> None:
    report: RunReport = all_streams_run["report"]
    # What the events on the topics imply for each account (decoded records, not the generator).
    implied: Counter[str] = Counter()
    accounts_ccy: dict[str, str] = {}
    with connect(bank_stack.settings.source_db) as conn:
        for account_id, currency in conn.execute("SELECT account_id::text, currency FROM accounts"):
            accounts_ccy[account_id] = currency
        for record in all_streams_run["records"]:
            v = record.value
            if record.topic == TOPICS[Stream.TRANSACTIONS] and v["status"] == "APPROVED":
                implied[v["account_id"]] -= int(v["billing_amount"] * 100)
            elif record.topic == TOPICS[Stream.PAYMENTS] and v["status"] == "SETTLED":
                implied[v["debtor_account_id"]] -= int(v["amount"] * 100)
                if v["creditor_account_id"]:
                    to = accounts_ccy[v["creditor_account_id"]]
                    implied[v["creditor_account_id"]] += geo.convert_minor(
                        int(v["amount"] * 100), v["currency"], to
                    )
            elif record.topic == TOPICS[Stream.TRADES]:
                cash = geo.convert_minor(
                    int(v["notional"] * 100), v["currency"], accounts_ccy[v["account_id"]]
                )
                implied[v["account_id"]] += -cash if v["side"] == "BUY" else cash
        moved = {
            str(a): int(s * 100)
            for a, s in conn.execute(
                "SELECT account_id, sum(amount) FROM balance_movements"
                " WHERE run_id = %s AND kind <> 'OPENING'"
                " GROUP BY account_id",
                (report.run_id,),
            )
        }
        mismatched = list(
            conn.execute(
                "SELECT a.account_id, a.balance, coalesce(sum(m.amount), 0) FROM accounts a"
                " LEFT JOIN balance_movements m ON m.account_id = a.account_id"
                " GROUP BY a.account_id, a.balance HAVING a.balance <> coalesce(sum(m.amount), 0)"
            )
        )
        blocked = conn.execute("SELECT count(*) FROM cards WHERE status = 'BLOCKED'").fetchone()
        changed = conn.execute(
            "SELECT count(*) FROM customers WHERE updated_at > created_at + interval '1 day'"
        ).fetchone()
    assert report.db_movements > 0
    assert {k: v for k, v in moved.items() if v} == {k: v for k, v in implied.items() if v}
    assert mismatched == []
    assert blocked is not None and blocked[0] > 0
    assert changed is not None and changed[0] > 0


def test_a_record_that_cannot_be_serialized_goes_to_the_dlq_with_the_reason(bank_stack: RunningStack) -> None:
    topic = TOPICS[Stream.PAYMENTS]
    publisher = AvroPublisher(bank_stack.settings, [topic])
    marker = f"dlq-test-{time.time_ns()}"
    bad = {"event_id": marker, "payment_id": "P1", "amount": "not a decimal"}
    try:
        assert publisher.send(topic, "acct-1", bad, event_id=marker) is False
    finally:
        assert publisher.close(30) == 0
    assert publisher.stats.dlq == 1 and publisher.stats.acked == 1 and publisher.stats.failed == 0

    def found(records: list[Record]) -> bool:
        return any(r.headers.get("dlq.event.id") == marker.encode() for r in records)

    records = read_topics(bank_stack, [DLQ_TOPIC], done=found, decode=False, idle_s=0.5)
    [record] = [r for r in records if r.headers.get("dlq.event.id") == marker.encode()]
    assert record.headers["dlq.source.topic"] == topic.encode()
    assert record.headers["dlq.reason"]
    assert record.headers["dlq.error.class"].decode().split(".")[-1].endswith("Error")
    assert json.loads(record.value)["amount"] == "not a decimal"
    assert record.key == b"acct-1"


@pytest.mark.parametrize("how", ["delivery timeout", "purged at close"])
def test_records_the_broker_never_acknowledges_are_counted_failed_never_acked(
    bank_stack: RunningStack, how: str
) -> None:
    """librdkafka reports failed deliveries only and ``acked`` is derived from the rest, so a
    record that never reached a broker must come out failed, whether it timed out or was still
    queued when the publisher closed."""
    settings = bank_stack.settings
    nowhere = settings.kafka.model_copy(update={"bootstrap_servers": f"127.0.0.1:{free_port()}"})
    timeout_ms = 1500 if how == "delivery timeout" else 300_000
    publisher = AvroPublisher(
        settings.model_copy(update={"kafka": nowhere}),
        [TOPICS[Stream.PAYMENTS]],
        ProducerOptions(delivery_timeout_ms=timeout_ms),
    )
    sim = Simulation(
        simulation_config(RunOptions(streams=(Stream.PAYMENTS,), rate=100, duration_s=2, seed=5), 5, 0)
    )
    events = list(sim.events())
    _, key_of, record_of = WIRE[type(events[0])]
    for event in events:
        assert publisher.send(TOPICS[Stream.PAYMENTS], key_of(event), record_of(event))
    publisher.poll(0)
    assert publisher.stats.acked == 0  # all still queued
    unsent = publisher.close(flush_timeout_s=10 if how == "delivery timeout" else 1)
    stats = publisher.stats
    assert unsent == (0 if how == "delivery timeout" else len(events))
    assert stats.sent == stats.failed == len(events) > 50
    assert stats.acked == 0 and not stats.acked_by_topic
    assert stats.failed_by_topic == {TOPICS[Stream.PAYMENTS]: len(events)}
    reason = "_MSG_TIMED_OUT" if how == "delivery timeout" else "_PURGE_QUEUE"
    assert set(stats.errors) == {reason}, stats.errors


def test_cli_produce_prints_final_counters(bank_stack: RunningStack) -> None:
    result = bank_stack.cli(
        "produce", "--stream", "ticks", "--rate", "100", "--duration", "2", "--no-db", "--json"
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["complete"] is True
    assert data["acked"] == data["sent"] == data["generated"] > 100
    assert data["acked_by_topic"] == {"market.ticks": data["generated"]}


@pytest.fixture(scope="module")
def restart_run(bank_stack: RunningStack) -> dict[str, Any]:
    """A 20 s run of card transactions; the broker is stopped at 6 s and started again 5 s later."""
    start_ms = int(time.time() * 1000)
    options = RunOptions(
        streams=(Stream.TRANSACTIONS,),
        rate=300,
        duration_s=20,
        seed=90_002,
        bank_seed=78,
        bank_size=SIZE,
        fraud_rate=0.0,
        start_ms=start_ms,
        write_db=False,
        labels_to_kafka=False,
        flush_timeout_s=120,
    )
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["report"] = produce(bank_stack.settings, options)
        except BaseException as exc:  # reported by the assertion below
            result["error"] = exc

    thread = threading.Thread(target=run, name="producer")
    thread.start()
    supervisor = Supervisor(bank_stack.paths)
    time.sleep(6)
    supervisor.stop("kafka")
    stopped_at = time.monotonic()
    time.sleep(5)
    supervisor.start("kafka")
    outage = time.monotonic() - stopped_at
    thread.join(timeout=240)
    assert not thread.is_alive()
    assert "error" not in result, repr(result.get("error"))
    report: RunReport = result["report"]
    events, _ = expected_run(options, report, start_ms)

    def done(records: list[Record]) -> bool:
        return set(events) <= {record_id(r) for r in records}

    records = read_topics(bank_stack, [TOPICS[Stream.TRANSACTIONS]], done=done, timeout_s=60)
    counts = Counter(record_id(r) for r in records if record_id(r) in events)
    missing = len(set(events) - set(counts))
    duplicated = {k: v for k, v in counts.items() if v > 1}
    summary = (
        f"outage {outage:.1f}s, generated {len(events)}, in topic {len(counts)}, missing {missing}, "
        f"duplicated {len(duplicated)} ids ({sum(duplicated.values()) - len(duplicated)} extra copies), "
        f"report {report.to_json()}"
    )
    print(summary)
    return {"report": report, "missing": missing, "duplicated": duplicated, "summary": summary}


def test_broker_stopped_mid_run_the_producer_recovers_and_every_record_is_acknowledged(
    restart_run: dict[str, Any],
) -> None:
    report: RunReport = restart_run["report"]
    assert report.broker_errors, "the broker outage was not noticed: " + restart_run["summary"]
    assert report.complete, restart_run["summary"]
    assert report.acked == report.sent == report.generated and report.failed == 0


def test_broker_stopped_mid_run_every_event_is_in_the_topic_exactly_once(restart_run: dict[str, Any]) -> None:
    # Holds because infra/stack/kafka_guard.py warms Tansu up after a restart; without it Tansu 0.6
    # restarts a cold partition at offset 0 and overwrites acknowledged records.
    assert restart_run["missing"] == 0 and not restart_run["duplicated"], restart_run["summary"]


def test_a_card_blocked_in_an_earlier_run_stays_blocked_in_the_next_run(bank_stack: RunningStack) -> None:
    size = BankSize(customers=40, counterparties=10)
    common = {"streams": (Stream.TRANSACTIONS,), "rate": 500, "duration_s": 4, "bank_seed": 79,
              "bank_size": size, "fraud_rate": 0.0, "labels_to_kafka": False}  # fmt: skip
    first = produce(bank_stack.settings, RunOptions(seed=90_003, change_rate=0.05, **common))  # type: ignore[arg-type]
    assert first.complete, first.to_json()
    bank = build_bank(79, size)
    with connect(bank_stack.settings.source_db) as conn:
        blocked = {
            row[0]
            for row in conn.execute(
                "SELECT card_id FROM cards WHERE status = 'BLOCKED' AND card_id = ANY(%s)",
                (list(bank.cards),),
            )
        }
    assert blocked, "the first run blocked no card"

    second_seed = 90_004
    second = produce(bank_stack.settings, RunOptions(seed=second_seed, change_rate=0.0, **common))  # type: ignore[arg-type]
    assert second.complete and second.cards_restored >= len(blocked), second.to_json()
    prefix = f"A{second_seed:x}"

    def mine(records: list[Record]) -> list[Record]:
        return [r for r in records if r.value["authorization_id"].startswith(prefix)]

    topic = [TOPICS[Stream.TRANSACTIONS]]
    records = mine(read_topics(bank_stack, topic, done=lambda rs: len(mine(rs)) >= second.generated))
    assert len(records) == second.generated
    card_of = {c.token: c.card_id for c in bank.cards.values()}
    on_blocked = [r.value for r in records if card_of[r.value["card_id"]] in blocked]
    others = [r.value for r in records if card_of[r.value["card_id"]] not in blocked]
    assert on_blocked, "no transaction of the second run used a blocked card"
    assert {v["status"] for v in on_blocked} == {"DECLINED"}, Counter(v["status"] for v in on_blocked)
    assert Counter(v["decline_reason"] for v in on_blocked).most_common(1)[0][0] == "CARD_BLOCKED"
    assert sum(v["status"] == "APPROVED" for v in others) > 0.9 * len(others)
