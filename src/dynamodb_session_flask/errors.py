"""The exception family: every error this package raises on purpose is a :class:`SessionError`."""

from __future__ import annotations

import click
from werkzeug.exceptions import ServiceUnavailable


class SessionError(Exception):
    """Root of the package's exceptions."""


class ConfigError(SessionError, ValueError, click.ClickException):
    """A ``SESSION_DYNAMODB_*`` setting (or a constructor argument) is invalid.

    Raised when the settings are first read for an application, before any session is
    opened. ``setting`` names the offending configuration key.

    It is also a ``click.ClickException``: under the ``flask`` command (``flask run``,
    ``flask dynamodb-session ...``), even raised while the app is imported, it prints as
    one ``Error:`` line with exit code 1 instead of a traceback.
    """

    def __init__(self, setting: str, message: str) -> None:
        click.ClickException.__init__(self, f"{setting}: {message}")
        self.setting = setting


class SessionBackendError(SessionError, ServiceUnavailable):
    """DynamoDB could not serve the session: unreachable, throttled past the retry budget,
    timing out, or the table is missing.

    It is a werkzeug ``ServiceUnavailable``, so when it is raised inside a view Flask answers
    HTTP 503 instead of a generic 500. ``operation`` is the DynamoDB operation that failed and
    ``original_error`` the botocore exception behind it.
    """

    description = "The session store is temporarily unavailable. Please retry shortly."

    def __init__(self, operation: str, original_error: BaseException) -> None:
        SessionError.__init__(self, f"DynamoDB {operation} failed: {original_error}")
        ServiceUnavailable.__init__(self)
        self.operation = operation
        self.original_error = original_error

    def __str__(self) -> str:
        return f"DynamoDB {self.operation} failed: {self.original_error}"


class SessionTooLargeError(SessionError):
    """The session would exceed DynamoDB's 400 KB item limit; nothing was written."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"session item would be {size} bytes, over DynamoDB's item size limit of "
            f"{limit} bytes; the stored session was left unchanged"
        )
        self.size = size
        self.limit = limit


class UndecodableDataError(SessionError):
    """A stored session value cannot be read back: not text or a zlib stream of it, not
    tagged JSON, or larger decoded than a session may be. Raised while loading, and
    handled there: the session is replaced by a new one (never a 500). The message names
    the session key and what is wrong, never the stored content."""


class UserIndexMissingError(SessionError):
    """The table has no usable per-user index, so a user's sessions cannot be listed or
    ended. Ordinary session traffic does not use the index and keeps working.

    ``index_name`` and ``table_name`` say what is missing; ``status`` is the index's
    status when it exists but is still being built (``CREATING``), ``None`` when absent.
    """

    #: The command that adds the index to an existing table.
    command = "flask dynamodb-session add-user-index"

    def __init__(self, index_name: str, table_name: str, *, status: str | None = None) -> None:
        if status is None:
            message = (
                f"table {table_name!r} has no global secondary index {index_name!r}, which "
                f"listing and ending a user's sessions need: add it with "
                f"`{self.command}` (or create the table with `flask dynamodb-session "
                f"create-table`)"
            )
        else:
            message = (
                f"the global secondary index {index_name!r} of table {table_name!r} is "
                f"{status} and cannot be read until it is ACTIVE; retry later (it was "
                f"added by `{self.command}`)"
            )
        super().__init__(message)
        self.index_name = index_name
        self.table_name = table_name
        self.status = status


class TableSetupError(SessionError):
    """The table could not be created or changed as asked (for instance, an engine that
    cannot add an index to an existing table). The message says what to do instead."""
