"""`python -m tests.iceberg.sink_proc TOPIC...`: a zygote that forks bronze sinks on test topics.

The crash test kills sinks with SIGKILL twenty times. Importing pyiceberg and pyarrow takes seconds
on a busy machine, so this process imports once, then forks one sink per line read on stdin and
prints ``pid <child's pid>``; the child prints ``open <its pid>`` once it is consuming (a child
killed during start-up may still have printed it, so the reader matches the pid). Nothing that starts
threads (Kafka clients, the catalog's engine) exists before the fork. Settings come from the
RIVERBANK_* environment; the topics use the payment schema.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

import pyiceberg.catalog.sql
import pyiceberg.io.pyarrow  # noqa: F401

import iceberg.sink  # noqa: F401  (imported before forking: that is the point)


def child(topics: list[str]) -> None:
    from iceberg.sink import run_sink
    from riverbank.settings import load_settings
    from tests.iceberg.lakekit import payment_table

    settings = load_settings()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    tables = {t: payment_table(settings, t) for t in topics}
    run_sink(settings, tables=tables, stop=stop, on_open=lambda _: print(f"open {os.getpid()}", flush=True))


def main() -> None:
    topics = sys.argv[1:]
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped automatically
    print("ready", flush=True)
    for _ in sys.stdin:
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            code = 0
            try:
                child(topics)
            except BaseException as exc:
                sys.stderr.write(f"sink child failed: {exc!r}\n")
                code = 1
            finally:
                sys.stdout.flush()
                os._exit(code)
        print(f"pid {pid}", flush=True)


if __name__ == "__main__":
    main()
