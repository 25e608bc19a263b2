"""Build the producers' native modules: ``python -m infra.native_build [--force]`` (``make setup``).

Compiles ``producers.native.MODULES`` with mypyc into ``build/native/`` when the build there does
not match the sources (see ``producers/native.py`` for how it is used). A machine without a C
compiler or the Python headers skips the build and the producers run interpreted; a module that
mypyc refuses fails the build, so the set-up (and CI) says so. Without mypyc or
setuptools (an install without the dev group) it is skipped too.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from producers import native


def toolchain_missing() -> str | None:
    """Why this machine cannot build (no mypyc or setuptools, no C compiler, no Python headers)."""
    for module in ("mypyc", "setuptools"):  # dev group: absent from a runtime-only install
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed"
    compiler = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        return f"no C compiler ({compiler})"
    header = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not header.is_file():
        return f"no Python headers ({header})"
    return None


def build(directory: Path = native.BUILD_DIR, jobs: int = os.cpu_count() or 1) -> None:
    """Compile the modules into ``directory``, replaced as a whole with its manifest written last."""
    from mypyc.build import mypycify
    from setuptools import Distribution  # type: ignore[import-untyped]

    manifest = native.expected_manifest()  # the sources as compiled: a later edit makes it stale
    root = native.PACKAGE_DIR.parent
    directory.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="staging-", dir=directory.parent) as tmp:
        staging = Path(tmp) / "out"
        cwd = Path.cwd()
        os.chdir(root)  # mypyc names a module by its path: producers/x.py is producers.x
        try:
            extensions = mypycify(
                [f"producers/{m}.py" for m in native.MODULES],
                target_dir=str(Path(tmp) / "c"),
                # One extension per module, so the C compiles spread over the cores.
                separate=True,
            )
            dist = Distribution({"name": "riverbank-producers-native", "ext_modules": extensions})
            command = dist.get_command_obj("build_ext")
            command.build_lib = str(staging)
            command.build_temp = str(Path(tmp) / "o")
            command.parallel = jobs
            dist.run_command("build_ext")
        finally:
            os.chdir(cwd)
        (staging / native.MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
        shutil.rmtree(directory, ignore_errors=True)
        staging.rename(directory)


def main(argv: list[str]) -> int:
    force = "--force" in argv
    if native.is_fresh() and not force:
        print(f"native producers: up to date ({native.BUILD_DIR})")
        return 0
    missing = toolchain_missing()
    if missing is not None:
        print(f"native producers: not built, {missing}; the producers run interpreted (slower)")
        return 0
    print(f"native producers: compiling {len(native.MODULES)} modules with mypyc")
    started = time.monotonic()
    build()
    print(f"native producers: built in {time.monotonic() - started:.0f}s ({native.BUILD_DIR})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
