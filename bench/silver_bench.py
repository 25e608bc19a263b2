"""CDC upserts per second into a 1M-row silver accounts table (target: 5,000/s).

A silver ``accounts`` table of ROWS rows is written directly (as silver rows, bucketed like the
refresh writes them), then for each batch size a batch of Debezium updates to random accounts is
appended to bronze and applied with the real refresh path (``refresh_cdc``: delta read from
bronze, CDC resolution, bucket partition replace, commit with bookmark). Only the refresh is
timed. It prints, per batch: changes applied, buckets and rows rewritten, wall seconds and
changes/s, and the process's CPU seconds (all threads) with changes per CPU-second: on a shared,
loaded machine the wall figure mostly measures the other tenants.

Options: --rows N, --buckets N (several allowed), --batch N (several allowed). Figures only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import tempfile
import time
from decimal import Decimal

import pyarrow as pa

from iceberg.catalog import ensure_namespaces, load_lake_catalog
from iceberg.silver import tables
from iceberg.silver.merge import BUCKETS_PROPERTY
from iceberg.silver.pii import PiiProtector
from iceberg.silver.refresh import CDC_TARGETS, SilverLake, refresh_cdc
from iceberg.silver.store import bucket_array
from riverbank.settings import load_settings
from tests.medallion.bronze import Bronze, account, change

TARGET = 5_000
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


def run(rows: int, buckets: int, batches: list[int]) -> None:
    with tempfile.TemporaryDirectory(prefix="silver-bench-") as tmp:
        os.chdir(tmp)
        settings = load_settings(medallion={"buckets": buckets, "pii_key": "b" * 32})
        catalog = load_lake_catalog(settings)
        ensure_namespaces(catalog, settings)
        lake = SilverLake(settings, catalog, PiiProtector(b"b" * 32))
        started = time.perf_counter()
        table = lake.table("accounts")
        table.append(silver_accounts(rows, buckets))
        assert table.properties[BUCKETS_PROPERTY] == str(buckets)
        print(
            f"  {rows:,} rows, {buckets} buckets: seeded in {time.perf_counter() - started:.1f}s", flush=True
        )
        bronze = Bronze(settings, catalog)
        target = next(t for t in CDC_TARGETS if t.table == "accounts")
        rng = random.Random(7)
        lsn = 10
        for size in batches:
            changes = []
            for account_id in rng.sample(range(rows), size):
                lsn += 1
                changes.append(
                    change("u", None, account(account_id, f"{rng.randrange(10**7) / 100:.2f}"), lsn)
                )
            bronze.write("bankdb.public.accounts", changes)
            started, cpu_started = time.perf_counter(), time.process_time()
            result = refresh_cdc(lake, target)
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


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench silver")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--buckets", type=int, action="append")
    parser.add_argument("--batch", type=int, action="append")
    args = parser.parse_args()
    for buckets in args.buckets or [16]:
        run(args.rows, buckets, args.batch or [1_000, 10_000, 50_000])


if __name__ == "__main__":
    main()
