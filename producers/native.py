"""The producers' hot path compiled to C with mypyc, used only while the build matches the sources.

One Python thread generates, encodes and queues every card transaction, and interpreted it
spends 20-30 us per event on these machines: below the 50,000 events/s target. The modules in
``MODULES`` are plain typed Python; ``infra/native_build.py`` (run by ``make setup``) compiles
them with mypyc into ``build/native/``, and ``activate()`` (run when ``producers`` is imported)
puts that directory in front of the package's path only when its manifest names this
interpreter's ABI and the SHA-256 of every source as it is now. An edited module therefore runs
interpreted until the next build, never stale. ``RIVERBANK_NATIVE=0`` turns the build off (to
compare, or to step through the code in a debugger).

Both forms give the same events byte for byte; ``tests/producers/test_native.py`` checks that.
"""

from __future__ import annotations

import hashlib
import json
import os
import sysconfig
from pathlib import Path

ENV = "RIVERBANK_NATIVE"
PACKAGE_DIR = Path(__file__).resolve().parent
BUILD_DIR = PACKAGE_DIR.parent / "build" / "native"
MANIFEST = "manifest.json"
#: What one event passes through: generation, its wire form, the encoders, the send loop.
MODULES = (
    "avro_encoder", "bank", "card_encoder", "catalog", "geo", "market", "model", "publisher",
    "runner", "simulation", "streams", "wire",
)  # fmt: skip

#: True once ``activate`` has put a fresh build on the package path.
active = False


def expected_manifest() -> dict[str, object]:
    """What a build of the current sources for this interpreter records."""
    return {
        "abi": sysconfig.get_config_var("EXT_SUFFIX"),
        "sources": {m: hashlib.sha256((PACKAGE_DIR / f"{m}.py").read_bytes()).hexdigest() for m in MODULES},
    }


def is_fresh(directory: Path = BUILD_DIR) -> bool:
    try:
        recorded = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return bool(recorded == expected_manifest())


def activate(package_path: list[str], directory: Path = BUILD_DIR) -> bool:
    """Put a fresh build in front of ``package_path`` (the package's ``__path__``)."""
    global active
    if os.environ.get(ENV, "1") == "0" or not is_fresh(directory):
        return False
    # Built with separate=True, mypyc's runtime modules lie in producers/ too: nothing on sys.path.
    package_path.insert(0, str(directory / "producers"))
    active = True
    return True
