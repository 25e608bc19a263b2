"""Running the registry: settings -> storage, service, ASGI app -> uvicorn."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit

from starlette.types import ASGIApp

from riverbank.registry.api import create_app
from riverbank.registry.compatibility import Level
from riverbank.registry.errors import ServerConfigError, StoreError
from riverbank.registry.service import RegistryService
from riverbank.registry.storage import SqliteStorage
from riverbank.settings import RegistryServerSettings, Settings

#: The cheap endpoint a readiness probe can use: ``GET /`` answers ``200 {}`` (never needs auth).
HEALTH_PATH = "/"


def default_host_port(settings: Settings) -> tuple[str, int]:
    """Where ``schema_registry.url`` says the registry listens (port 8081 when the URL has none)."""
    url = settings.schema_registry.url or "http://127.0.0.1:8081"
    parts = urlsplit(url)
    default_port = 443 if parts.scheme == "https" else 8081
    return parts.hostname or "127.0.0.1", parts.port or default_port


def load_users(server: RegistryServerSettings) -> dict[str, str]:
    """Basic-auth users from the settings mapping and the optional ``user:password`` file."""
    users = {name: secret.get_secret_value() for name, secret in server.basic_auth_users.items()}
    path = server.basic_auth_file
    if path is not None:
        try:
            lines = Path(path).read_text().splitlines()
        except OSError as exc:
            raise ServerConfigError(f"registry_server.basic_auth_file: cannot read {path}: {exc}") from None
        for number, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, sep, password = line.partition(":")
            if not sep or not name.strip():
                raise ServerConfigError(
                    f"registry_server.basic_auth_file: {path} line {number}: expected 'user:password'"
                )
            users[name.strip()] = password
    return users


def build_app(settings: Settings) -> ASGIApp:
    server = settings.registry_server
    if server.storage_path is None:
        raise ServerConfigError(
            "registry_server.storage_path is not set (set RIVERBANK_REGISTRY_SERVER__STORAGE_PATH)"
        )
    try:
        storage = SqliteStorage(server.storage_path)
    except StoreError as exc:
        raise ServerConfigError(f"registry_server.storage_path: {exc.message}") from None
    service = RegistryService(storage, default_level=Level(server.default_compatibility))
    return create_app(service, max_body_bytes=server.max_body_bytes, users=load_users(server))


def serve(settings: Settings, host: str, port: int) -> None:
    """Serve until interrupted (SIGINT/SIGTERM stop uvicorn gracefully)."""
    import uvicorn

    server = settings.registry_server
    for key, path in (("ssl_certfile", server.ssl_certfile), ("ssl_keyfile", server.ssl_keyfile)):
        if path is not None and not Path(path).is_file():
            raise ServerConfigError(f"registry_server.{key}: {path} is not a file")
    if server.ssl_keyfile is not None and server.ssl_certfile is None:
        raise ServerConfigError("registry_server.ssl_keyfile is set but registry_server.ssl_certfile is not")
    app = build_app(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        access_log=server.access_log,
        ssl_certfile=str(server.ssl_certfile) if server.ssl_certfile else None,
        ssl_keyfile=str(server.ssl_keyfile) if server.ssl_keyfile else None,
        ssl_keyfile_password=(
            server.ssl_keyfile_password.get_secret_value() if server.ssl_keyfile_password else None
        ),
        server_header=False,
    )
