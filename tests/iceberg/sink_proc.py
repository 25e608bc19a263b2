"""`python -m tests.iceberg.sink_proc [--bank] TOPIC...`: a zygote that forks bronze sinks on test topics.

The crash test kills sinks with SIGKILL twenty times. Importing pyiceberg and pyarrow takes seconds
on a busy machine, so this process imports once, then forks one sink per line read on stdin and
prints ``pid <child's pid>``; the child prints ``open <its pid>`` once it is consuming (a child
killed during start-up may still have printed it, so the reader matches the pid), or
``failed <its pid> <error>``. Nothing that starts
threads (Kafka clients, the catalog's engine) exists before the fork. Settings come from the
RIVERBANK_* environment; the topics use the payment schema.

With ``--bank`` a child also lands the bank database's CDC topics (their real bronze tables) and
runs the silver/gold refresh loop in a thread, as ``riverbank lake refresh --loop`` does: a kill
then lands inside silver commits too, and the ledger invariant covers both writers.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

import pyiceberg.catalog.sql
import pyiceberg.io.pyarrow  # noqa: F401

import iceberg.medallion
import iceberg.sink  # noqa: F401  (imported before forking: that is the point)
from iceberg.silver.refresh import CDC_TARGETS

BANK_TOPICS = sorted({t.topic for t in CDC_TARGETS})


def child(topics: list[str], bank: bool) -> None:
    from iceberg.sink import run_sink
    from iceberg.tables import bronze_tables
    from riverbank.settings import load_settings
    from tests.iceberg.lakekit import payment_table

    settings = load_settings()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    tables = {t: payment_table(settings, t) for t in topics}
    if bank:
        tables |= bronze_tables(settings, BANK_TOPICS)
        refresher = threading.Thread(target=refresh, args=(stop,), daemon=True)
        refresher.start()
    run_sink(settings, tables=tables, stop=stop, on_open=lambda _: print(f"open {os.getpid()}", flush=True))


def refresh(stop: threading.Event) -> None:
    from iceberg.catalog import load_lake_catalog
    from iceberg.medallion import refresh_loop
    from riverbank.settings import load_settings

    settings = load_settings()
    try:
        refresh_loop(settings, load_lake_catalog(settings), stop)
    except BaseException as exc:
        failed(exc)
        os._exit(3)  # a sink without its refresh would leave silver behind silently


def failed(exc: BaseException) -> None:
    """Tell the test at once (it reads stdout), rather than leave it waiting for an ``open``."""
    print(f"failed {os.getpid()} {exc!r}", flush=True)


def main() -> None:
    bank = "--bank" in sys.argv[1:]
    topics = [a for a in sys.argv[1:] if a != "--bank"]
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped automatically
    print("ready", flush=True)
    for _ in sys.stdin:
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            code = 0
            try:
                child(topics, bank)
            except BaseException as exc:
                failed(exc)
                code = 1
            finally:
                sys.stdout.flush()
                os._exit(code)
        print(f"pid {pid}", flush=True)


if __name__ == "__main__":
    main()
