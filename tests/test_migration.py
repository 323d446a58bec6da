"""Upgrading from 1.x without logging everyone out (``SESSION_DYNAMODB_MIGRATE_V1``).

Sessions are written by the real dynamodb-session-flask 1.1.3 from PyPI, installed in its
own virtualenv (``.venv-v1``, built on first use: it has the same import name as this
package) and run in a subprocess against the suite's engine; then this version reads them.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from dynamodb_session_flask import DynamoDbSession, migration
from dynamodb_session_flask.ids import storage_key

from .conftest import AppFactory, CallCounter
from .engines import REPO_ROOT, LocalEngine

V1_VENV = REPO_ROOT / ".venv-v1"
V1_REQUIREMENT = "dynamodb-session-flask==1.1.3"
V1_WRITER = Path(__file__).with_name("v1_writer.py")
SID_KEYS = ["old-key", "new-key"]


@pytest.fixture(scope="session")
def v1_python() -> Path:
    """The interpreter of a virtualenv holding the 1.1.3 package (and its dependencies:
    dynamodb-session-web 0.2, Flask 2)."""
    python = V1_VENV / "bin" / "python"
    stamp = V1_VENV / f".installed-{V1_REQUIREMENT}"
    if stamp.exists():
        return python
    uv = Path(sys.executable).parent / "uv"
    try:
        if shutil.which(str(uv)):
            subprocess.run(
                [str(uv), "venv", "-q", "--python", sys.executable, str(V1_VENV)], check=True
            )
            install = [str(uv), "pip", "install", "-q", "--python", str(python)]
        else:
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(V1_VENV)], check=True)
            install = [str(python), "-m", "pip", "install", "-q"]
        subprocess.run([*install, V1_REQUIREMENT], check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"cannot install {V1_REQUIREMENT} into {V1_VENV} for this test: {exc}")
    stamp.touch()
    return python


@pytest.fixture
def write_v1(v1_python: Path, engine: LocalEngine, table_name: str):
    """``write_v1(data, ..., config=...)`` stores sessions with 1.1.3; returns their ids."""

    def write(*sessions: dict[str, Any], config: dict[str, Any] | None = None) -> list[str]:
        spec = {
            "endpoint": engine.endpoint_url,
            "table": table_name,
            "config": config or {},
            "sessions": list(sessions),
        }
        done = subprocess.run(
            [str(v1_python), str(V1_WRITER), json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        ids: list[str] = json.loads(done.stdout)
        return ids

    return write


def get(app: Flask, session_id: str, path: str = "/get") -> Any:
    return app.test_client(use_cookies=False).get(path, headers={"Cookie": f"id={session_id}"})


def sent_id(response: Any) -> str | None:
    for header in response.headers.getlist("Set-Cookie"):
        name, _, rest = header.partition("=")
        if name == "id" and "Expires=Thu, 01 Jan 1970" not in rest:
            return rest.split(";", 1)[0]
    return None


def raw_item(admin_client: Any, table_name: str, key: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = admin_client.get_item(
        TableName=table_name, Key={"id": {"S": key}}, ConsistentRead=True
    ).get("Item")
    return item


CART = {"user": "ann", "cart": [{"sku": "A1", "qty": 2}], "visits": 3, "ok": True}


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_a_1x_session_moves_to_a_new_id_with_its_data(
    write_v1,
    make_app: AppFactory,
    admin_client,
    table_name: str,
    signed: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config: dict[str, Any] = {"SESSION_DYNAMODB_SID_KEYS": SID_KEYS} if signed else {}
    [old_id] = write_v1(CART, config=config)
    assert raw_item(admin_client, table_name, old_id) is not None, "1.x stores the raw id"
    app, calls = make_app(SESSION_DYNAMODB_MIGRATE_V1=True, **config)

    with caplog.at_level(logging.DEBUG, logger="dynamodb_session_flask"):
        response = get(app, old_id)
    assert response.status_code == 200
    assert response.json == CART
    new_id = sent_id(response)
    assert new_id is not None and new_id != old_id, "migration rotates the id"
    assert calls == CallCounter(GetItem=2, DeleteItem=1, PutItem=1)
    assert raw_item(admin_client, table_name, old_id) is None, "the 1.x item is removed"
    assert raw_item(admin_client, table_name, storage_key(new_id)) is not None
    assert "1.x session" in caplog.text
    assert old_id not in caplog.text and new_id not in caplog.text, "no raw id is logged"

    calls.clear()
    again = get(app, new_id)
    assert again.json == CART
    assert calls == CallCounter(GetItem=1), "a hit costs nothing more"
    assert get(app, old_id).json == {}, "the old id is worthless"


def test_off_by_default_a_1x_session_is_not_read(
    write_v1, make_app: AppFactory, admin_client, table_name: str
) -> None:
    [old_id] = write_v1(CART)
    app, calls = make_app()
    assert get(app, old_id).json == {}
    assert calls == CallCounter(GetItem=1)
    assert raw_item(admin_client, table_name, old_id) is not None


def test_a_miss_costs_one_more_getitem(make_app: AppFactory) -> None:
    app, calls = make_app(SESSION_DYNAMODB_MIGRATE_V1=True)
    unknown = "A" * 43
    assert get(app, unknown).json == {}
    assert calls == CallCounter(GetItem=2)


class ShiftedClock(DynamoDbSession):
    def __init__(self, shift: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shift = shift

    def now(self) -> datetime:
        return super().now() + timedelta(seconds=self.shift)


@pytest.mark.parametrize(
    ("shift", "config"),
    [
        (7300, {}),  # past the 1.x session's own idle timeout (7200 s)
        (120, {"SESSION_DYNAMODB_IDLE_TIMEOUT": 60}),  # past this version's shorter one
    ],
    ids=["its-own-timeout", "a-shorter-setting"],
)
def test_an_expired_1x_session_is_not_migrated(
    write_v1, make_app: AppFactory, table_name: str, shift: float, config: dict[str, Any]
) -> None:
    [old_id] = write_v1(CART)
    app, calls = make_app(SESSION_DYNAMODB_MIGRATE_V1=True, **config)
    app.session_interface = ShiftedClock(shift, client=app.session_interface._client)  # type: ignore[attr-defined]
    response = get(app, old_id)
    assert response.json == {}
    assert sent_id(response) is None
    assert calls["PutItem"] == 0 and calls["DeleteItem"] == 0


def test_two_requests_migrating_one_session_at_once_make_one_session(
    write_v1, make_app: AppFactory, admin_client, table_name: str
) -> None:
    """Both requests find the 1.x session; the conditional claim lets exactly one move it."""
    [old_id] = write_v1(CART)
    app, _ = make_app(SESSION_DYNAMODB_MIGRATE_V1=True)
    context = app.session_interface.context(app)  # type: ignore[attr-defined]
    first = migration.find(context, old_id)
    second = migration.find(context, old_id)
    assert first is not None and second is not None

    moved = migration.move(context, first, None)
    lost = migration.move(context, second, None)
    assert moved is not None and lost is None
    items = admin_client.scan(TableName=table_name)["Items"]
    assert [item["id"]["S"] for item in items] == [storage_key(moved[0])]


def test_a_storage_key_presented_as_an_id_is_never_loaded(
    make_app: AppFactory, admin_client, table_name: str
) -> None:
    """This layout's keys are hashes of ids: a leaked table must not yield usable ids,
    even through the 1.x lookup of raw ids."""
    app, _ = make_app(SESSION_DYNAMODB_MIGRATE_V1=True)
    app.test_client().get("/set?secret=1")
    [item] = admin_client.scan(TableName=table_name)["Items"]
    response = get(app, item["id"]["S"])
    assert response.json == {}
    assert len(admin_client.scan(TableName=table_name)["Items"]) == 1


def test_a_migrated_flask_login_session_is_bound_to_its_user(
    write_v1, make_app: AppFactory, admin_client, table_name: str
) -> None:
    [old_id] = write_v1({"_user_id": "42", "_fresh": True})
    app, _ = make_app(SESSION_DYNAMODB_MIGRATE_V1=True)
    new_id = sent_id(get(app, old_id))
    assert new_id is not None
    item = raw_item(admin_client, table_name, storage_key(new_id))
    assert item is not None and item["user_id"] == {"S": "42"}
