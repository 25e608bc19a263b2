"""Readiness checks at protocol level: each returns None when the server answers, else why not."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable

Probe = Callable[[], str | None]
_TIMEOUT_S = 3.0


def kafka_metadata(bootstrap_servers: str, client_config: dict[str, str] | None = None) -> Probe:
    """A Kafka Metadata request answered with at least one broker."""

    def probe() -> str | None:
        from confluent_kafka.admin import AdminClient

        config: dict[str, str | int | float | bool] = {
            **(client_config or {}),
            "bootstrap.servers": bootstrap_servers,
            "log_level": 0,
        }
        try:
            metadata = AdminClient(config).list_topics(timeout=_TIMEOUT_S)
        except Exception as exc:  # KafkaException carries the librdkafka reason
            return f"no metadata from {bootstrap_servers}: {exc}"
        return None if metadata.brokers else f"{bootstrap_servers} reported no brokers"

    return probe


def http_ok(
    url: str, *, expect_json: Callable[[object], str | None] | None = None, **kwargs: object
) -> Probe:
    """An HTTP GET answered with 2xx (and, optionally, a JSON body that passes ``expect_json``)."""

    def probe() -> str | None:
        import httpx  # imported on first probe: it costs half a second at CLI start-up

        try:
            response = httpx.get(url, timeout=_TIMEOUT_S, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            return f"GET {url}: {exc or type(exc).__name__}"
        if not response.is_success:
            return f"GET {url}: HTTP {response.status_code}"
        return expect_json(response.json()) if expect_json else None

    return probe


def pg_isready(host: str, port: int) -> Probe:
    """pg_isready against the TCP listener clients use."""

    def probe() -> str | None:
        binary = shutil.which("pg_isready")
        if binary is None:
            return "pg_isready not found (install postgresql-client)"
        result = subprocess.run(
            [binary, "-h", host, "-p", str(port), "-t", str(int(_TIMEOUT_S))],
            capture_output=True,
            text=True,
            check=False,
        )
        return None if result.returncode == 0 else (result.stdout.strip() or f"exit {result.returncode}")

    return probe


def flink_taskmanagers(rest_url: str, minimum: int) -> Probe:
    """Flink REST /overview answered, with at least ``minimum`` TaskManagers registered."""

    def check(body: object) -> str | None:
        registered = body.get("taskmanagers", 0) if isinstance(body, dict) else 0
        return None if registered >= minimum else f"{registered} TaskManagers registered, need {minimum}"

    return http_ok(f"{rest_url}/overview", expect_json=check)
