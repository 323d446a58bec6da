"""``purge-expired`` never ends a session an application still serves: not from a machine
whose clock runs ahead, not with other timeout settings than the application's, not when
the session is used between the Scan and the delete."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask

from dynamodb_session_flask import maintenance

from .conftest import AppFactory, counted_client, item_count, random_text
from .engines import LocalEngine
from .test_cli import run, succeeded
from .test_expiry import FrozenClockSession

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

IDLE = 100


@pytest.fixture
def served(make_app: AppFactory) -> tuple[Flask, FrozenClockSession]:
    """An application (idle timeout 100 s) serving one session, last used 95 s ago by its
    own clock."""
    app, _ = make_app(SESSION_DYNAMODB_IDLE_TIMEOUT=IDLE, SESSION_DYNAMODB_REFRESH_INTERVAL=1)
    clock = FrozenClockSession(client=app.session_interface._client)  # type: ignore[attr-defined]
    app.session_interface = clock
    return app, clock


def command_app(app: Flask, seconds_ahead: float) -> Flask:
    """The same application's settings on another machine, whose clock is ahead."""
    command = Flask(__name__)
    command.config.update(app.config)
    interface = app.session_interface
    elsewhere = FrozenClockSession(client=interface._client)  # type: ignore[attr-defined]
    elsewhere.current = interface.current  # type: ignore[attr-defined]
    elsewhere.advance(seconds_ahead)
    command.session_interface = elsewhere
    return command


def test_a_clock_ahead_by_less_than_the_margin_deletes_nothing_live(
    served: tuple[Flask, FrozenClockSession], admin_client: DynamoDBClient, table_name: str
) -> None:
    app, clock = served
    client = app.test_client()
    client.get("/set?cart=book")
    clock.advance(95)

    # Idle 95 of 100 s for the application; 105 s by a clock 10 s ahead.
    output = succeeded(run(command_app(app, 10), "purge-expired", "--margin", "30"))

    assert "Deleted 0 expired sessions" in output
    assert client.get("/get").json == {"cart": "book"}, "still served"
    assert item_count(admin_client, table_name) == 1


def test_a_session_used_after_the_scan_found_it_expired_is_kept(
    served: tuple[Flask, FrozenClockSession],
    engine: LocalEngine,
    admin_client: DynamoDBClient,
    table_name: str,
) -> None:
    app, clock = served
    client = app.test_client()
    client.get("/set?cart=book")
    clock.advance(95)
    purge_clock = clock.current.timestamp() + 10  # no margin covers a clock this far off

    def used_meanwhile(_: int) -> None:
        # Between the Scan's page and its deletes, the application (whose clock says
        # live) serves the session and refreshes it.
        assert client.get("/get").json == {"cart": "book"}

    result = maintenance.purge_expired(
        admin_client,
        table_name,
        lambda: purge_clock,
        margin=0,
        segments=1,
        progress=used_meanwhile,
    )

    assert (result.expired, result.deleted, result.kept) == (1, 0, 1)
    assert client.get("/get").json == {"cart": "book"}


def put_session(
    client: DynamoDBClient, table_name: str, key: str, refreshed: float, data: str = '"x"'
) -> None:
    """A session item as the package writes it, created and refreshed at ``refreshed``."""
    client.put_item(
        TableName=table_name,
        Item={
            "id": {"S": key},
            "data": {"M": {"v": {"S": data}}},
            "created": {"N": str(refreshed)},
            "refreshed": {"N": str(refreshed)},
            "expires": {"N": str(int(refreshed) + IDLE)},
            "idle_timeout": {"N": str(IDLE)},
            "absolute_timeout": {"N": "43200"},
        },
    )


def test_many_pages_and_batches_delete_only_expired_sessions(
    engine: LocalEngine, admin_client: DynamoDBClient, table_name: str
) -> None:
    now = 1_800_000_000.0
    # 40 KB each: the Scan of one segment needs more than one 1 MB page for them.
    padding = '"' + random_text(40_000) + '"'
    for n in range(60):
        put_session(admin_client, table_name, f"expired-{n}", now - 1000, padding)
    for n in range(5):
        put_session(admin_client, table_name, f"live-{n}", now - 10)
    foreign: list[dict[str, Any]] = [
        {"id": {"S": "config"}, "value": {"S": "not a session"}},
        {"id": {"S": "half"}, "expires": {"N": "1"}, "created": {"N": "1"}},
    ]
    for item in foreign:
        admin_client.put_item(TableName=table_name, Item=item)
    client, calls = counted_client(engine.endpoint_url)

    dry = maintenance.purge_expired(client, table_name, lambda: now, dry_run=True, segments=1)
    assert (dry.expired, dry.deleted) == (60, 0)
    assert calls["DeleteItem"] == 0
    result = maintenance.purge_expired(client, table_name, lambda: now, segments=1)

    assert (result.expired, result.deleted, result.kept) == (60, 60, 0)
    assert calls["DeleteItem"] == 60
    assert calls["Scan"] >= 4, "each purge read more than one page"
    keys = {item["id"]["S"] for item in admin_client.scan(TableName=table_name)["Items"]}
    assert keys == {f"live-{n}" for n in range(5)} | {"config", "half"}
    assert item_count(admin_client, table_name) == 7
