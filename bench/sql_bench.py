"""Query times of typical analyst queries (Athena and Redshift SQL) on a 10M-row bronze table.

Generates card transactions with pyarrow (seeded, no Python loop per row), appends them to a
temporary SQL catalog with a file:// warehouse in a few big commits, then runs every query of the
SQL test corpus (tests/lake_sql/corpus.py) through `riverbank sql`'s engine and prints, per query,
the first run (metadata + data read) and the best of the next runs. Figures only, no asserts.

    python -m bench sql [--rows N] [--commits N] [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from iceberg.catalog import load_lake_catalog
from iceberg.sql.errors import SqlError
from iceberg.sql.query import LakeQueryEngine
from riverbank.settings import load_settings
from tests.lake_sql.corpus import ATHENA, REDSHIFT
from tests.lake_sql.lake_data import KPIS, MERCHANT, MERCHANTS, START, TRANSACTIONS, make_data


def _ints(n: int, high: int, seed: int) -> pa.Array:
    return pc.cast(pc.floor(pc.multiply(pc.random(n, initializer=seed), float(high))), pa.int64())


def _pick(vocab: list[str | None], n: int, seed: int) -> pa.Array:
    return pa.array(vocab, pa.string()).take(_ints(n, len(vocab), seed))


def transactions_chunk(n: int, first: int, seed: int) -> pa.Table:
    ids = pc.add(pa.array(range(n), pa.int64()), first)
    merchant_ids = [f"m{i:03d}" for i in range(25)]
    merchant = pa.StructArray.from_arrays(
        [
            _pick(merchant_ids, n, seed + 1),
            _pick([f"Shop {m.upper()} " for m in merchant_ids], n, seed + 2),
            _pick(["DE", "FR", "PT", "US"], n, seed + 3),
            _pick([None, "Berlin", "Paris", "Lisbon", "Austin"], n, seed + 4),
        ],
        fields=list(MERCHANT),
    )
    cents = pc.subtract(_ints(n, 250_500, seed + 5), 500)
    amount = pc.cast(pc.divide(pc.cast(cents, pa.float64()), 100.0), pa.decimal128(18, 2), safe=False)
    seconds = _ints(n, 10 * 86400, seed + 6)
    start_us = int(START.timestamp() * 1_000_000)
    event_time = pc.cast(pc.add(pc.multiply(seconds, 1_000_000), start_us), pa.timestamp("us", tz="UTC"))
    columns = {
        "event_id": pc.utf8_lpad(pc.cast(ids, pa.string()), 9, "0"),
        "card_id": _pick([f"c{i:03d}" for i in range(60)], n, seed + 7),
        "merchant": merchant,
        "amount": amount,
        "fee": pc.round(pc.multiply(pc.random(n, initializer=seed + 8), 3.0), 3),
        "channel": _pick(["POS", "ECOM", "ATM", "CONTACTLESS"], n, seed + 9),
        "status": _pick(["APPROVED", "DECLINED"], n, seed + 10),
        "card_present": pc.less(pc.random(n, initializer=seed + 11), 0.6),
        "event_time": event_time,
        "_topic": pa.array(["bank.card.transactions"] * n, pa.string()),
        "_partition": pc.cast(pc.bit_wise_and(ids, 3), pa.int32()),
        "_offset": pc.shift_right(ids, 2),
    }
    return pa.Table.from_pydict(columns, schema=TRANSACTIONS)


def build_lake(root: Path, rows: int, commits: int) -> LakeQueryEngine:
    settings = load_settings(
        lake={"catalog_uri": f"sqlite:///{root / 'catalog.db'}", "warehouse": (root / "warehouse").as_uri()}
    )
    catalog = load_lake_catalog(settings)
    for namespace in ("bronze", "silver", "gold"):
        catalog.create_namespace(namespace)
    small = make_data(rows=10)
    catalog.create_table("silver.merchants", schema=MERCHANTS).append(small.merchants)
    catalog.create_table("gold.fraud_kpis_daily", schema=KPIS).append(small.kpis)
    table = catalog.create_table("bronze.bank_card_transactions", schema=TRANSACTIONS)
    per_commit = rows // commits
    for i in range(commits):
        started = time.perf_counter()
        chunk = transactions_chunk(per_commit, i * per_commit, seed=100 * i)
        made = time.perf_counter() - started
        table.append(chunk)
        print(
            f"  commit {i + 1}/{commits}: {per_commit:,} rows (generate {made:.1f}s, "
            f"append {time.perf_counter() - started - made:.1f}s)",
            flush=True,
        )
    return LakeQueryEngine(settings, catalog)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench sql")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--commits", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3, help="warm runs per query after the first")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="riverbank-sql-bench-") as tmp:
        print(f"building bronze.bank_card_transactions: {args.rows:,} rows in {args.commits} commits")
        engine = build_lake(Path(tmp), args.rows, args.commits)
        with engine:
            print(f"{'dialect':<9} {'first s':>8} {'warm s':>8} {'rows':>7}  query")
            warm_all: list[float] = []
            for dialect, cases in (("athena", ATHENA), ("redshift", REDSHIFT)):
                for case in cases:
                    try:
                        started = time.perf_counter()
                        result = engine.query(case.query, dialect)  # type: ignore[arg-type]
                        first = time.perf_counter() - started
                        warm = []
                        for _ in range(args.repeat):
                            started = time.perf_counter()
                            engine.query(case.query, dialect)  # type: ignore[arg-type]
                            warm.append(time.perf_counter() - started)
                    except SqlError as exc:
                        print(f"{dialect:<9} {'-':>8} {'-':>8} {'-':>7}  {case.name}: {exc}")
                        continue
                    best = min(warm) if warm else first
                    warm_all.append(best)
                    print(
                        f"{dialect:<9} {first:8.3f} {best:8.3f} {len(result.rows):7,}  {case.name}",
                        flush=True,
                    )
            if warm_all:
                print(
                    f"queries: {len(warm_all)}; warm median {statistics.median(warm_all):.3f}s, "
                    f"max {max(warm_all):.3f}s on {args.rows:,} rows"
                )


if __name__ == "__main__":
    main()
