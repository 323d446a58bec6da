"""Setup mistakes named in one line that says what to do.

The same words serve the start-up warning of ``init_app``, the ERROR line logged with a
request's 503, and the ``flask dynamodb-session`` commands' one-line errors, so that a
missing region, missing credentials or a missing table never pass for an outage.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

from .errors import SessionBackendError

if TYPE_CHECKING:
    from .store import SessionStore

logger = logging.getLogger("dynamodb_session_flask")

#: The key ``warm`` reads: not of a storage key's shape, so no session is ever under it.
WARM_UP_KEY = "warm-up"

NO_REGION = (
    "no AWS region is configured: set AWS_REGION (or AWS_DEFAULT_REGION, or region in the "
    "AWS profile), or pass DynamoDbSession(boto3_session=boto3.Session(region_name=...))"
)
NO_CREDENTIALS = (
    "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
    "AWS_PROFILE, or run with an IAM role (any values do for a local endpoint)"
)
#: The create-table hint, for a table that does not exist.
CREATE_TABLE = "flask dynamodb-session create-table"
#: IAM permission hints for the operations whose resource is not simply the table.
_PERMISSIONS = {
    "Query": "dynamodb:Query on the table's index ARN (table/NAME/index/*)",
}


def explain(exc: BaseException, table: str, operation: str = "") -> str:
    """What went wrong with DynamoDB, and what to do, in one line."""
    if isinstance(exc, NoRegionError):
        return NO_REGION
    if isinstance(exc, NoCredentialsError):
        return NO_CREDENTIALS
    if isinstance(exc, PartialCredentialsError):
        return f"{NO_CREDENTIALS} ({exc})"
    if not isinstance(exc, ClientError):
        if isinstance(exc, BotoCoreError):
            return f"cannot reach DynamoDB: {exc}"
        return f"DynamoDB {operation} failed: {exc}"
    error = exc.response.get("Error", {})
    code = error.get("Code", "")
    message = error.get("Message", "")
    operation = exc.operation_name or operation
    if code == "ResourceNotFoundException":
        return (
            f"table {table!r} not found ({operation}: {message}); create it with "
            f"`{CREATE_TABLE}`, or check SESSION_DYNAMODB_TABLE_NAME and "
            f"SESSION_DYNAMODB_ENDPOINT_URL"
        )
    if code in ("AccessDeniedException", "UnauthorizedOperation"):
        permission = _PERMISSIONS.get(operation, f"dynamodb:{operation} on table {table!r}")
        return f"access denied: {operation} needs the IAM permission {permission} ({message})"
    if code in ("UnrecognizedClientException", "InvalidSignatureException"):
        return (
            f"AWS rejected the credentials ({code}: {message}): check AWS_ACCESS_KEY_ID, "
            f"AWS_SECRET_ACCESS_KEY or AWS_PROFILE, and that the region is the table's"
        )
    return f"DynamoDB {operation} on table {table!r} failed: {code}: {message}"


def warm(store: SessionStore) -> None:
    """One GetItem at start-up on the application's own client: the first connection (a
    TLS handshake) and botocore's first-call work are paid now, not by the first user.
    A failure (a missing table, say) is logged, named, and does not stop the start."""
    try:
        store.get(WARM_UP_KEY)
    except SessionBackendError:
        logger.warning(
            "The warm-up read at start-up failed (see the error above); every request that "
            "uses a session answers 503 until it is fixed"
        )
