"""Entry point of ``flink run -pym flink_jobs.launch <job>``: runs the job module's ``main()``.

A launcher rather than ``-pym flink_jobs.fraud_job``: run as ``__main__``, a job module's
functions would be pickled by value; imported, workers import them by name from the same code.
"""

from __future__ import annotations

import importlib
import sys

from flink_jobs.runner import JOBS


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in JOBS:
        sys.exit(f"usage: flink run -pym flink_jobs.launch <{'|'.join(sorted(JOBS))}>")
    importlib.import_module(JOBS[sys.argv[1]]).main()


if __name__ == "__main__":
    main()
