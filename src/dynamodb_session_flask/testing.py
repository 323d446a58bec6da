"""An in-memory session interface for unit tests that need a session but no DynamoDB."""

from __future__ import annotations

from flask import Flask
from flask.sessions import SessionInterface, SessionMixin
from flask.wrappers import Request, Response

from .session import DynamoDbSessionInstance
from .users import SessionInfo

__all__ = ["TestSession"]


class TestSession(SessionInterface):
    """Keeps one session in memory per ``TestSession`` instance, so values set through
    ``test_client.session_transaction()`` are seen by the following requests, and two
    test apps never share data. Nothing touches DynamoDB."""

    # Not a pytest test class, despite the name.
    __test__ = False

    class TestInstance(DynamoDbSessionInstance):
        """The session a view sees under ``TestSession``; the extra methods act in memory."""

        __test__ = False

        def abandon(self) -> None:
            """Clears the session; there is no database to remove it from."""
            self.clear()

        def create(self) -> None:
            """Starts over with an empty session."""
            self.clear()

        def regenerate(self) -> None:
            """Keeps the data; there is no id to change."""

        def save(self) -> None:
            """Nothing to save: the data lives in memory."""

        def user_sessions(self) -> list[SessionInfo]:
            """No other sessions exist in memory."""
            return []

        def end_other_sessions(self) -> int:
            """There are no other sessions to end."""
            return 0

        def end_user_session(self, handle: str) -> bool:
            """There is no other session a handle could name."""
            return False

    def __init__(self) -> None:
        self.memory_instance: DynamoDbSessionInstance = self.TestInstance()

    def open_session(self, app: Flask, request: Request) -> DynamoDbSessionInstance:
        return self.memory_instance

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        return None
