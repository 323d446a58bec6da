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

#: The successor of dynamodb-session-flask 1.1.3 on PyPI: same import name, classes and
#: settings (see CHANGELOG.md, "Upgrading from 1.x").
__version__ = "2.0.0"

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
