"""The README's AWS Lambda recipe: the app built at import (Lambda's init phase) with
``init_app``, served through a real WSGI adapter (apig-wsgi) from API Gateway HTTP API
events, as Lambda would invoke the handler."""

from __future__ import annotations

from typing import Any

from apig_wsgi import make_lambda_handler
from flask import Flask, session

from dynamodb_session_flask import DynamoDbSession

from .conftest import CountingSession
from .engines import LocalEngine


def http_api_event(path: str, cookies: list[str]) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event for a GET of ``path``."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "cookies": cookies,
        "headers": {
            "host": "abc123.execute-api.us-east-1.amazonaws.com",
            "x-forwarded-proto": "https",
            "x-forwarded-port": "443",
        },
        "requestContext": {
            "http": {
                "method": "GET",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.10",
                "userAgent": "test",
            },
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }


def test_sessions_through_the_lambda_adapter(engine: LocalEngine, table_name: str) -> None:
    counting = CountingSession()
    # What the function's module does at import, in the init phase.
    app = Flask(__name__)
    app.config.update(
        SESSION_DYNAMODB_ENDPOINT_URL=engine.endpoint_url,
        SESSION_DYNAMODB_TABLE_NAME=table_name,
    )
    DynamoDbSession(boto3_session=counting.session).init_app(app)

    @app.get("/visit")
    def visit() -> str:
        session["visits"] = session.get("visits", 0) + 1
        return str(session["visits"])

    handler = make_lambda_handler(app)
    # The client exists before the first invocation, and no call was made for it.
    assert (counting.clients, counting.calls) == (1, 0)

    first = handler(http_api_event("/visit", []), None)
    assert (first["statusCode"], first["body"]) == (200, "1")
    [set_cookie] = first["cookies"]
    attributes = [part.strip().lower() for part in set_cookie.split(";")]
    # Over API Gateway's HTTPS the library's defaults apply unchanged.
    assert {"secure", "httponly", "samesite=strict"} <= set(attributes)
    session_cookie = set_cookie.split(";", 1)[0]

    second = handler(http_api_event("/visit", [session_cookie]), None)
    assert (second["statusCode"], second["body"]) == (200, "2")
    assert counting.clients == 1
