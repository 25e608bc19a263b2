"""`python -m bench [name ...]`: run the benchmarks (all by default) and print their figures."""

from __future__ import annotations

import argparse
import importlib

BENCHMARKS = {
    "stack_memory": "bench.stack_memory",
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", choices=[*BENCHMARKS, []], help="default: all")
    args = parser.parse_args()
    for name in args.names or BENCHMARKS:
        print(f"== {name}")
        importlib.import_module(BENCHMARKS[name]).main()


if __name__ == "__main__":
    main()
