"""`riverbank extract` against the real PostgreSQL: (updated_at, primary key) cursors, equal
timestamps across batch boundaries, rows changed during a run and between runs, soft deletes,
a new column, and restarts of the extractor: every row version it reads arrives exactly once."""

from __future__ import annotations

import collections
import datetime as dt
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cdc.extract.runner import run_extractor
from tests.cdc.conftest import Reader, Record
from tests.stack_harness import RunningStack

pytestmark = pytest.mark.integration

TOPIC = "extract.test.public.loans"
CONFIG = """
topic_prefix = "extract.test"
interval_s = 0.2
batch_size = 7
safety_lag_s = 1

[source]
schema = "public"

[[tables]]
name = "loans"
cursor_column = "updated_at"
soft_delete_column = "deleted_at"
"""


def wait_past_safety_lag(db: psycopg.Connection[Any]) -> None:
    """Until the database clock is past the newest updated_at plus the safety lag (1 s)."""
    row = db.execute("SELECT max(updated_at) FROM loans").fetchone()
    newest = row[0] if row else None
    while newest is not None and dt.datetime.now(dt.UTC).replace(tzinfo=None) < newest + dt.timedelta(
        seconds=1.05
    ):
        time.sleep(0.05)


def versions(records: list[Record]) -> list[tuple[int, int]]:
    return [(r.value["loan_id"], r.value["version"]) for r in records if r.value is not None]


def test_extractor_delivers_each_row_version_once_across_runs_and_restarts(
    cdc_stack: RunningStack, db: psycopg.Connection[Any], reader: Reader, tmp_path: Path
) -> None:
    config = tmp_path / "extract.toml"
    config.write_text(CONFIG)
    db.execute(
        "CREATE TABLE loans (loan_id bigint PRIMARY KEY, amount numeric(12, 2) NOT NULL,"
        " version integer NOT NULL, updated_at timestamp NOT NULL, deleted_at timestamp)"
    )
    # 30 rows with one and the same updated_at: batches of 7 split inside equal timestamps.
    db.execute(
        "INSERT INTO loans SELECT i, i * 100.25, 1, (now() AT TIME ZONE 'UTC') - interval '5 seconds', NULL"
        " FROM generate_series(1, 30) AS i"
    )
    first_pass = run_extractor(cdc_stack.settings, config, once=True)
    assert first_pass[0]["rows"] == 30
    stop = threading.Event()
    results: list[list[dict[str, Any]]] = []
    running = threading.Thread(
        target=lambda: results.append(run_extractor(cdc_stack.settings, config, once=False, stop=stop))
    )
    running.start()
    # Changes while the extractor runs: each update is a new version with a fresh timestamp.
    for n in range(40):
        loan_id = 1 + (n * 7) % 30
        db.execute(
            "UPDATE loans SET version = version + 1, updated_at = clock_timestamp() AT TIME ZONE 'UTC'"
            " WHERE loan_id = %s",
            (loan_id,),
        )
        time.sleep(0.03)
    wait_past_safety_lag(db)
    time.sleep(0.5)  # at least one more pass at interval 0.2 s, past the safety lag
    stop.set()
    running.join(60)
    assert results and results[0][0]["rows"] > 0

    # Between runs: updates, a soft delete and a new column, then a fresh extractor (a restart).
    db.execute(
        "UPDATE loans SET version = version + 1, updated_at = clock_timestamp() AT TIME ZONE 'UTC'"
        " WHERE loan_id IN (3, 4)"
    )
    db.execute("ALTER TABLE loans ADD COLUMN officer text")
    db.execute(
        "UPDATE loans SET version = version + 1, deleted_at = now(), officer = 'kim',"
        " updated_at = clock_timestamp() AT TIME ZONE 'UTC' WHERE loan_id = 5"
    )
    wait_past_safety_lag(db)
    result = cdc_stack.cli("extract", "--once", "--json", "--config", str(config))
    assert result.returncode == 0, result.stderr
    # Nothing changed since: another restart writes nothing.
    assert run_extractor(cdc_stack.settings, config, once=True)[0]["rows"] == 0

    final = {row[0]: row[1] for row in db.execute("SELECT loan_id, version FROM loans")}
    records = reader.read([TOPIC], lambda rs: set(final.items()) <= set(versions(rs)), timeout=60)
    seen = versions(records)
    duplicates = [v for v, n in collections.Counter(seen).items() if n > 1]
    assert not duplicates, f"row versions delivered more than once: {duplicates}"
    assert set(final.items()) <= set(seen), "the latest version of every row must arrive"
    assert sorted(i for i, v in seen if v == 1) == list(range(1, 31))  # equal timestamps, 7 per batch
    for loan_id in final:  # versions of a row arrive in order
        mine = [v for i, v in seen if i == loan_id]
        assert mine == sorted(mine)
    assert len([v for i, v in seen if i in (3, 4)]) >= 4  # the between-runs updates arrived

    first = next(r for r in records if r.value is not None and r.value["loan_id"] == 2)
    assert first.value["amount"] == Decimal("200.50") and first.value["__deleted"] is False
    deleted = [r for r in records if r.key == {"loan_id": 5}]
    assert deleted[-2].value["__deleted"] is True and deleted[-2].value["officer"] == "kim"
    assert deleted[-1].value is None  # tombstone after the soft delete
    assert len(reader.registry.get_versions(f"{TOPIC}-value")) == 2  # the added column: version 2
