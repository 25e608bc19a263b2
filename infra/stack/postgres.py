"""The bank's source PostgreSQL: initdb, server command, and the database and role CDC uses."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from pathlib import Path

from infra.stack.paths import StatePaths
from riverbank.errors import MissingDependencyError, StackError
from riverbank.settings import Settings

_APT_HINT = "apt-get install -y postgresql (or run `make setup`)"


def server_bindir() -> Path:
    """The newest Debian PostgreSQL server's bin directory."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[4]))
    if candidates:
        return candidates[-1].parent
    found = shutil.which("postgres")
    if found:
        return Path(found).resolve().parent
    raise MissingDependencyError("PostgreSQL server", _APT_HINT)


def run_as() -> str | None:
    """PostgreSQL refuses to run as root: then it runs as the 'postgres' system user."""
    return "postgres" if os.geteuid() == 0 else None


def password(settings: Settings) -> str:
    """The riverbank role's password: from settings, else generated once into the state dir."""
    if settings.source_db.password is not None:
        return settings.source_db.password.get_secret_value()
    path = settings.source_db.password_file or settings.stack.source_db_password_file
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    return path.read_text().strip()


def data_dir(paths: StatePaths) -> Path:
    return paths.postgres / "data"


def socket_dir(paths: StatePaths) -> Path:
    return paths.postgres / "run"


def prepare(paths: StatePaths) -> None:
    """Create the cluster once: data checksums, scram for TCP, owner-only unix socket."""
    data, sockets = data_dir(paths), socket_dir(paths)
    user = run_as()
    for directory in (paths.postgres, sockets):
        directory.mkdir(parents=True, exist_ok=True)
        if user:
            shutil.chown(directory, user, user)
    sockets.chmod(0o700)
    if (data / "PG_VERSION").exists():
        return
    command = [
        str(server_bindir() / "initdb"),
        "-D",
        str(data),
        "-U",
        "postgres",
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        "--data-checksums",
        "--encoding=UTF8",
        "--locale=C",
    ]
    if user:
        command = ["runuser", "-u", user, "--", *command]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StackError(f"initdb failed for {data}: {(result.stderr or result.stdout).strip()}")


def server_command(settings: Settings, paths: StatePaths) -> list[str]:
    return [
        str(server_bindir() / "postgres"),
        "-D",
        str(data_dir(paths)),
        "-p",
        str(settings.source_db.port),
        "-k",
        str(socket_dir(paths)),
        "-c",
        f"listen_addresses={settings.source_db.host}",
        "-c",
        "unix_socket_permissions=0700",
        # Debezium reads the write-ahead log through a logical replication slot.
        "-c",
        "wal_level=logical",
        "-c",
        "max_replication_slots=10",
        "-c",
        "max_wal_senders=10",
        "-c",
        "shared_buffers=64MB",
    ]


def create_bank_database(settings: Settings, paths: StatePaths) -> None:
    """Create the login role (with REPLICATION for CDC) and the bank database; idempotent."""
    db = settings.source_db
    # The password travels in psql's environment (\getenv), never on a command line or in SQL text.
    statements = """
\\getenv role_password RIVERBANK_ROLE_PASSWORD
SELECT format('CREATE ROLE %I LOGIN REPLICATION', :'role')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \\gexec
ALTER ROLE :"role" WITH LOGIN REPLICATION PASSWORD :'role_password';
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \\gexec
"""
    command = [
        str(server_bindir() / "psql"),
        "-h",
        str(socket_dir(paths)),
        "-p",
        str(db.port),
        "-U",
        "postgres",
        "-d",
        "postgres",
        "-v",
        "ON_ERROR_STOP=1",
        "-v",
        f"role={db.user}",
        "-v",
        f"db={db.database}",
        "-q",
    ]
    env = {**os.environ, "RIVERBANK_ROLE_PASSWORD": password(settings)}
    result = subprocess.run(command, input=statements, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StackError(f"could not create database {db.database!r}: {result.stderr.strip()}")
