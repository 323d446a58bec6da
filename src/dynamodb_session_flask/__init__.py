"""Server-side Flask sessions stored in Amazon DynamoDB."""

from .errors import (
    ConfigError,
    SessionBackendError,
    SessionError,
    SessionTooLargeError,
    TableSetupError,
    UserIndexMissingError,
)
from .interface import DynamoDbSession
from .session import DynamoDbSessionInstance
from .table import add_user_index, create_table
from .users import SessionInfo, end_user_sessions, list_user_sessions

__version__ = "1.0.0"

__all__ = [
    "ConfigError",
    "DynamoDbSession",
    "DynamoDbSessionInstance",
    "SessionBackendError",
    "SessionError",
    "SessionInfo",
    "SessionTooLargeError",
    "TableSetupError",
    "UserIndexMissingError",
    "add_user_index",
    "create_table",
    "end_user_sessions",
    "list_user_sessions",
]
