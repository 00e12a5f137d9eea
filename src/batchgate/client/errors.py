"""The client's one exception tree; every error carries the data it is about.

BatchgateClientError
├── APIConnectionError          the server could not be reached (``url`` names where)
│   └── APITimeoutError         it was reached but did not answer in time
├── APIResponseError            a 2xx answer whose body is not what the API promises
├── APIStatusError              a 4xx/5xx answer: ``status_code``, ``body``, ``request_id``,
│   │                           and from the error envelope ``type``, ``code``, ``param``
│   ├── BadRequestError             400
│   ├── AuthenticationError         401
│   ├── PermissionDeniedError       403
│   ├── NotFoundError               404
│   ├── ConflictError               409
│   ├── PayloadTooLargeError        413
│   ├── UnprocessableEntityError    422
│   ├── RateLimitError              429
│   └── InternalServerError         ≥ 500
├── WaitTimeout                 ``wait_for`` gave up: ``batch_id``, ``waited``, ``last``
└── ResultDecodeError           result lines that could not be read: ``bad_lines``
"""

from __future__ import annotations

from typing import Any

from batchgate.client.types import BadLine, Batch, MessageBatch

__all__ = [
    "APIConnectionError",
    "APIResponseError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BatchgateClientError",
    "ConflictError",
    "InternalServerError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResultDecodeError",
    "UnprocessableEntityError",
    "WaitTimeout",
    "status_error_class",
]


class BatchgateClientError(Exception):
    """Base of every error the client raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class APIConnectionError(BatchgateClientError):
    """No answer from ``url``: refused, reset, DNS, TLS, or a body cut short."""

    def __init__(self, url: str, reason: str, *, message: str | None = None) -> None:
        super().__init__(
            message
            or f"Cannot reach the batchgate server at {url}: {reason}. "
            "Is it running (`batchgate serve`) and is BATCHGATE_URL right?"
        )
        self.url = url
        self.reason = reason


class APITimeoutError(APIConnectionError):
    def __init__(self, url: str, reason: str) -> None:
        message = f"The batchgate server at {url} did not answer in time: {reason}."
        super().__init__(url, reason, message=message)


class APIResponseError(BatchgateClientError):
    """The server said yes, but in a shape this client cannot read."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class APIStatusError(BatchgateClientError):
    """The server answered with an error status; ``message`` is the server's own words."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: Any = None,
        request_id: str | None = None,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body
        self.request_id = request_id
        self.type = type
        self.code = code
        self.param = param

    def __str__(self) -> str:
        return f"HTTP {self.status_code}: {self.message}"


class BadRequestError(APIStatusError):
    pass


class AuthenticationError(APIStatusError):
    pass


class PermissionDeniedError(APIStatusError):
    pass


class NotFoundError(APIStatusError):
    pass


class ConflictError(APIStatusError):
    pass


class PayloadTooLargeError(APIStatusError):
    pass


class UnprocessableEntityError(APIStatusError):
    pass


class RateLimitError(APIStatusError):
    pass


class InternalServerError(APIStatusError):
    pass


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def status_error_class(status_code: int) -> type[APIStatusError]:
    """The class for an error status: the table, else InternalServerError from 500 up."""
    if status_code >= 500:
        return InternalServerError
    return _BY_STATUS.get(status_code, APIStatusError)


class WaitTimeout(BatchgateClientError):
    """``wait_for`` ran out of time; ``last`` is the batch as last seen."""

    def __init__(self, batch_id: str, waited: float, last: Batch | MessageBatch) -> None:
        counts = last.counts
        super().__init__(
            f"Batch {batch_id} has not ended after {waited:.1f}s: status {last.status}, "
            f"{counts.done} of {counts.total} requests done ({counts.succeeded} succeeded, "
            f"{counts.failed} failed)."
        )
        self.batch_id = batch_id
        self.waited = waited
        self.last = last


class ResultDecodeError(BatchgateClientError):
    """Raised after the last readable result: every line that could not be read."""

    def __init__(self, bad_lines: list[BadLine]) -> None:
        first = bad_lines[0]
        more = f" (and {len(bad_lines) - 1} more)" if len(bad_lines) > 1 else ""
        super().__init__(
            f"{len(bad_lines)} result line(s) could not be read; line {first.number}: "
            f"{first.reason}{more}."
        )
        self.bad_lines = bad_lines
