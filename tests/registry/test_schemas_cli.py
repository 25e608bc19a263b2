"""`riverbank schemas register | check` as a user and CI run them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.registry.conftest import RegistryProcess

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def run_cli(args: list[str], cwd: Path, url: str = "http://127.0.0.1:9") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("RIVERBANK_")}
    env["RIVERBANK_SCHEMA_REGISTRY__URL"] = url
    env["RIVERBANK_CONFIG"] = str(cwd / "absent.toml")
    return subprocess.run(
        [sys.executable, "-m", "riverbank", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def copy_catalog(dst: Path, topic_suffix: str = "") -> Path:
    """A copy of schemas/; topic names get a suffix so tests sharing a registry do not collide."""
    shutil.copytree(SCHEMAS, dst)
    if topic_suffix:
        catalog = dst / "subjects.toml"
        text = catalog.read_text()
        for line in [ln for ln in text.splitlines() if ln.startswith("[topics.")]:
            text = text.replace(line, line.replace('"]', f'{topic_suffix}"]'))
        catalog.write_text(text)
    return dst


def break_card_transactions(schemas: Path) -> None:
    """A new required field without default: BACKWARD-incompatible."""
    path = schemas / "cards" / "card_transaction.avsc"
    data = json.loads(path.read_text())
    data["fields"].append({"name": "risk_score", "type": "double", "doc": "Score.", "field-id": 99})
    path.write_text(json.dumps(data, indent=2))


def evolve_card_transactions(schemas: Path) -> None:
    """A new optional field with default: compatible."""
    path = schemas / "cards" / "card_transaction.avsc"
    data = json.loads(path.read_text())
    data["fields"].append(
        {"name": "wallet", "type": ["null", "string"], "default": None, "doc": "Wallet.", "field-id": 98}
    )
    path.write_text(json.dumps(data, indent=2))


@pytest.mark.integration
def test_register_then_check_against_the_registry(registry: RegistryProcess, tmp_path: Path) -> None:
    schemas = copy_catalog(tmp_path / "schemas", f".{uuid.uuid4().hex[:6]}")
    result = run_cli(["schemas", "register", "--json", "--schemas-dir", str(schemas)], tmp_path, registry.url)
    assert result.returncode == 0, result.stderr
    registered = json.loads(result.stdout)
    # 9 topics x (key, value); the Debezium-owned CDC subjects are not registered.
    assert len(registered) == 18
    assert all(r["id"] > 0 and r["version"] == 1 for r in registered)
    # Registering again is idempotent: same ids, no new versions.
    again = json.loads(
        run_cli(
            ["schemas", "register", "--json", "--schemas-dir", str(schemas)], tmp_path, registry.url
        ).stdout
    )
    assert [(r["subject"], r["id"]) for r in again] == [(r["subject"], r["id"]) for r in registered]

    ok = run_cli(["schemas", "check", "--online", "--schemas-dir", str(schemas)], tmp_path, registry.url)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    evolve_card_transactions(schemas)
    assert (
        run_cli(["schemas", "check", "--schemas-dir", str(schemas)], tmp_path, registry.url).returncode == 0
    )

    break_card_transactions(schemas)
    bad = run_cli(["schemas", "check", "--schemas-dir", str(schemas), "--json"], tmp_path, registry.url)
    assert bad.returncode == 2
    report = json.loads(bad.stdout)
    assert report["mode"] == "online" and report["ok"] is False
    broken = [s for s in report["subjects"] if not s["compatible"]]
    assert [s["subject"].split(".")[:3] for s in broken] == [["bank", "card", "transactions"]]
    assert "risk_score" in bad.stderr and "BACKWARD" in bad.stderr


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def test_offline_check_against_git_history(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    schemas = copy_catalog(repo / "schemas")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "v1")

    clean = run_cli(["schemas", "check", "--offline", "--schemas-dir", "schemas"], repo)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    evolve_card_transactions(schemas)
    git(repo, "commit", "-q", "-am", "v2: optional field")
    # The committed change is compared with the earlier commit: compatible.
    assert run_cli(["schemas", "check", "--offline", "--schemas-dir", "schemas"], repo).returncode == 0

    break_card_transactions(schemas)
    bad = run_cli(["schemas", "check", "--offline", "--schemas-dir", "schemas"], repo)
    assert bad.returncode == 2
    assert "bank.card.transactions-value" in bad.stderr
    assert "risk_score" in bad.stderr

    # Committing the break does not hide it: CI (work tree == HEAD) still compares with older commits.
    git(repo, "commit", "-q", "-am", "v3: breaking")
    assert run_cli(["schemas", "check", "--offline", "--schemas-dir", "schemas"], repo).returncode == 2

    # Auto mode falls back to git history when the registry is unreachable, and says so.
    auto = run_cli(["schemas", "check", "--schemas-dir", "schemas"], repo)
    assert auto.returncode == 2
    assert "not reachable" in auto.stderr


def test_check_reports_schema_rule_violations(tmp_path: Path) -> None:
    schemas = copy_catalog(tmp_path / "schemas")
    path = schemas / "market" / "price_tick.avsc"
    data = json.loads(path.read_text())
    del data["fields"][0]["doc"]
    path.write_text(json.dumps(data))
    result = run_cli(["schemas", "check", "--offline", "--schemas-dir", str(schemas)], tmp_path)
    assert result.returncode == 1
    assert "instrument_id" in result.stderr and "no doc" in result.stderr


def test_register_reports_an_unreachable_registry(tmp_path: Path) -> None:
    result = run_cli(["schemas", "register", "--schemas-dir", str(SCHEMAS)], tmp_path, "http://127.0.0.1:9")
    assert result.returncode == 1
    assert "not reachable" in result.stderr
    assert "Traceback" not in result.stderr
