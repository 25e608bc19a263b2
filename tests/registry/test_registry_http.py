"""Confluent's REST contract at the HTTP level: error bodies and codes, content types, config, mode,
restart durability, TLS and basic auth."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry.error import SchemaRegistryError

from tests.registry.conftest import RegistryProcess

pytestmark = pytest.mark.integration

V1 = "application/vnd.schemaregistry.v1+json"
SCHEMA = json.dumps({"type": "record", "name": "A", "fields": [{"name": "a", "type": "int"}]})


def post(http: httpx.Client, path: str, body: Any, content_type: str | None = V1) -> httpx.Response:
    headers = {"Content-Type": content_type} if content_type else {}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return http.post(path, content=content, headers=headers)


def assert_error(resp: httpx.Response, status: int, code: int) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error_code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    assert resp.headers["content-type"].startswith(V1)


def test_health_endpoint(http: httpx.Client) -> None:
    resp = http.get("/")
    assert resp.status_code == 200
    assert resp.json() == {}


@pytest.mark.parametrize(
    "schema",
    [
        "{not json",
        json.dumps({"type": "record", "name": "A"}),
        json.dumps({"type": "record", "name": "A", "fields": [{"name": "a", "type": "int", "default": "x"}]}),
        json.dumps({"type": "nosuchtype"}),
        "",
    ],
)
def test_invalid_schema_is_422_42201(http: httpx.Client, subject: str, schema: str) -> None:
    assert_error(post(http, f"/subjects/{subject}/versions", {"schema": schema}), 422, 42201)
    assert_error(
        post(http, f"/compatibility/subjects/{subject}/versions/latest", {"schema": schema}), 422, 42201
    )


def test_other_schema_types_answer_42201(http: httpx.Client, subject: str) -> None:
    resp = post(
        http, f"/subjects/{subject}/versions", {"schema": 'syntax = "proto3";', "schemaType": "PROTOBUF"}
    )
    assert_error(resp, 422, 42201)
    assert http.get("/schemas/types").json() == ["AVRO"]


def test_not_found_codes(http: httpx.Client, subject: str) -> None:
    assert_error(http.get("/schemas/ids/987654"), 404, 40403)
    assert_error(http.get("/schemas/ids/987654/subjects"), 404, 40403)
    assert_error(http.get(f"/subjects/{subject}/versions"), 404, 40401)
    assert_error(http.get(f"/subjects/{subject}/versions/latest"), 404, 40401)
    assert_error(post(http, f"/subjects/{subject}", {"schema": SCHEMA}), 404, 40401)
    assert post(http, f"/subjects/{subject}/versions", {"schema": SCHEMA}).status_code == 200
    assert_error(http.get(f"/subjects/{subject}/versions/7"), 404, 40402)
    other = json.dumps({"type": "record", "name": "A", "fields": [{"name": "b", "type": "int"}]})
    assert_error(post(http, f"/subjects/{subject}", {"schema": other}), 404, 40403)
    assert_error(http.get(f"/subjects/{subject}/versions/0"), 422, 42202)
    assert_error(http.get(f"/subjects/{subject}/versions/abc"), 422, 42202)
    assert_error(http.get("/schemas/ids/abc"), 404, 404)
    assert_error(http.get("/no/such/route"), 404, 404)
    assert_error(http.patch(f"/subjects/{subject}/versions"), 405, 405)


def test_version_endpoints_answer_like_confluent(http: httpx.Client, subject: str) -> None:
    schema_id = post(http, f"/subjects/{subject}/versions?normalize=false", {"schema": SCHEMA}).json()["id"]
    body = http.get(f"/subjects/{subject}/versions/latest").json()
    assert body == {"subject": subject, "version": 1, "id": schema_id, "schema": body["schema"]}
    assert json.loads(body["schema"]) == json.loads(SCHEMA)
    assert http.get(f"/subjects/{subject}/versions/1/schema").json() == json.loads(SCHEMA)
    assert http.get(f"/schemas/ids/{schema_id}/schema").json() == json.loads(SCHEMA)
    assert http.get(f"/schemas/ids/{schema_id}").json() == {"schema": body["schema"]}
    assert {"subject": subject, "version": 1} in http.get(f"/schemas/ids/{schema_id}/versions").json()
    assert http.get(f"/subjects/{subject}/versions/1/referencedby").json() == []
    listed = http.get("/schemas", params={"subjectPrefix": subject}).json()
    assert [s["id"] for s in listed] == [schema_id]


def test_compatibility_endpoint_verbose(http: httpx.Client, subject: str) -> None:
    post(http, f"/subjects/{subject}/versions", {"schema": SCHEMA})
    bad = json.dumps({"type": "record", "name": "A", "fields": [{"name": "a", "type": "string"}]})
    resp = post(http, f"/compatibility/subjects/{subject}/versions/latest?verbose=true", {"schema": bad})
    assert resp.status_code == 200
    body = resp.json()
    assert body["is_compatible"] is False
    assert any("type" in m.lower() for m in body["messages"])
    ok = post(http, f"/compatibility/subjects/{subject}/versions", {"schema": SCHEMA}).json()
    assert ok == {"is_compatible": True}
    # A subject that does not exist yet: anything is compatible with "latest".
    assert post(http, f"/compatibility/subjects/{subject}-new/versions/latest", {"schema": bad}).json()[
        "is_compatible"
    ]
    assert_error(post(http, f"/compatibility/subjects/{subject}/versions/5", {"schema": SCHEMA}), 404, 40402)


@pytest.mark.parametrize(
    "content_type",
    [
        V1,
        "application/vnd.schemaregistry+json",
        "application/json",
        "application/json; charset=utf-8",
        "application/octet-stream",
        None,
    ],
)
def test_accepted_request_content_types(http: httpx.Client, subject: str, content_type: str | None) -> None:
    resp = post(http, f"/subjects/{subject}/versions", {"schema": SCHEMA}, content_type)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith(V1)


def test_unsupported_content_type_is_415_and_unacceptable_accept_is_406(
    http: httpx.Client, subject: str
) -> None:
    assert_error(post(http, f"/subjects/{subject}/versions", {"schema": SCHEMA}, "text/plain"), 415, 415)
    resp = http.get("/subjects", headers={"Accept": "text/html"})
    assert resp.status_code == 406
    assert resp.json()["error_code"] == 406
    assert (
        http.get("/subjects", headers={"Accept": "application/json"})
        .headers["content-type"]
        .startswith("application/json")
    )
    assert http.get("/subjects", headers={"Accept": "*/*"}).headers["content-type"].startswith(V1)


def test_malformed_bodies_never_500(http: httpx.Client, subject: str) -> None:
    for body in (
        b"{nope",
        b"",
        b"[1,2]",
        b'"str"',
        b'{"schema": 5}',
        b'{"schema": "x", "references": 7}',
        b'{"schema": "\\"int\\"", "references": [{"name": 1}]}',
        b"\xff\xfe",
    ):
        resp = post(http, f"/subjects/{subject}/versions", body)
        assert resp.status_code in (400, 422), (body, resp.status_code, resp.text)
        assert isinstance(resp.json()["error_code"], int)
    assert_error(
        http.put(
            "/config/" + subject, content=b'{"compatibility": "SIDEWAYS"}', headers={"Content-Type": V1}
        ),
        422,
        42203,
    )
    assert_error(
        http.put("/mode/" + subject, content=b'{"mode": "SIDEWAYS"}', headers={"Content-Type": V1}),
        422,
        42204,
    )


def test_oversized_body_is_413(http: httpx.Client, subject: str) -> None:
    big = {
        "schema": json.dumps({"type": "record", "name": "A", "doc": "x" * (5 * 1024 * 1024), "fields": []})
    }
    assert_error(post(http, f"/subjects/{subject}/versions", big), 413, 413)


def test_oversized_chunked_body_is_413(http: httpx.Client, subject: str) -> None:
    def chunks() -> Any:
        for _ in range(80):
            yield b" " * 65536

    resp = http.post(f"/subjects/{subject}/versions", content=chunks(), headers={"Content-Type": V1})
    assert_error(resp, 413, 413)


def test_subject_config_and_mode(http: httpx.Client, subject: str) -> None:
    assert_error(http.get(f"/config/{subject}"), 404, 40408)
    assert http.get(f"/config/{subject}", params={"defaultToGlobal": "true"}).json()["compatibilityLevel"]
    for level in (
        "NONE",
        "BACKWARD",
        "BACKWARD_TRANSITIVE",
        "FORWARD",
        "FORWARD_TRANSITIVE",
        "FULL",
        "FULL_TRANSITIVE",
    ):
        resp = http.put(f"/config/{subject}", json={"compatibility": level.lower()})
        assert resp.json() == {"compatibility": level}
        assert http.get(f"/config/{subject}").json() == {"compatibilityLevel": level}
    assert http.delete(f"/config/{subject}").json() == {"compatibilityLevel": "FULL_TRANSITIVE"}
    assert_error(http.get(f"/config/{subject}"), 404, 40408)

    assert_error(http.get(f"/mode/{subject}"), 404, 40409)
    assert http.put(f"/mode/{subject}", json={"mode": "READONLY"}).json() == {"mode": "READONLY"}
    assert_error(post(http, f"/subjects/{subject}/versions", {"schema": SCHEMA}), 422, 42205)
    assert http.delete(f"/mode/{subject}").json() == {"mode": "READONLY"}
    assert post(http, f"/subjects/{subject}/versions", {"schema": SCHEMA}).status_code == 200
    # IMPORT on a subject that has versions needs force=true.
    assert_error(http.put(f"/mode/{subject}", json={"mode": "IMPORT"}), 422, 42205)
    assert http.put(f"/mode/{subject}", params={"force": "true"}, json={"mode": "IMPORT"}).json() == {
        "mode": "IMPORT"
    }


def test_global_config_mode_and_import(start_registry: Callable[..., RegistryProcess]) -> None:
    reg = start_registry()
    with reg.http() as http:
        assert http.get("/config").json() == {"compatibilityLevel": "BACKWARD"}
        assert http.put("/config", json={"compatibility": "FULL"}).json() == {"compatibility": "FULL"}
        assert http.get("/config").json() == {"compatibilityLevel": "FULL"}
        assert http.get("/config/x", params={"defaultToGlobal": "true"}).json() == {
            "compatibilityLevel": "FULL"
        }
        assert http.delete("/config").json() == {"compatibilityLevel": "FULL"}
        assert http.get("/config").json() == {"compatibilityLevel": "BACKWARD"}
        assert http.get("/mode").json() == {"mode": "READWRITE"}
        # IMPORT mode: the caller chooses ids (as when migrating from another registry).
        assert http.put("/mode", json={"mode": "IMPORT"}).json() == {"mode": "IMPORT"}
        resp = post(http, "/subjects/imp-value/versions", {"schema": SCHEMA, "id": 100, "version": 3})
        assert resp.json() == {"id": 100}
        other = json.dumps({"type": "record", "name": "B", "fields": []})
        assert_error(post(http, "/subjects/imp2-value/versions", {"schema": other, "id": 100}), 422, 42205)
        assert http.get("/subjects/imp-value/versions").json() == [3]
        assert http.put("/mode", json={"mode": "READWRITE"}).json() == {"mode": "READWRITE"}
        assert_error(post(http, "/subjects/imp2-value/versions", {"schema": other, "id": 5}), 422, 42205)
        # Ids allocated afterwards never collide with imported ones.
        assert post(http, "/subjects/imp2-value/versions", {"schema": other}).json() == {"id": 101}
        assert http.put("/mode", json={"mode": "READONLY"}).json() == {"mode": "READONLY"}
        assert_error(post(http, "/subjects/imp3-value/versions", {"schema": other}), 422, 42205)
        assert_error(http.put("/mode", json={"mode": "IMPORT"}), 422, 42205)


def test_restart_keeps_subjects_versions_ids_config_and_mode(
    start_registry: Callable[..., RegistryProcess],
) -> None:
    reg = start_registry()
    c = reg.client()
    v1 = json.dumps({"type": "record", "name": "T", "fields": [{"name": "a", "type": "int"}]})
    v2 = json.dumps(
        {
            "type": "record",
            "name": "T",
            "fields": [{"name": "a", "type": "int"}, {"name": "b", "type": "int", "default": 0}],
        }
    )
    id1 = c.register_schema("durable-value", Schema(v1, "AVRO"))
    id2 = c.register_schema("durable-value", Schema(v2, "AVRO"))
    key_id = c.register_schema("durable-key", Schema('"string"', "AVRO"))
    c.delete_subject("durable-key")
    c.set_compatibility("durable-value", "FULL_TRANSITIVE")
    c.set_compatibility(level="FORWARD")
    c.update_mode("durable-value", "READONLY")
    c.close()

    reg.stop()
    reg.start()

    c = reg.client()
    assert c.get_subjects() == ["durable-value"]
    assert c.get_subjects(deleted=True) == ["durable-key", "durable-value"]
    assert c.get_versions("durable-value") == [1, 2]
    assert c.get_version("durable-value", 1).schema_id == id1
    assert c.get_latest_version("durable-value").schema_id == id2
    assert json.loads(c.get_schema(id2).schema_str) == json.loads(v2)
    assert json.loads(c.get_schema(key_id).schema_str) == "string"
    assert c.get_compatibility("durable-value") == "FULL_TRANSITIVE"
    assert c.get_compatibility() == "FORWARD"
    assert c.get_mode("durable-value") == "READONLY"
    with pytest.raises(SchemaRegistryError) as info:
        c.register_schema("durable-value", Schema(v1.replace('"T"', '"T2"'), "AVRO"))
    assert info.value.error_code == 42205
    # New ids continue after the old ones.
    assert (
        c.register_schema("other-value", Schema(v1.replace('"T"', '"U"'), "AVRO"))
        == max(id1, id2, key_id) + 1
    )
    c.close()


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_tls_and_basic_auth_with_the_confluent_client(
    start_registry: Callable[..., RegistryProcess], tmp_path: Path
) -> None:
    cert, key = _self_signed(tmp_path)
    users = tmp_path / "users"
    users.write_text("# registry users\nbob:from-file\n")
    env = {
        "RIVERBANK_REGISTRY_SERVER__SSL_CERTFILE": str(cert),
        "RIVERBANK_REGISTRY_SERVER__SSL_KEYFILE": str(key),
        "RIVERBANK_REGISTRY_SERVER__BASIC_AUTH_USERS": json.dumps({"alice": "s3cret"}),
        "RIVERBANK_REGISTRY_SERVER__BASIC_AUTH_FILE": str(users),
    }
    reg = start_registry("tls", extra_env=env, scheme="https", ca=cert, auth=("alice", "s3cret"))
    c = reg.client()
    schema_id = c.register_schema("secure-value", Schema(SCHEMA, "AVRO"))
    assert c.get_schema(schema_id).schema_str
    c.close()
    bob = reg.client(**{"basic.auth.user.info": "bob:from-file"})
    assert bob.get_subjects() == ["secure-value"]
    bob.close()

    wrong = reg.client(**{"basic.auth.user.info": "alice:wrong"})
    with pytest.raises(SchemaRegistryError) as info:
        wrong.get_subjects()
    assert info.value.http_status_code == 401
    wrong.close()
    anonymous = httpx.get(reg.url + "/subjects", verify=reg.verify())
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Basic")
    # The health probe stays open so readiness checks need no credentials.
    assert httpx.get(reg.url + "/", verify=reg.verify()).status_code == 200
