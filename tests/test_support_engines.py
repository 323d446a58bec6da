"""Checks that the test harness itself behaves: local engines and the fault proxy."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.retries import standard

from tests import engines
from tests.engines import LocalEngine, engine_client, start_engine
from tests.fault_proxy import THROTTLING_BODY, FaultProxy
from tests.support import require_dynalite

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

    MakeClient = Callable[..., DynamoDBClient]

KEY = {"id": {"S": "k1"}}
#: Skips on a moto run without dynalite; fails a dynalite run without it (see support.py).
needs_dynalite = pytest.mark.usefixtures("dynalite_required")


def _create_table(client: DynamoDBClient, name: str) -> None:
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    # Even with --createTableMs 0, dynalite answers CreateTable with CREATING and flips the
    # table to ACTIVE a moment later; writing before that is a ResourceNotFoundException.
    deadline = time.monotonic() + 10
    while client.describe_table(TableName=name)["Table"].get("TableStatus") != "ACTIVE":
        assert time.monotonic() < deadline, f"{name} never became ACTIVE"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def moto() -> Iterator[LocalEngine]:
    with start_engine("moto") as engine:
        yield engine


@pytest.fixture(scope="module")
def table(moto: LocalEngine) -> str:
    name = "fault-proxy-tests"
    client = moto.client()
    try:
        _create_table(client, name)
        client.put_item(TableName=name, Item={**KEY, "v": {"S": "hello"}})
    finally:
        client.close()
    return name


@pytest.fixture
def proxy(moto: LocalEngine) -> Iterator[FaultProxy]:
    with FaultProxy(moto.endpoint_url) as running:
        yield running


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    # Standard mode waits up to 1 s, then 2 s... before retrying a throttle; the number of
    # attempts is what these tests check, not the waiting.
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, ctx: 0)


@pytest.fixture
def make_client(proxy: FaultProxy) -> Iterator[MakeClient]:
    clients: list[DynamoDBClient] = []

    def make(attempts: int, **config: Any) -> DynamoDBClient:
        client = engine_client(
            proxy.url,
            retries={"mode": "standard", "total_max_attempts": attempts},
            **config,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def test_forwards_unchanged(proxy: FaultProxy, table: str, make_client: MakeClient) -> None:
    client = make_client(1)
    item = client.get_item(TableName=table, Key=KEY)["Item"]
    assert item["v"] == {"S": "hello"}
    assert proxy.count("GetItem") == 1
    assert proxy.requests == {"GetItem": 1}


@pytest.mark.usefixtures("no_backoff")
def test_throttle_is_retried_by_standard_mode(
    proxy: FaultProxy, table: str, make_client: MakeClient
) -> None:
    proxy.throttle(n=2, operation="GetItem")
    client = make_client(3)
    response = client.get_item(TableName=table, Key=KEY)
    assert response["Item"]["v"] == {"S": "hello"}
    assert response["ResponseMetadata"]["RetryAttempts"] == 2
    assert proxy.count("GetItem") == 3
    assert proxy.injected["throttle"] == 2


def test_throttle_without_retries_surfaces_dynamodb_error(
    proxy: FaultProxy, table: str, make_client: MakeClient
) -> None:
    proxy.throttle()
    client = make_client(1)
    with pytest.raises(ClientError) as caught:
        client.get_item(TableName=table, Key=KEY)
    error = caught.value.response
    assert error["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["ResponseMetadata"]["RequestId"]
    assert error["Error"]["Message"] == json.loads(THROTTLING_BODY)["message"]


def test_throttle_only_hits_the_chosen_operation(
    proxy: FaultProxy, table: str, make_client: MakeClient
) -> None:
    proxy.throttle(operation="PutItem")
    client = make_client(1)
    assert client.get_item(TableName=table, Key=KEY)["Item"]
    with pytest.raises(ClientError):
        client.put_item(TableName=table, Item={"id": {"S": "other"}})
    proxy.clear()
    client.put_item(TableName=table, Item={"id": {"S": "other"}})
    assert proxy.count("PutItem") == 2


def test_server_error_without_retries(
    proxy: FaultProxy, table: str, make_client: MakeClient
) -> None:
    proxy.server_error(n=1)
    client = make_client(1)
    with pytest.raises(ClientError) as caught:
        client.get_item(TableName=table, Key=KEY)
    assert caught.value.response["Error"]["Code"] == "InternalServerError"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert caught.value.response["Error"]["Message"] == "Internal server error"
    # n=1 is used up: the next call goes through.
    assert client.get_item(TableName=table, Key=KEY)["Item"]


def test_server_error_is_retried(proxy: FaultProxy, table: str, make_client: MakeClient) -> None:
    proxy.server_error(n=2)
    client = make_client(3)
    assert client.get_item(TableName=table, Key=KEY)["Item"]
    assert proxy.count("GetItem") == 3


def test_drop_gives_connection_error(
    proxy: FaultProxy, table: str, make_client: MakeClient
) -> None:
    proxy.drop(n=1, operation="GetItem")
    client = make_client(1)
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        client.get_item(TableName=table, Key=KEY)
    assert client.get_item(TableName=table, Key=KEY)["Item"]
    assert proxy.count("GetItem") == 2


def test_drop_is_retried(proxy: FaultProxy, table: str, make_client: MakeClient) -> None:
    proxy.drop(n=1)
    client = make_client(2)
    assert client.get_item(TableName=table, Key=KEY)["Item"]
    assert proxy.count("GetItem") == 2


def test_delay_beyond_read_timeout(proxy: FaultProxy, table: str, make_client: MakeClient) -> None:
    proxy.delay(1.0, n=1)
    client = make_client(1, read_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        client.get_item(TableName=table, Key=KEY)
    assert time.monotonic() - started < 1.0


def test_delay_within_read_timeout(proxy: FaultProxy, table: str, make_client: MakeClient) -> None:
    proxy.delay(0.2, n=1)
    client = make_client(1, read_timeout=5)
    started = time.monotonic()
    assert client.get_item(TableName=table, Key=KEY)["Item"]
    assert time.monotonic() - started >= 0.2


def test_reset_counts(proxy: FaultProxy, table: str, make_client: MakeClient) -> None:
    client = make_client(1)
    client.get_item(TableName=table, Key=KEY)
    proxy.reset_counts()
    assert proxy.count("GetItem") == 0


def test_stop_cuts_connections(moto: LocalEngine, table: str) -> None:
    proxy = FaultProxy(moto.endpoint_url).start()
    client = engine_client(proxy.url, retries={"mode": "standard", "total_max_attempts": 1})
    try:
        assert client.get_item(TableName=table, Key=KEY)["Item"]
        proxy.stop()
        proxy.stop()
        with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
            client.get_item(TableName=table, Key=KEY)
    finally:
        client.close()
        proxy.stop()


def test_missing_dynalite_is_explained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(engines, "DYNALITE_CLI", tmp_path / "missing" / "cli.js")
    monkeypatch.setattr("shutil.which", lambda cmd: "/usr/bin/node")
    with pytest.raises(RuntimeError, match="npm ci"):
        start_engine("dynalite")


@pytest.mark.parametrize(
    ("engine_name", "outcome"),
    [("moto", pytest.skip.Exception), ("dynalite", pytest.fail.Exception)],
)
def test_a_test_needing_dynalite_fails_without_it_on_a_dynalite_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, engine_name: str, outcome: type[Exception]
) -> None:
    monkeypatch.setattr(engines, "DYNALITE_CLI", tmp_path / "missing" / "cli.js")
    monkeypatch.setenv("DYNAMODB_ENGINE", engine_name)

    with pytest.raises(outcome, match="npm ci"):
        require_dynalite()


@needs_dynalite
def test_dynalite_answers() -> None:
    with start_engine("dynalite") as engine:
        client = engine.client()
        try:
            assert client.list_tables()["TableNames"] == []
        finally:
            client.close()
    assert not engine.running
    engine.stop()


@needs_dynalite
def test_dynalite_keeps_tables_across_restart(tmp_path: Path) -> None:
    name = f"persist-{uuid.uuid4().hex[:8]}"
    with start_engine("dynalite", data_path=str(tmp_path)) as engine:
        client = engine.client(retries={"mode": "standard", "max_attempts": 3})
        try:
            _create_table(client, name)
            client.put_item(TableName=name, Item={**KEY, "v": {"S": "kept"}})
            old_pid, url = engine.pid, engine.endpoint_url
            engine.restart()
            assert engine.pid != old_pid
            assert engine.endpoint_url == url
            assert client.list_tables()["TableNames"] == [name]
            item = client.get_item(TableName=name, Key=KEY, ConsistentRead=True)["Item"]
            assert item["v"] == {"S": "kept"}
        finally:
            client.close()
