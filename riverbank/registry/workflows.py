"""``riverbank schemas register`` and ``riverbank schemas check`` as library functions.

Registration goes through confluent-kafka's SchemaRegistryClient, exactly as producers will.
The online check asks the registry (``POST /compatibility/...?verbose=true``, which the client
does not expose with messages, so it is one httpx call with the same URL, auth and CA settings).
The offline check compares the working tree with the versions of each file in git history, using
this package's compatibility module and the level from ``schemas/subjects.toml``.
"""

from __future__ import annotations

import json
import ssl
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import httpx

from riverbank.registry import avro_schema, catalog
from riverbank.registry.catalog import SubjectSchema
from riverbank.registry.compatibility import Level, check
from riverbank.registry.errors import (
    IncompatibleSchemaError,
    InvalidSchema,
    RegistryRequestError,
    RegistryUnavailableError,
    SchemaFileError,
)
from riverbank.settings import SchemaRegistrySettings

CheckMode = Literal["auto", "online", "offline"]


@dataclass
class Registered:
    subject: str
    id: int
    version: int | None
    file: str | None


@dataclass
class SubjectVerdict:
    subject: str
    file: str | None
    against: str
    compatible: bool
    level: str
    compared_versions: int
    messages: list[str] = field(default_factory=list)


@dataclass
class CheckResult:
    mode: Literal["online", "offline"]
    verdicts: list[SubjectVerdict]
    note: str = ""

    @property
    def ok(self) -> bool:
        return all(v.compatible for v in self.verdicts)

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "ok": self.ok,
            "note": self.note,
            "subjects": [asdict(v) for v in self.verdicts],
        }

    def explain(self) -> str:
        lines = []
        for v in self.verdicts:
            if v.compatible:
                continue
            lines.append(f"{v.subject} ({v.file or 'key'}) breaks {v.level} against {v.against}:")
            lines.extend(f"  - {m}" for m in v.messages)
        return "\n".join(lines)


# ---- register -------------------------------------------------------------------------------


def _client(registry: SchemaRegistrySettings) -> Any:
    from confluent_kafka.schema_registry import SchemaRegistryClient

    return SchemaRegistryClient(registry.client_config())


def register_all(registry: SchemaRegistrySettings, schemas_dir: Path) -> list[Registered]:
    """Register every riverbank-owned subject of the catalog; returns ids and versions."""
    from confluent_kafka.schema_registry import Schema
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    entries = [e for e in catalog.load(schemas_dir) if e.owner == "riverbank"]
    if not registry_reachable(registry):
        raise RegistryUnavailableError(str(registry.url), "no answer to GET /")
    client = _client(registry)
    out = []
    try:
        for entry in entries:
            schema = Schema(entry.text, "AVRO")
            try:
                schema_id = client.register_schema(entry.subject, schema)
                version = client.lookup_schema(entry.subject, schema).version
            except SchemaRegistryError as exc:
                raise RegistryRequestError(
                    f"registering {entry.subject} ({entry.file or 'key'})",
                    exc.http_status_code,
                    exc.error_code,
                    exc.error_message,
                ) from None
            except Exception as exc:
                # The client's HTTP library (httpx or its fork httpx2) failing to connect.
                if not type(exc).__module__.startswith("httpx"):
                    raise
                raise RegistryUnavailableError(str(registry.url), str(exc) or type(exc).__name__) from None
            out.append(Registered(entry.subject, int(schema_id), version, entry.file))
    finally:
        client.close()
    return out


# ---- check ----------------------------------------------------------------------------------


def _http(registry: SchemaRegistrySettings) -> httpx.Client:
    auth = None
    if registry.basic_auth_user_info is not None:
        user, _, password = registry.basic_auth_user_info.get_secret_value().partition(":")
        auth = httpx.BasicAuth(user, password)
    verify: ssl.SSLContext | bool = (
        ssl.create_default_context(cafile=str(registry.ssl_ca_location)) if registry.ssl_ca_location else True
    )
    return httpx.Client(base_url=str(registry.url), auth=auth, verify=verify, timeout=10.0)


def registry_reachable(registry: SchemaRegistrySettings) -> bool:
    if registry.url is None:
        return False
    try:
        with _http(registry) as http:
            http.get("/", timeout=2.0)
    except httpx.HTTPError:
        return False
    return True


def check_all(registry: SchemaRegistrySettings, schemas_dir: Path, mode: CheckMode = "auto") -> CheckResult:
    """Check every catalog schema; the result says which subjects break and why."""
    entries = catalog.load(schemas_dir)
    problems = _lint_all(entries, schemas_dir)
    if problems:
        raise SchemaFileError(
            str(schemas_dir), "schema rules broken:\n" + "\n".join(f"  - {p}" for p in problems)
        )
    note = ""
    if mode == "auto":
        mode = "online" if registry_reachable(registry) else "offline"
        if mode == "offline":
            note = f"registry at {registry.url} not reachable; checked against git history"
    if mode == "online":
        if registry.url is None:
            raise RegistryUnavailableError("(schema_registry.url not set)", "no URL configured")
        verdicts = [_check_online(registry, e) for e in entries if e.owner == "riverbank"]
        verdicts += [_check_offline(schemas_dir, e) for e in entries if e.owner != "riverbank"]
        return CheckResult("online", verdicts, note)
    return CheckResult("offline", [_check_offline(schemas_dir, e) for e in entries], note)


def require_ok(result: CheckResult) -> CheckResult:
    if not result.ok:
        raise IncompatibleSchemaError("incompatible schema change:\n" + result.explain())
    return result


def _lint_all(entries: list[SubjectSchema], schemas_dir: Path) -> list[str]:
    problems: list[str] = []
    for entry in entries:
        if entry.file is None:
            continue
        problems.extend(f"{entry.file}: {p}" for p in catalog.lint(entry.text, str(schemas_dir / entry.file)))
    return problems


def _check_online(registry: SchemaRegistrySettings, entry: SubjectSchema) -> SubjectVerdict:
    subject = quote(entry.subject, safe="")
    body = {"schema": entry.text, "schemaType": "AVRO"}
    try:
        with _http(registry) as http:
            level_resp = http.get(f"/config/{subject}", params={"defaultToGlobal": "true"})
            level = level_resp.json().get("compatibilityLevel", "?") if level_resp.is_success else "?"
            versions_resp = http.get(f"/subjects/{subject}/versions")
            count = len(versions_resp.json()) if versions_resp.is_success else 0
            resp = http.post(
                f"/compatibility/subjects/{subject}/versions/latest",
                params={"verbose": "true"},
                content=json.dumps(body),
                headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
            )
    except httpx.HTTPError as exc:
        raise RegistryUnavailableError(str(registry.url), str(exc) or type(exc).__name__) from None
    if not resp.is_success:
        try:
            err = resp.json()
        except ValueError:
            err = {"error_code": -1, "message": resp.text[:200]}
        raise RegistryRequestError(
            f"checking {entry.subject}",
            resp.status_code,
            int(err.get("error_code", -1)),
            str(err.get("message")),
        )
    data = resp.json()
    return SubjectVerdict(
        subject=entry.subject,
        file=entry.file,
        against=f"registry {registry.url}",
        compatible=bool(data.get("is_compatible")),
        level=str(level),
        compared_versions=count,
        messages=[str(m) for m in data.get("messages", [])],
    )


def git_history(path: Path) -> list[str]:
    """Distinct committed contents of ``path``, oldest first, following renames.

    Empty outside a git work tree or when the file was never committed.
    """
    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=path.parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        rel = path.resolve().relative_to(Path(top).resolve()).as_posix()
        log = subprocess.run(
            ["git", "log", "--follow", "--name-only", "--format=%x00%H", "--", rel],
            cwd=top,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (subprocess.CalledProcessError, OSError, ValueError):
        return []
    # Each commit: "\0<hash>\n\n<path of the file in that commit>\n".
    commits = []
    for chunk in log.split("\0"):
        lines = [line for line in chunk.splitlines() if line.strip()]
        if len(lines) >= 2:
            commits.append((lines[0], lines[-1]))
    contents: list[str] = []
    for commit, name in reversed(commits):
        shown = subprocess.run(["git", "show", f"{commit}:{name}"], cwd=top, capture_output=True, text=True)
        if shown.returncode == 0 and (not contents or contents[-1] != shown.stdout):
            contents.append(shown.stdout)
    return contents


def _check_offline(schemas_dir: Path, entry: SubjectSchema) -> SubjectVerdict:
    history = git_history(schemas_dir / entry.file) if entry.file else []
    current = avro_schema.canonical_text(avro_schema.loads(entry.text))
    previous: list[tuple[int, Any]] = []
    for number, text in enumerate(history, 1):
        try:
            if avro_schema.canonical_text(avro_schema.loads(text)) == current:
                continue
            previous.append((number, avro_schema.parse(text).parsed))
        except InvalidSchema:
            continue  # a broken historical version cannot be read by anyone; nothing to keep compatible with
    new = avro_schema.parse(entry.text).parsed
    level: Level = entry.compatibility
    report = check(level, new, previous)
    return SubjectVerdict(
        subject=entry.subject,
        file=entry.file,
        against="git history"
        + (f" ({len(previous)} earlier versions)" if previous else " (no earlier versions)"),
        compatible=report.is_compatible,
        level=level.value,
        compared_versions=len(previous),
        messages=[m.replace("version ", "committed version ") for m in report.messages],
    )
