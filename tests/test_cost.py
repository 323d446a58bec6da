"""What each kind of request costs in DynamoDB calls (the figures DESIGN.md promises)."""

from __future__ import annotations

from .conftest import AppFactory


def test_calls_per_kind_of_request(make_app: AppFactory) -> None:
    app, calls = make_app()
    client = app.test_client()

    client.get("/set?user=ann")
    assert calls == {"PutItem": 1}, "login: one conditional put, no read"

    for path in ["/untouched", "/untouched"]:
        calls.clear()
        client.get(path)
        assert calls.total() == 0, "a request that never touches the session costs nothing"

    calls.clear()
    for _ in range(5):
        client.get("/get")
    assert calls == {"GetItem": 5}, "reads inside the refresh interval never write"

    calls.clear()
    client.get("/set?cart=book")
    assert calls == {"GetItem": 1, "UpdateItem": 1}

    calls.clear()
    client.get("/set?cart=book")
    assert calls == {"GetItem": 1}, "writing an unchanged value writes nothing"

    calls.clear()
    client.get("/clear")
    assert calls == {"DeleteItem": 1}, "logout deletes without reading first"


def test_refresh_written_once_the_interval_has_passed(make_app: AppFactory) -> None:
    app, calls = make_app(SESSION_DYNAMODB_REFRESH_INTERVAL=0)
    client = app.test_client()
    client.get("/set?a=1")
    calls.clear()
    client.get("/get")
    assert calls == {"GetItem": 1, "UpdateItem": 1}


def test_nested_mutation_saved_without_modified_flag(app_and_calls) -> None:
    app, calls = app_and_calls
    client = app.test_client()
    client.get("/append/cart/book")
    client.get("/append/cart/pen")
    assert client.get("/get").json == {"cart": ["book", "pen"]}
