"""Typed errors: each has a stable code the gateway switches on, an HTTP status, and a client-safe message."""

from __future__ import annotations

# code -> HTTP status. The codes are part of the protocol (README.md); never rename one.
STATUS_BY_CODE = {
    "invalid_request": 400,
    "unauthorized": 401,
    "not_found": 404,
    "method_not_allowed": 405,
    "length_required": 411,
    "payload_too_large": 413,
    "unknown_model": 404,
    "unsupported": 422,
    "cancelled": 409,
    "busy": 503,
    "out_of_memory": 503,
    "failed": 500,
}


class WorkerError(Exception):
    """An error answered as `{"error": {"code": ..., "message": ...}}` with the code's HTTP status."""

    def __init__(self, code: str, message: str):
        if code not in STATUS_BY_CODE:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return STATUS_BY_CODE[self.code]

    def to_json(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


def invalid(message: str) -> WorkerError:
    return WorkerError("invalid_request", message)


def unsupported(message: str) -> WorkerError:
    return WorkerError("unsupported", message)
