"""The HTTP face of the registry: Confluent Schema Registry's REST API on Starlette.

Routes decode the request (path, query flags, a size-limited JSON body), call one
:class:`~riverbank.registry.service.RegistryService` method in a worker thread and encode the
answer. Content types follow Confluent: requests may be ``application/vnd.schemaregistry.v1+json``,
``application/vnd.schemaregistry+json``, ``application/json`` or ``application/octet-stream``
(also what a missing Content-Type means); anything else gets 415. Answers are
``application/vnd.schemaregistry.v1+json`` unless the client's Accept asks only for one of the other
two JSON types; an Accept that allows none of them gets 406. Every error, including unknown routes
and methods, is Confluent's ``{"error_code": ..., "message": ...}`` body; bad input never yields 500.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from riverbank.registry.errors import HttpError, RestError, SchemaNotFound, StoreError
from riverbank.registry.service import SCHEMA_TYPES, RegistryService, flag

log = logging.getLogger(__name__)

V1_JSON = "application/vnd.schemaregistry.v1+json"
SR_JSON = "application/vnd.schemaregistry+json"
JSON = "application/json"
PRODUCED = (V1_JSON, SR_JSON, JSON)
CONSUMED = frozenset({V1_JSON, SR_JSON, JSON, "application/octet-stream"})

Handler = Callable[[Request], Awaitable[Response]]


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def negotiate(accept: str | None) -> str:
    """The response media type for an Accept header; HttpError 406 when none is acceptable."""
    if not accept or not accept.strip():
        return V1_JSON
    ranges: list[tuple[float, str]] = []
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media and quality > 0:
            ranges.append((quality, media.lower()))
    best: tuple[float, int, str] | None = None
    for quality, media in ranges:
        for rank, produced in enumerate(PRODUCED):
            if media in (produced, "*/*", "application/*"):
                candidate = (quality, -rank, produced)
                if best is None or candidate > best:
                    best = candidate
    if best is None:
        raise HttpError(406, "HTTP 406 Not Acceptable")
    return best[2]


def _reply(request: Request, data: Any, status: int = 200) -> Response:
    media = request.scope.get("riverbank.media_type", V1_JSON)
    return Response(json.dumps(data, ensure_ascii=False), status_code=status, media_type=media)


def _error(request: Request | None, exc: RestError, headers: Mapping[str, str] | None = None) -> Response:
    media = V1_JSON if request is None else request.scope.get("riverbank.media_type", V1_JSON)
    return Response(json.dumps(exc.body()), status_code=exc.status, media_type=media, headers=headers)


async def read_json(request: Request) -> Any:
    """The JSON body, refusing unsupported content types (415) and bodies over the limit (413)."""
    content_type = request.headers.get("content-type")
    if content_type and _media_type(content_type) not in CONSUMED:
        raise HttpError(415, "HTTP 415 Unsupported Media Type")
    limit: int = request.app.state.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HttpError(413, f"Request body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HttpError(413, f"Request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise HttpError(400, "Request body is empty; expected a JSON object")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise HttpError(400, f"Request body is not valid JSON: {exc}") from None


def _q(request: Request, name: str) -> bool:
    return flag(request.query_params.get(name))


def _schema_id(request: Request) -> int:
    text = request.path_params["schema_id"]
    try:
        value = int(text)
    except ValueError:
        raise HttpError(404, "HTTP 404 Not Found") from None
    if value < 0:
        raise SchemaNotFound(value)
    return value


def _svc(request: Request) -> RegistryService:
    service: RegistryService = request.app.state.service
    return service


# ---- endpoints ------------------------------------------------------------------------------


async def root(request: Request) -> Response:
    return _reply(request, {})


async def schema_types(request: Request) -> Response:
    return _reply(request, list(SCHEMA_TYPES))


async def list_schemas(request: Request) -> Response:
    data = await run_in_threadpool(
        _svc(request).list_schemas,
        prefix=request.query_params.get("subjectPrefix", ""),
        deleted=_q(request, "deleted"),
        latest_only=_q(request, "latestOnly"),
    )
    return _reply(request, data)


async def schema_by_id(request: Request) -> Response:
    return _reply(request, await run_in_threadpool(_svc(request).schema_by_id, _schema_id(request)))


async def raw_schema_by_id(request: Request) -> Response:
    return _reply(request, await run_in_threadpool(_svc(request).raw_schema_by_id, _schema_id(request)))


async def subjects_of_schema(request: Request) -> Response:
    data = await run_in_threadpool(
        _svc(request).subjects_of_schema,
        _schema_id(request),
        deleted=_q(request, "deleted"),
        subject=request.query_params.get("subject"),
    )
    return _reply(request, data)


async def versions_of_schema(request: Request) -> Response:
    data = await run_in_threadpool(
        _svc(request).versions_of_schema,
        _schema_id(request),
        deleted=_q(request, "deleted"),
        subject=request.query_params.get("subject"),
    )
    return _reply(request, data)


async def list_subjects(request: Request) -> Response:
    data = await run_in_threadpool(
        _svc(request).subjects,
        prefix=request.query_params.get("subjectPrefix", ""),
        deleted=_q(request, "deleted"),
        deleted_only=_q(request, "deleted_only") or _q(request, "deletedOnly"),
    )
    return _reply(request, data)


async def lookup_or_delete_subject(request: Request) -> Response:
    subject = request.path_params["subject"]
    data: Any
    if request.method == "DELETE":
        data = await run_in_threadpool(
            _svc(request).delete_subject, subject, permanent=_q(request, "permanent")
        )
        return _reply(request, data)
    body = await read_json(request)
    data = await run_in_threadpool(
        _svc(request).lookup,
        subject,
        body,
        normalize=_q(request, "normalize"),
        deleted=_q(request, "deleted"),
    )
    return _reply(request, data)


async def subject_versions(request: Request) -> Response:
    subject = request.path_params["subject"]
    data: Any
    if request.method == "POST":
        body = await read_json(request)
        data = await run_in_threadpool(
            _svc(request).register, subject, body, normalize=_q(request, "normalize")
        )
        return _reply(request, data)
    data = await run_in_threadpool(
        _svc(request).versions,
        subject,
        deleted=_q(request, "deleted"),
        deleted_only=_q(request, "deleted_only") or _q(request, "deletedOnly"),
    )
    return _reply(request, data)


async def subject_version(request: Request) -> Response:
    subject, version = request.path_params["subject"], request.path_params["version"]
    data: Any
    if request.method == "DELETE":
        data = await run_in_threadpool(
            _svc(request).delete_version, subject, version, permanent=_q(request, "permanent")
        )
        return _reply(request, data)
    data = await run_in_threadpool(
        _svc(request).get_version, subject, version, deleted=_q(request, "deleted")
    )
    return _reply(request, data)


async def subject_version_schema(request: Request) -> Response:
    subject, version = request.path_params["subject"], request.path_params["version"]
    data = await run_in_threadpool(
        _svc(request).get_version, subject, version, deleted=_q(request, "deleted")
    )
    return _reply(request, json.loads(data["schema"]))


async def referenced_by(request: Request) -> Response:
    subject, version = request.path_params["subject"], request.path_params["version"]
    return _reply(request, await run_in_threadpool(_svc(request).referenced_by, subject, version))


async def compatibility(request: Request) -> Response:
    subject = request.path_params["subject"]
    version = request.path_params.get("version")
    body = await read_json(request)
    data = await run_in_threadpool(
        _svc(request).test_compatibility,
        subject,
        version,
        body,
        verbose=_q(request, "verbose"),
        normalize=_q(request, "normalize"),
    )
    return _reply(request, data)


async def config(request: Request) -> Response:
    subject = request.path_params.get("subject")
    svc = _svc(request)
    if request.method == "PUT":
        data = await run_in_threadpool(svc.set_config, subject, await read_json(request))
    elif request.method == "DELETE":
        data = await run_in_threadpool(svc.delete_config, subject)
    else:
        data = await run_in_threadpool(
            svc.get_config, subject, default_to_global=_q(request, "defaultToGlobal")
        )
    return _reply(request, data)


async def mode(request: Request) -> Response:
    subject = request.path_params.get("subject")
    svc = _svc(request)
    if request.method == "PUT":
        body = await read_json(request)
        data = await run_in_threadpool(svc.set_mode, subject, body, force=_q(request, "force"))
    elif request.method == "DELETE":
        if subject is None:
            raise HttpError(405, "HTTP 405 Method Not Allowed")
        data = await run_in_threadpool(svc.delete_mode, subject)
    else:
        data = await run_in_threadpool(
            svc.get_mode, subject, default_to_global=_q(request, "defaultToGlobal")
        )
    return _reply(request, data)


ROUTES = [
    Route("/", root, methods=["GET"]),
    Route("/schemas/types", schema_types, methods=["GET"]),
    Route("/schemas", list_schemas, methods=["GET"]),
    Route("/schemas/ids/{schema_id}", schema_by_id, methods=["GET"]),
    Route("/schemas/ids/{schema_id}/schema", raw_schema_by_id, methods=["GET"]),
    Route("/schemas/ids/{schema_id}/subjects", subjects_of_schema, methods=["GET"]),
    Route("/schemas/ids/{schema_id}/versions", versions_of_schema, methods=["GET"]),
    Route("/subjects", list_subjects, methods=["GET"]),
    Route("/subjects/{subject}", lookup_or_delete_subject, methods=["POST", "DELETE"]),
    Route("/subjects/{subject}/versions", subject_versions, methods=["GET", "POST"]),
    Route("/subjects/{subject}/versions/{version}", subject_version, methods=["GET", "DELETE"]),
    Route("/subjects/{subject}/versions/{version}/schema", subject_version_schema, methods=["GET"]),
    Route("/subjects/{subject}/versions/{version}/referencedby", referenced_by, methods=["GET"]),
    Route("/compatibility/subjects/{subject}/versions", compatibility, methods=["POST"]),
    Route("/compatibility/subjects/{subject}/versions/{version}", compatibility, methods=["POST"]),
    Route("/config", config, methods=["GET", "PUT", "DELETE"]),
    Route("/config/{subject}", config, methods=["GET", "PUT", "DELETE"]),
    Route("/mode", mode, methods=["GET", "PUT"]),
    Route("/mode/{subject}", mode, methods=["GET", "PUT", "DELETE"]),
]


# ---- error handling and middleware ----------------------------------------------------------


async def _rest_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RestError)
    return _error(request, exc)


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    phrases = {404: "Not Found", 405: "Method Not Allowed"}
    err = HttpError(exc.status_code, f"HTTP {exc.status_code} {phrases.get(exc.status_code, exc.detail)}")
    return _error(request, err, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("registry: unexpected error on %s %s", request.method, request.url.path)
    return _error(request, StoreError(f"Internal error: {type(exc).__name__}"))


class ProtocolMiddleware:
    """Content negotiation and HTTP basic auth, before any route runs."""

    def __init__(self, app: ASGIApp, users: Mapping[str, str]) -> None:
        self.app = app
        self.users = {u.encode(): p.encode() for u, p in users.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            scope["riverbank.media_type"] = negotiate(headers.get("accept"))
        except HttpError as exc:
            await _error(None, exc)(scope, receive, send)
            return
        is_health = scope["method"] in ("GET", "HEAD") and scope["path"] == "/"
        if self.users and not is_health and not self._authorized(headers.get("authorization")):
            unauthorized = HttpError(401, "Unauthorized")
            media = scope["riverbank.media_type"]
            response = Response(
                json.dumps(unauthorized.body()),
                status_code=401,
                media_type=media,
                headers={"WWW-Authenticate": 'Basic realm="SchemaRegistry"'},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _authorized(self, header: str | None) -> bool:
        if not header or header[:6].lower() != "basic ":
            return False
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        user, sep, password = decoded.partition(b":")
        expected = self.users.get(user)
        # compare_digest on a dummy when the user is unknown keeps timing uniform.
        ok = hmac.compare_digest(password, expected if expected is not None else b"\0" * 32)
        return bool(sep) and expected is not None and ok


def create_app(
    service: RegistryService,
    *,
    max_body_bytes: int = 4 * 1024 * 1024,
    users: Mapping[str, str] | None = None,
) -> ASGIApp:
    """The ASGI application. ``users`` (name -> password) turns on basic auth."""
    app = Starlette(
        routes=ROUTES,
        exception_handlers={
            RestError: _rest_error,
            HTTPException: _http_exception,
            Exception: _unexpected,
        },
    )
    app.state.service = service
    app.state.max_body_bytes = max_body_bytes
    return ProtocolMiddleware(app, dict(users or {}))
