"""`python -m infra.local_s3` as the stack runs it: start-up import of s3rver data, clean stop."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from infra.stack.paths import REPO_ROOT
from tests.stack_harness import free_port


def test_it_imports_an_s3rver_directory_once_then_serves_it_and_stops_on_sigterm(tmp_path: Path) -> None:
    old = tmp_path / "s3"
    body = old / "tansu" / "clusters" / "riverbank" / "meta.json._S3rver_object"
    body.parent.mkdir(parents=True)
    body.write_bytes(b'{"producers":{}}')
    body.with_name("meta.json._S3rver_metadata.json").write_text(
        json.dumps({"content-type": "application/json"})
    )
    port = free_port()
    command = [
        sys.executable, "-m", "infra.local_s3", "--directory", str(tmp_path / "objects"),
        "--import-s3rver", str(old), "--port", str(port), "--bucket", "tansu", "--bucket", "lake",
    ]  # fmt: skip
    server = subprocess.Popen(command, cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                buckets = httpx.get(f"{url}/")
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        assert "<Name>lake</Name>" in buckets.text and "<Name>tansu</Name>" in buckets.text
        got = httpx.get(f"{url}/tansu/clusters/riverbank/meta.json")
        assert (got.status_code, got.content) == (200, b'{"producers":{}}')
        assert got.headers["content-type"] == "application/json"
        assert not old.exists() and (tmp_path / "s3.imported").is_dir()

        # A body file gone from under the server (a disk fault): S3's InternalError, and it serves on.
        for path in (tmp_path / "objects" / "tansu" / "objects").iterdir():
            path.unlink()
        failed = httpx.get(f"{url}/tansu/clusters/riverbank/meta.json")
        assert failed.status_code == 500 and "<Code>InternalError</Code>" in failed.text
        assert httpx.get(f"{url}/").status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=30)
    assert server.returncode == 0, stderr
    assert "imported 1 object(s)" in stderr
    assert "GET /tansu/clusters/riverbank/meta.json failed" in stderr and "FileNotFoundError" in stderr
