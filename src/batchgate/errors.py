"""The one exception tree of batchgate; errors carry data, never HTTP.

BatchgateError
├── ConfigError               bad or missing configuration (names the setting)
├── ClientError               the caller's mistake; the API renders it as a 4xx
│   ├── InvalidRequest        400: a bad parameter (``param`` names it)
│   ├── AuthenticationFailed  401
│   ├── NotFound              404: FileNotFound, BatchNotFound, JobNotFound,
│   │                         KeyNotFound, BudgetNotFound
│   ├── Conflict              409: InvalidTransition (e.g. cancel a completed batch),
│   │                         KeyNameTaken
│   └── PayloadTooLarge       413
├── StoreUnavailable          the database cannot be reached
└── LeaseLost                 a worker's lease on rows was taken over
"""

from __future__ import annotations


class BatchgateError(Exception):
    """Base of every batchgate error."""

    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(BatchgateError):
    code = "config_error"


class ClientError(BatchgateError):
    """A client mistake: rendered as a 4xx in each dialect's envelope."""

    status = 400
    code = "invalid_request_error"
    type = "invalid_request_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        if code is not None:
            self.code = code


class InvalidRequest(ClientError):
    status = 400


class AuthenticationFailed(ClientError):
    status = 401
    code = "invalid_api_key"
    type = "authentication_error"


class NotFound(ClientError):
    status = 404
    code = "not_found"
    type = "not_found_error"


class FileNotFound(NotFound):
    pass


class BatchNotFound(NotFound):
    pass


class JobNotFound(NotFound):
    pass


class KeyNotFound(NotFound):
    """No API key with that id or (live) name."""


class BudgetNotFound(NotFound):
    """The tenant has no budget."""


class Conflict(ClientError):
    status = 409
    code = "conflict"
    type = "conflict_error"


class InvalidTransition(Conflict):
    """A state change the state machine does not allow."""

    def __init__(self, current: str, target: str, *, what: str = "batch") -> None:
        super().__init__(
            f"Cannot move {what} from status '{current}' to '{target}'.",
            code="invalid_state",
        )
        self.current = current
        self.target = target


class KeyNameTaken(Conflict):
    """A live API key already has that name (names are unique among live keys)."""

    code = "key_name_taken"


class PayloadTooLarge(ClientError):
    status = 413
    code = "request_too_large"
    type = "request_too_large"


class StoreUnavailable(BatchgateError):
    code = "store_unavailable"


class LeaseLost(BatchgateError):
    code = "lease_lost"
