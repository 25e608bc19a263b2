"""Which batches the embedded broker's retention deletes (`infra/stack/broker_retention.py`), from
Tansu's metadata and a listing; the deletion itself runs against a real broker in
tests/integration/test_broker_retention.py."""

from __future__ import annotations

from infra.stack.broker_retention import StoredBatch, TopicRetention, expired, topic_retentions

DAY_MS = 86_400_000


def meta_of(**configs: dict[str, str]) -> dict[str, object]:
    topics = {}
    for name, config in configs.items():
        listed = [{"name": k, "value": v} for k, v in config.items()]
        topics[name] = {"id": "x", "topic": {"name": name, "num_partitions": 3, "configs": listed}}
    return {"topics": topics}


def test_topic_retention_from_its_configuration_or_the_default() -> None:
    meta = meta_of(
        plain={},
        short={"retention.ms": "60000"},
        forever={"retention.ms": "-1"},
        compacted={"cleanup.policy": "compact", "retention.ms": "1"},
        both={"cleanup.policy": "compact,delete", "retention.ms": "5000"},
    )
    assert topic_retentions(meta, 7 * DAY_MS) == [
        TopicRetention("both", 3, 5000),
        TopicRetention("compacted", 3, None),
        TopicRetention("forever", 3, None),
        TopicRetention("plain", 3, 7 * DAY_MS),
        TopicRetention("short", 3, 60000),
    ]
    assert topic_retentions(meta_of(plain={}), -1) == [TopicRetention("plain", 3, None)]
    assert topic_retentions({}, DAY_MS) == []


def key(partition: int, offset: int) -> str:
    return f"clusters/c/topics/t/partitions/{partition:010}/records/{offset:020}.batch"


def test_expired_batches_keep_the_partitions_newest() -> None:
    now = 10_000_000
    partition_0 = [
        StoredBatch(key(0, 0), now - 9000),
        StoredBatch(key(0, 7), now - 6000),
        StoredBatch(key(0, 12), now - 1000),  # within retention
    ]
    assert expired(partition_0, 5000, now) == [key(0, 0), key(0, 7)]
    partition_1 = [
        StoredBatch(key(1, 100), now - 8000),  # expired, but the newest
        StoredBatch(key(1, 0), now - 9000),
    ]
    assert expired(partition_1, 5000, now) == [key(1, 0)]
    assert expired([StoredBatch(key(2, 5), now - 9000)], 5000, now) == []  # the only batch
    # Exactly at the limit a batch is kept; an offset of more digits still sorts as a number.
    at_limit = [StoredBatch(key(0, 9), now - 5000), StoredBatch(key(0, 10), now)]
    assert expired(at_limit, 5000, now) == []
    assert expired([], 5000, now) == []
