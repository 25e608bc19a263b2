"""Errors of the schema registry work, split by side.

``RestError`` and its subclasses are what the *service* answers over HTTP: each carries the HTTP
status and Confluent's numeric ``error_code`` so that real clients (confluent-kafka, the Java
serializers) react to them exactly as they react to Confluent Schema Registry.

``RegistryCliError`` and its subclasses are what the *CLI* (``riverbank schemas ...``) raises for a
user: they derive from :class:`riverbank.errors.RiverbankError`, so the CLI boundary turns them
into one readable line and an exit code.
"""

from __future__ import annotations

from riverbank.errors import ServiceUnavailableError, TerminalError

# Confluent Schema Registry error codes, as its clients know them.
SUBJECT_NOT_FOUND = 40401
VERSION_NOT_FOUND = 40402
SCHEMA_NOT_FOUND = 40403
SUBJECT_SOFT_DELETED = 40404
SUBJECT_NOT_SOFT_DELETED = 40405
VERSION_SOFT_DELETED = 40406
VERSION_NOT_SOFT_DELETED = 40407
SUBJECT_COMPATIBILITY_NOT_CONFIGURED = 40408
SUBJECT_MODE_NOT_CONFIGURED = 40409
INCOMPATIBLE_SCHEMA = 409
INVALID_SCHEMA = 42201
INVALID_VERSION = 42202
INVALID_COMPATIBILITY_LEVEL = 42203
INVALID_MODE = 42204
OPERATION_NOT_PERMITTED = 42205
REFERENCE_EXISTS = 42206
STORE_ERROR = 50001


class RestError(Exception):
    """An error the registry answers with ``{"error_code": ..., "message": ...}``."""

    status = 500
    error_code = STORE_ERROR

    def __init__(self, message: str, *, status: int | None = None, error_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if error_code is not None:
            self.error_code = error_code

    def body(self) -> dict[str, object]:
        return {"error_code": self.error_code, "message": self.message}


class HttpError(RestError):
    """A plain HTTP-level error (400, 401, 404 route, 405, 406, 413, 415); error_code = status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message, status=status, error_code=status)


class SubjectNotFound(RestError):
    status, error_code = 404, SUBJECT_NOT_FOUND

    def __init__(self, subject: str) -> None:
        super().__init__(f"Subject '{subject}' not found.")


class VersionNotFound(RestError):
    status, error_code = 404, VERSION_NOT_FOUND

    def __init__(self, version: int | str) -> None:
        super().__init__(f"Version {version} not found.")


class SchemaNotFound(RestError):
    status, error_code = 404, SCHEMA_NOT_FOUND

    def __init__(self, schema_id: int | None = None) -> None:
        super().__init__("Schema not found" if schema_id is None else f"Schema {schema_id} not found")


class SubjectSoftDeleted(RestError):
    status, error_code = 404, SUBJECT_SOFT_DELETED

    def __init__(self, subject: str) -> None:
        super().__init__(f"Subject '{subject}' was soft deleted. Set permanent=true to delete permanently")


class SubjectNotSoftDeleted(RestError):
    status, error_code = 404, SUBJECT_NOT_SOFT_DELETED

    def __init__(self, subject: str) -> None:
        super().__init__(f"Subject '{subject}' was not deleted first before being permanently deleted")


class VersionSoftDeleted(RestError):
    status, error_code = 404, VERSION_SOFT_DELETED

    def __init__(self, subject: str, version: int) -> None:
        super().__init__(
            f"Subject '{subject}' Version {version} was soft deleted. "
            "Set permanent=true to delete permanently"
        )


class VersionNotSoftDeleted(RestError):
    status, error_code = 404, VERSION_NOT_SOFT_DELETED

    def __init__(self, subject: str, version: int) -> None:
        super().__init__(
            f"Subject '{subject}' Version {version} was not deleted first before being permanently deleted"
        )


class CompatibilityNotConfigured(RestError):
    status, error_code = 404, SUBJECT_COMPATIBILITY_NOT_CONFIGURED

    def __init__(self, subject: str) -> None:
        super().__init__(f"Subject '{subject}' does not have subject-level compatibility configured")


class ModeNotConfigured(RestError):
    status, error_code = 404, SUBJECT_MODE_NOT_CONFIGURED

    def __init__(self, subject: str) -> None:
        super().__init__(f"Subject '{subject}' does not have subject-level mode configured")


class IncompatibleSchema(RestError):
    status, error_code = 409, INCOMPATIBLE_SCHEMA

    def __init__(self, subject: str, messages: list[str]) -> None:
        self.messages = messages
        details = "; ".join(messages)
        super().__init__(
            f"Schema being registered is incompatible with an earlier schema for subject '{subject}', "
            f"details: [{details}]"
        )


class InvalidSchema(RestError):
    status, error_code = 422, INVALID_SCHEMA


class InvalidVersion(RestError):
    status, error_code = 422, INVALID_VERSION

    def __init__(self, version: str) -> None:
        super().__init__(
            f"The specified version '{version}' is not a valid version id. Allowed values are between "
            '[1, 2^31-1] and the string "latest"'
        )


class InvalidCompatibilityLevel(RestError):
    status, error_code = 422, INVALID_COMPATIBILITY_LEVEL

    def __init__(self, level: object) -> None:
        super().__init__(
            f"Invalid compatibility level {level!r}. Valid values are none, backward, forward, full, "
            "backward_transitive, forward_transitive, and full_transitive"
        )


class InvalidMode(RestError):
    status, error_code = 422, INVALID_MODE

    def __init__(self, mode: object) -> None:
        super().__init__(
            f"Invalid mode {mode!r}. Valid values are READWRITE, READONLY, READONLY_OVERRIDE, IMPORT"
        )


class OperationNotPermitted(RestError):
    status, error_code = 422, OPERATION_NOT_PERMITTED


class ReferenceExists(RestError):
    status, error_code = 422, REFERENCE_EXISTS


class StoreError(RestError):
    status, error_code = 500, STORE_ERROR


# ---- CLI side -------------------------------------------------------------------------------


class RegistryCliError(TerminalError):
    """A ``riverbank schemas`` / ``riverbank registry`` command could not do its job."""


class SchemaFileError(RegistryCliError):
    """A schema file or schemas/subjects.toml is missing or invalid. Names the file."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class IncompatibleSchemaError(RegistryCliError):
    """A working-tree schema breaks its subject's compatibility level."""

    exit_code = 2


class RegistryRequestError(RegistryCliError):
    """The registry answered a request with an error (status and Confluent error code kept)."""

    def __init__(self, action: str, status: int, error_code: int, message: str) -> None:
        self.status = status
        self.error_code = error_code
        super().__init__(f"{action}: registry answered HTTP {status} (error {error_code}): {message}")


class RegistryUnavailableError(ServiceUnavailableError):
    """The schema registry did not answer."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        super().__init__(f"schema registry at {url} is not reachable: {reason}")


class ServerConfigError(RegistryCliError):
    """The registry server cannot start with the configured TLS/auth/storage settings."""
