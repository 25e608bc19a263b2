"""CDC upserts per second into a 1M-row silver accounts table (target: 5,000/s).

A silver ``accounts`` table of ROWS rows is written directly (as silver rows, bucketed like the
refresh writes them), then for each batch size a batch of Debezium updates to random accounts is
appended to bronze and applied with the real refresh path (``refresh_cdc``: delta read from
bronze, CDC resolution, bucket partition replace, commit with bookmark). Only the refresh is
timed. It prints, per batch: changes applied, buckets and rows rewritten, wall seconds and
changes/s, and the process's CPU seconds (all threads) with changes per CPU-second: on a shared,
loaded machine the wall figure mostly measures the other tenants.

With ``--sustained RATE``, a second process appends RATE changes/s to bronze (one commit a
second, as the sink commits) for ``--seconds`` while this one refreshes silver back to back, the
way ``riverbank lake refresh --loop`` runs. It prints the applied rate (all changes over the time
from the first bronze commit to the silver pass that applied the last change), the backlog, and
the staleness of each second's changes (bronze commit to the silver commit that applied them),
p50/p95/max and first versus last quarter: whether silver keeps up with RATE, measured rather
than extrapolated.

Options: --rows N, --buckets N (several allowed), --batch N (several allowed), --sustained RATE,
--seconds S. Figures only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import random
import statistics
import tempfile
import time
from decimal import Decimal
from multiprocessing.connection import Connection

import pyarrow as pa

from iceberg.catalog import ensure_namespaces, load_lake_catalog
from iceberg.silver import tables
from iceberg.silver.merge import BUCKETS_PROPERTY
from iceberg.silver.pii import PiiProtector
from iceberg.silver.refresh import CDC_TARGETS, SilverLake, refresh_cdc
from iceberg.silver.store import bucket_array
from riverbank.settings import Settings, load_settings
from tests.medallion.bronze import Bronze, account, change

TARGET = 5_000
PII_KEY = b"b" * 32
T0 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)


def silver_accounts(rows: int, buckets: int) -> pa.Table:
    ids = pa.array(range(rows), pa.int64())
    n = rows
    columns = {
        "account_id": ids,
        "customer_id": pa.array([i // 2 for i in range(n)], pa.int64()),
        "iban": pa.array([f"GB00RVBK{i:014d}" for i in range(n)]),
        "currency": pa.array(["EUR"] * n),
        "account_type": pa.array(["CURRENT"] * n),
        "status": pa.array(["OPEN"] * n),
        "balance": pa.array([Decimal(i % 100_000).scaleb(-2) for i in range(n)], tables.MONEY),
        "credit_limit": pa.nulls(n, tables.MONEY),
        "opened_at": pa.array([T0] * n, tables.TS),
        "closed_at": pa.nulls(n, tables.TS),
        "updated_at": pa.array([T0] * n, tables.TS),
        "_lsn": pa.array([1] * n, pa.int64()),
        "_op_ts": pa.array([T0] * n, tables.TS),
        "_bronze_partition": pa.nulls(n, pa.int32()),
        "_bronze_offset": pa.nulls(n, pa.int64()),
        "_bucket": bucket_array(ids, buckets),
    }
    return pa.table(columns, schema=tables.ACCOUNTS)


CDC_TOPIC = "bankdb.public.accounts"
TARGET_TABLE = next(t for t in CDC_TARGETS if t.table == "accounts")


def _settings(buckets: int) -> Settings:
    return load_settings(medallion={"buckets": buckets, "pii_key": PII_KEY.decode()})


def _seeded_lake(rows: int, buckets: int) -> SilverLake:
    """A lake in the current directory with ``rows`` silver accounts."""
    settings = _settings(buckets)
    catalog = load_lake_catalog(settings)
    ensure_namespaces(catalog, settings)
    lake = SilverLake(settings, catalog, PiiProtector(PII_KEY))
    started = time.perf_counter()
    table = lake.table("accounts")
    table.append(silver_accounts(rows, buckets))
    assert table.properties[BUCKETS_PROPERTY] == str(buckets)
    print(f"  {rows:,} rows, {buckets} buckets: seeded in {time.perf_counter() - started:.1f}s", flush=True)
    return lake


def _updates(rng: random.Random, rows: int, size: int, lsn: int) -> list[dict[str, object]]:
    """Debezium updates of ``size`` distinct random accounts, LSNs after ``lsn``."""
    return [
        change("u", None, account(account_id, f"{rng.randrange(10**7) / 100:.2f}"), lsn + i + 1)
        for i, account_id in enumerate(rng.sample(range(rows), size))
    ]


def run(rows: int, buckets: int, batches: list[int]) -> None:
    with tempfile.TemporaryDirectory(prefix="silver-bench-") as tmp:
        os.chdir(tmp)
        lake = _seeded_lake(rows, buckets)
        bronze = Bronze(lake.settings, lake.catalog)
        rng = random.Random(7)
        lsn = 10
        for size in batches:
            changes = _updates(rng, rows, size, lsn)
            lsn += size
            bronze.write(CDC_TOPIC, changes)
            started, cpu_started = time.perf_counter(), time.process_time()
            result = refresh_cdc(lake, TARGET_TABLE)
            seconds = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
            touched = len({a % buckets for a in (c["after"]["account_id"] for c in changes)})
            print(
                f"  batch {size:>7,}: applied {result.applied:>7,}  buckets rewritten {touched:>4}/{buckets}"
                f"  ~{touched * rows // buckets:>9,} rows  wall {seconds:6.2f}s"
                f" {result.applied / seconds:>7,.0f} changes/s  cpu {cpu:6.2f}s"
                f" {result.applied / cpu:>7,.0f} changes/cpu-s  (target {TARGET:,}/s)",
                flush=True,
            )


def _bronze_writer(
    directory: str, rows: int, buckets: int, rate: int, seconds: float, out: Connection
) -> None:
    """Append ``rate`` changes to bronze once a second; report (commit time, changes so far)."""
    os.chdir(directory)
    settings = _settings(buckets)
    bronze = Bronze(settings, load_lake_catalog(settings))
    rng = random.Random(11)
    written, started = 0, time.time()
    while time.time() - started < seconds:
        tick = time.time()
        bronze.write(CDC_TOPIC, _updates(rng, rows, rate, 10 + written))
        written += rate
        out.send((time.time(), written))
        time.sleep(max(0.0, 1.0 - (time.time() - tick)))
    out.send(None)


def sustained(rows: int, buckets: int, rate: int, seconds: float) -> None:
    with tempfile.TemporaryDirectory(prefix="silver-bench-") as tmp:
        os.chdir(tmp)
        lake = _seeded_lake(rows, buckets)
        Bronze(lake.settings, lake.catalog).write(CDC_TOPIC, [])  # the bronze table exists
        refresh_cdc(lake, TARGET_TABLE)
        receive, send = multiprocessing.Pipe(duplex=False)
        writer = multiprocessing.get_context("spawn").Process(
            target=_bronze_writer, args=(tmp, rows, buckets, rate, seconds, send)
        )
        writes: list[tuple[float, int]] = []  # bronze commit time, changes written up to it
        passes: list[tuple[float, int]] = []  # silver commit time, bronze changes read up to it
        cpu_started = time.process_time()
        writer.start()
        done, read = False, 0
        while not done or read < writes[-1][1]:
            while receive.poll():
                item = receive.recv()
                if item is None:
                    done = True
                else:
                    writes.append(item)
            result = refresh_cdc(lake, TARGET_TABLE)
            read += result.read
            if result.read:
                passes.append((time.time(), read))
            else:
                time.sleep(0.05)
        writer.join()
        # The writer's clock starts after its imports: time the run from its first commit (which
        # holds a second of changes) to the silver pass that applied the last change.
        span = passes[-1][0] - writes[0][0] + 1.0
        # Each second's changes: from their bronze commit to the first silver commit covering them.
        stale = [next(t for t, n in passes if n >= w) - at for at, w in writes]
        backlog = max(w - next((n for t, n in reversed(passes) if t <= at), 0) for at, w in writes)
        quarter = max(1, len(stale) // 4)
        print(
            f"  sustained {rate:,}/s offered for {seconds:.0f}s: silver applied {read:,} changes in"
            f" {span:.1f}s from the first bronze commit to the pass that applied the last one:"
            f" {read / span:,.0f}/s ({len(passes)} refresh passes)",
            flush=True,
        )
        print(
            f"  staleness (bronze commit -> silver commit) p50 {statistics.median(stale):.1f}s"
            f" p95 {sorted(stale)[int(0.95 * (len(stale) - 1))]:.1f}s max {max(stale):.1f}s;"
            f" median of the first quarter {statistics.median(stale[:quarter]):.1f}s, of the last"
            f" {statistics.median(stale[-quarter:]):.1f}s (a growing median: silver falls behind);"
            f" largest backlog {backlog:,} changes;"
            f" this process {time.process_time() - cpu_started:.0f} cpu-s",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench silver")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--buckets", type=int, action="append")
    parser.add_argument("--batch", type=int, action="append")
    parser.add_argument("--sustained", type=int, metavar="RATE", help="changes/s offered to bronze")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    for buckets in args.buckets or [16]:
        if args.sustained:
            sustained(args.rows, buckets, args.sustained, args.seconds)
        else:
            run(args.rows, buckets, args.batch or [1_000, 10_000, 50_000])


if __name__ == "__main__":
    main()
