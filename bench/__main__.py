"""`python -m bench [name ...]`: run the benchmarks (all by default) and print their figures."""

from __future__ import annotations

import argparse
import importlib
import sys

BENCHMARKS = {
    "stack_memory": "bench.stack_memory",
    "registry": "bench.registry_bench",
    "producer": "bench.producer_bench",
    "sql": "bench.sql_bench",
    "cdc": "bench.cdc_bench",
    "lake": "bench.lake_bench",
    "silver": "bench.silver_bench",
    "fraud": "bench.fraud_bench",
    "scorer": "bench.scorer_bench",
    "local_s3": "bench.local_s3_bench",
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", choices=[*BENCHMARKS, []], help="default: all")
    args, extra = parser.parse_known_args()
    for name in args.names or BENCHMARKS:
        print(f"== {name}", flush=True)
        # Each benchmark parses its own options: the unknown ones (e.g. `fraud --quick`) go to it.
        sys.argv = [name, *extra]
        importlib.import_module(BENCHMARKS[name]).main()


if __name__ == "__main__":
    main()
