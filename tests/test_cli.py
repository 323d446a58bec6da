"""``flask dynamodb-session ...``: every command against the real engine, with the app's
settings, through click's runner; and once as the ``flask`` process a user would start."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient

from dynamodb_session_flask import DynamoDbSession, list_user_sessions
from dynamodb_session_flask.cli import cli
from dynamodb_session_flask.maintenance import PurgeResult, purge_expired

from .conftest import AppFactory, item_count, proxied_app
from .engines import REPO_ROOT, LocalEngine, free_port
from .fault_proxy import FaultProxy
from .support import FrozenClockSession, freeze_clock
from .test_users import add_user_routes, eventually, is_logged_in, logged_in


def run(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(cli, list(args))


def succeeded(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def failed(result: Result) -> str:
    """The one line a failing command prints: exit code 1, no traceback."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.output
    return errors[0]


@pytest.fixture
def new_table_name(admin_client) -> Iterator[str]:
    """A name for a table the test's command creates; deleted afterwards."""
    name = f"cli-{uuid.uuid4().hex[:12]}"
    yield name
    try:
        admin_client.delete_table(TableName=name)
    except admin_client.exceptions.ResourceNotFoundException:
        pass


def describe(admin_client, name: str) -> dict[str, Any]:
    return admin_client.describe_table(TableName=name)["Table"]  # type: ignore[no-any-return]


# -- create-table and add-user-index ----------------------------------------------------------


def test_create_table_makes_the_table_with_ttl_and_the_user_index(
    make_app: AppFactory, admin_client, new_table_name: str, engine: LocalEngine
) -> None:
    app, _ = make_app(SESSION_DYNAMODB_TABLE_NAME=new_table_name)

    output = succeeded(run(app, "create-table"))

    assert f"Created table '{new_table_name}'" in output
    table = describe(admin_client, new_table_name)
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "user-index"
    assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert [(k["AttributeName"], k["KeyType"]) for k in index["KeySchema"]] == [
        ("user_id", "HASH"),
        ("handle", "RANGE"),
    ]
    if engine.name == "dynalite":
        assert "no TTL API" in output
    else:
        assert "TTL: enabled" in output
        ttl = admin_client.describe_time_to_live(TableName=new_table_name)
        assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires"

    again = succeeded(run(app, "create-table"))
    assert "already exists; left as it is" in again
    assert "Per-user index 'user-index': present." in again

    # The table works for sessions and per-user listings at once.
    add_user_routes(app)
    client = logged_in(app, "alice", "Browser")
    with app.app_context():
        assert len(eventually(lambda: list_user_sessions("alice"), bool)) == 1
    assert is_logged_in(client)


def test_the_index_name_setting_names_the_index_created_and_queried(
    make_app: AppFactory, admin_client, new_table_name: str
) -> None:
    app, _ = make_app(
        SESSION_DYNAMODB_TABLE_NAME=new_table_name, SESSION_DYNAMODB_USER_INDEX_NAME="by-user"
    )
    succeeded(run(app, "create-table"))
    assert describe(admin_client, new_table_name)["GlobalSecondaryIndexes"][0]["IndexName"] == (
        "by-user"
    )
    add_user_routes(app)
    logged_in(app, "alice", "Browser")
    with app.app_context():
        assert len(eventually(lambda: list_user_sessions("alice"), bool)) == 1


def test_add_user_index_to_a_table_created_without_it(
    make_app: AppFactory, admin_client, new_table_name: str, engine: LocalEngine
) -> None:
    app, _ = make_app(SESSION_DYNAMODB_TABLE_NAME=new_table_name)
    add_user_routes(app)
    output = succeeded(run(app, "create-table", "--no-user-index"))
    assert "not created (--no-user-index)" in output
    assert not describe(admin_client, new_table_name).get("GlobalSecondaryIndexes")
    client = logged_in(app, "alice", "Browser")  # sessions work without the index

    result = run(app, "add-user-index")

    if engine.name == "dynalite":
        # dynalite cannot add an index to an existing table, and says nothing when asked.
        line = failed(result)
        assert "did not add index 'user-index'" in line
        assert "dynalite" in line and "create-table" in line
        assert not describe(admin_client, new_table_name).get("GlobalSecondaryIndexes")
        return
    assert "Added index 'user-index'" in succeeded(result)
    # Sessions bound before the index existed are found: DynamoDB indexes existing items.
    with app.app_context():
        assert len(eventually(lambda: list_user_sessions("alice"), bool)) == 1
    assert is_logged_in(client)
    assert "already has index 'user-index'" in succeeded(run(app, "add-user-index"))


# -- stats and purge-expired ----------------------------------------------------------------


@pytest.fixture
def aged(make_app: AppFactory) -> tuple[Flask, FrozenClockSession, dict[str, FlaskClient]]:
    """Five sessions, three of them expired (idle timeout 100 s) but still in the table:
    alice's two and an anonymous one from t=0; bob's and another anonymous one from
    t=50; the clock at t=110."""
    app, _ = make_app(SESSION_DYNAMODB_IDLE_TIMEOUT=100)
    clock = freeze_clock(app)
    add_user_routes(app)
    clients = {
        "alice-1": logged_in(app, "alice", "A1"),
        "alice-2": logged_in(app, "alice", "A2"),
        "anonymous-old": app.test_client(),
    }
    clients["anonymous-old"].get("/set?cart=book")
    clock.advance(50)
    clients["bob"] = logged_in(app, "bob", "B")
    clients["anonymous-new"] = app.test_client()
    clients["anonymous-new"].get("/set?cart=pen")
    clock.advance(60)
    return app, clock, clients


def test_stats_counts_sessions_by_state(aged, admin_client, table_name: str) -> None:
    app, _, _ = aged

    output = succeeded(run(app, "stats", "--segments", "3"))

    assert f"Table '{table_name}': 5 items" in output
    assert "live sessions:          2" in output
    assert "expired, awaiting TTL:  3" in output
    assert "live, bound to a user:  1" in output
    sizes = next(line for line in output.splitlines() if "item size" in line)
    p50, p90, p99, largest = (int(part.split()[-1]) for part in sizes.split(":")[1].split(","))
    assert 100 < p50 <= p90 <= p99 <= largest < 1000


def test_purge_expired_deletes_only_expired_sessions(aged, admin_client, table_name: str) -> None:
    app, _, clients = aged

    dry = succeeded(run(app, "purge-expired", "--dry-run", "--margin", "5"))
    assert "Dry run: 3 expired sessions would be deleted" in dry
    assert item_count(admin_client, table_name) == 5

    output = succeeded(run(app, "purge-expired", "--segments", "2", "--margin", "5"))

    assert f"Deleted 3 expired sessions from '{table_name}'." in output
    assert item_count(admin_client, table_name) == 2
    assert is_logged_in(clients["bob"])
    assert clients["anonymous-new"].get("/get").json == {"cart": "pen"}
    assert "Deleted 0 expired sessions" in succeeded(run(app, "purge-expired", "--margin", "5"))


def test_purge_waits_the_margin_past_each_expiry(aged, admin_client, table_name: str) -> None:
    app, clock, _ = aged
    # Expired 10 s ago: within the default margin of 300 s, so kept for now.
    assert "Deleted 0 expired sessions" in succeeded(run(app, "purge-expired"))
    clock.advance(300)
    assert "Deleted 3 expired sessions" in succeeded(run(app, "purge-expired"))


def test_purge_never_applies_the_commands_shorter_timeout(
    aged, admin_client, table_name: str
) -> None:
    app, clock, clients = aged
    # The command run with a 30 s idle timeout while the application keeps 100 s: the t=50
    # sessions, idle for 60 s, are live for the application and must stay.
    shorter = Flask(__name__)
    shorter.config.update(app.config, SESSION_DYNAMODB_IDLE_TIMEOUT=30)
    shorter.session_interface = app.session_interface
    freeze_clock(shorter, like=clock)

    output = succeeded(run(shorter, "purge-expired", "--margin", "5"))

    assert "Deleted 3 expired sessions" in output
    assert is_logged_in(clients["bob"])
    assert clients["anonymous-new"].get("/get").json == {"cart": "pen"}


def test_purge_applies_the_read_rule_at_the_very_second_of_expiry(
    make_app: AppFactory, admin_client, table_name: str
) -> None:
    app, _ = make_app(SESSION_DYNAMODB_IDLE_TIMEOUT=100)
    clock = freeze_clock(app)
    ending, staying = app.test_client(), app.test_client()
    ending.get("/set?a=1")
    clock.advance(1)
    staying.get("/set?a=2")
    clock.advance(99)  # the first is idle for exactly its timeout: a read finds it expired

    assert "Deleted 1 expired sessions" in succeeded(run(app, "purge-expired", "--margin", "0"))
    assert ending.get("/get").json == {}
    assert staying.get("/get").json == {"a": "2"}


FOREIGN_ITEMS = [
    # Another application's items in a shared table, with attribute names sessions use too.
    {"id": {"S": "feature-flags"}, "created": {"N": "1600000000"}, "flags": {"S": "beta"}},
    {"id": {"S": "cache#home"}, "expires": {"N": "1600000000"}, "refreshed": {"N": "0"}},
]


def test_purge_leaves_items_that_are_not_sessions(aged, admin_client, table_name: str) -> None:
    app, _, _ = aged
    for item in FOREIGN_ITEMS:
        admin_client.put_item(TableName=table_name, Item=item)

    assert "Deleted 3 expired sessions" in succeeded(run(app, "purge-expired", "--margin", "5"))

    for item in FOREIGN_ITEMS:
        kept = admin_client.get_item(
            TableName=table_name, Key={"id": item["id"]}, ConsistentRead=True
        )
        assert kept.get("Item") == item
    assert "not sessions:           2" in succeeded(run(app, "stats"))


EXPIRED, LIVE = 30, 2


@pytest.fixture
def crowd(make_app: AppFactory, proxy: FaultProxy) -> Flask:
    """More expired sessions than one BatchWriteItem deletes (25), and two live ones, on an
    app whose client goes through the fault proxy."""
    app = proxied_app(make_app, proxy, SESSION_DYNAMODB_IDLE_TIMEOUT=100)
    clock = freeze_clock(app)
    for n in range(EXPIRED):
        app.test_client().get(f"/set?n={n}")
    clock.advance(200)
    for n in range(LIVE):
        app.test_client().get(f"/set?n=live-{n}")
    return app


def test_purge_deletes_across_scan_pages(
    crowd: Flask, proxy: FaultProxy, admin_client, table_name: str
) -> None:
    # DynamoDB ends a Scan page at 1 MB, which no test table reaches: pages of 4 items.
    proxy.page_size(4, operation="Scan")
    proxy.reset_counts()

    output = succeeded(run(crowd, "purge-expired", "--segments", "1", "--margin", "5"))

    assert f"Deleted {EXPIRED} expired sessions" in output
    assert item_count(admin_client, table_name) == LIVE
    pages = -(-(EXPIRED + LIVE) // 4)
    # (Engines differ on whether an empty last page follows a full one.)
    assert proxy.count("Scan") in (pages, pages + 1)
    assert proxy.count("DeleteItem") == EXPIRED


def test_a_dry_run_counts_and_deletes_nothing(aged, admin_client, table_name: str) -> None:
    app, clock, _ = aged

    result = purge_expired(
        admin_client, table_name, lambda: clock.current.timestamp(), margin=5, dry_run=True
    )

    assert result == PurgeResult(scanned=3, expired=3, deleted=0)
    assert item_count(admin_client, table_name) == 5


# -- end-user ---------------------------------------------------------------------------------


def test_end_user_ends_every_session_of_that_user(make_app: AppFactory) -> None:
    app, _ = make_app()
    add_user_routes(app)
    alice = [logged_in(app, "alice", f"A{n}") for n in range(2)]
    bob = logged_in(app, "bob", "B")
    with app.app_context():
        eventually(lambda: list_user_sessions("alice"), lambda rows: len(rows) == 2)

    output = succeeded(run(app, "end-user", "alice"))

    assert "Ended 2 sessions of user 'alice'." in output
    assert not any(is_logged_in(client) for client in alice)
    assert is_logged_in(bob)


def test_end_user_without_the_index_says_how_to_add_it(
    make_app: AppFactory, admin_client, new_table_name: str
) -> None:
    app, _ = make_app(SESSION_DYNAMODB_TABLE_NAME=new_table_name)
    succeeded(run(app, "create-table", "--no-user-index"))

    line = failed(run(app, "end-user", "alice"))

    assert "no global secondary index 'user-index'" in line
    assert "flask dynamodb-session add-user-index" in line


# -- failures: one line, exit code 1 -----------------------------------------------------------


@pytest.mark.parametrize(
    "command", [["stats"], ["purge-expired"], ["end-user", "alice"], ["add-user-index"]]
)
def test_a_missing_table_is_one_clear_line(make_app: AppFactory, command: list[str]) -> None:
    app, _ = make_app(SESSION_DYNAMODB_TABLE_NAME="no-such-table")

    line = failed(run(app, *command))

    assert "table 'no-such-table' not found" in line
    assert "flask dynamodb-session create-table" in line


@pytest.mark.parametrize(
    ("command", "operation", "permission"),
    [
        (["stats"], "Scan", "dynamodb:Scan on table"),
        (["purge-expired"], "Scan", "dynamodb:Scan on table"),
        (["end-user", "alice"], "Query", "dynamodb:Query on the table's index ARN"),
        (["create-table"], "CreateTable", "dynamodb:CreateTable on table"),
    ],
)
def test_a_missing_permission_is_named(
    make_app: AppFactory, proxy: FaultProxy, command: list[str], operation: str, permission: str
) -> None:
    app = proxied_app(make_app, proxy)
    proxy.deny(operation=operation)

    line = failed(run(app, *command))

    assert f"access denied: {operation} needs the IAM permission {permission}" in line
    assert "not authorized" in line


def test_an_unreachable_endpoint_is_one_line() -> None:
    app = Flask(__name__)
    app.config.update(
        SESSION_DYNAMODB_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}",
        SESSION_DYNAMODB_CONNECT_TIMEOUT=0.2,
        SESSION_DYNAMODB_MAX_ATTEMPTS=1,
    )
    DynamoDbSession().init_app(app)

    assert "cannot reach DynamoDB" in failed(run(app, "stats"))


# -- registration ---------------------------------------------------------------------------


def test_init_app_and_the_entry_point_register_the_commands() -> None:
    app = Flask(__name__)
    DynamoDbSession().init_app(app)
    assert app.cli.get_command(None, "dynamodb-session") is cli  # type: ignore[arg-type]

    points = importlib.metadata.entry_points()
    group = (
        points.select(group="flask.commands")
        if hasattr(points, "select")
        else points.get("flask.commands", [])  # type: ignore[attr-defined]
    )
    (point,) = [p for p in group if p.name == "dynamodb-session"]
    assert point.load() is cli


APP_MODULE = """
    import os

    from flask import Flask

    from dynamodb_session_flask import DynamoDbSession

    app = Flask(__name__)
    app.config.update(
        SESSION_DYNAMODB_ENDPOINT_URL=os.environ["TEST_ENDPOINT"],
        SESSION_DYNAMODB_TABLE_NAME=os.environ["TEST_TABLE"],
    )
    # Not init_app(): the package's entry point alone must provide the commands.
    app.session_interface = DynamoDbSession()
"""


def flask_command(tmp_path: Path, endpoint: str, table: str, *args: str) -> Any:
    (tmp_path / "sessionapp.py").write_text(textwrap.dedent(APP_MODULE))
    env = {
        **os.environ,
        "TEST_ENDPOINT": endpoint,
        "TEST_TABLE": table,
        "PYTHONPATH": str(tmp_path),
    }
    env.pop("FLASK_APP", None)
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "sessionapp", "dynamodb-session", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_flask_command_exits_zero_or_one(
    tmp_path: Path, engine: LocalEngine, table_name: str
) -> None:
    done = flask_command(tmp_path, engine.endpoint_url, table_name, "stats")
    assert done.returncode == 0, done.stderr
    assert f"Table '{table_name}': 0 items" in done.stdout

    missing = flask_command(tmp_path, engine.endpoint_url, "no-such-table", "stats")
    assert missing.returncode == 1
    assert missing.stdout == ""
    assert missing.stderr.strip().startswith("Error: table 'no-such-table' not found")
    assert len(missing.stderr.strip().splitlines()) == 1, missing.stderr
