"""Server-side Flask sessions stored in Amazon DynamoDB."""

from .errors import ConfigError, SessionBackendError, SessionError, SessionTooLargeError
from .interface import DynamoDbSession
from .session import DynamoDbSessionInstance
from .table import create_table

__version__ = "1.0.0"

__all__ = [
    "ConfigError",
    "DynamoDbSession",
    "DynamoDbSessionInstance",
    "SessionBackendError",
    "SessionError",
    "SessionTooLargeError",
    "create_table",
]
