"""A cache for pyiceberg's ``Transaction.table_metadata`` (pyiceberg 0.12).

The property replays the transaction's staged updates onto the table's metadata and deep-copies
the result on every read, and one append reads it about 18 times. A deep copy costs in proportion
to the table's snapshot history, so a sink committing every 2 s slowed from 46 ms a commit (100
snapshots) to 217 ms (400), and would pass its own commit interval within hours. Here the
result is computed once per (table metadata, staged updates) pair: both are replaced, never
mutated, when they change, so identity is the cache key. Upstream tracks the same change
(apache/iceberg-python, "cache Transaction.table_metadata between reads").
"""

from __future__ import annotations

from typing import Any

_installed = False


def install() -> None:
    """Replace the property once per process (idempotent)."""
    global _installed
    if _installed:
        return
    from pyiceberg.table import Transaction
    from pyiceberg.table.update import update_table_metadata

    def table_metadata(self: Any) -> Any:
        base, updates = self._table.metadata, self._updates
        cached = self.__dict__.get("_riverbank_metadata")
        if cached is not None and cached[0] is base and cached[1] is updates:
            return cached[2]
        result = update_table_metadata(base, updates)
        self._riverbank_metadata = (base, updates, result)
        return result

    Transaction.table_metadata = property(table_metadata)  # type: ignore[method-assign,assignment]
    _installed = True
