"""The one low-level DynamoDB client an application shares across its threads.

boto3 clients are thread-safe once built, but building one costs tens of milliseconds and
is not thread-safe through boto3's default session, so it is built once under a lock: at
start-up when the application calls ``init_app``, on first use otherwise. A child process
rebuilds it after a fork (a pre-forking server must not share the parent's connection
pool).
"""

from __future__ import annotations

# The first connection to a host name loads Python's IDNA codec (about 2 ms); loading it
# with the client keeps that out of the first request.
import encodings.idna  # noqa: F401
import logging
import os
import threading
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from .diagnose import NO_CREDENTIALS

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
else:
    DynamoDBClient = Any

logger = logging.getLogger("dynamodb_session_flask")

#: Pool size: enough for a threaded server's workers to share one client without queueing.
MAX_POOL_CONNECTIONS = 50
#: The operations the session store calls. botocore parses an operation's model on its
#: first call; parsing them when the client is built keeps that out of the first request.
OPERATIONS = ("GetItem", "PutItem", "UpdateItem", "DeleteItem")


def default_config(connect_timeout: float, read_timeout: float, max_attempts: int) -> Config:
    """botocore settings sized for a web request: short timeouts, a small retry budget with
    backoff (botocore's "standard" mode retries throttling and 5xx answers)."""
    return Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        max_pool_connections=MAX_POOL_CONNECTIONS,
    )


class ClientProvider:
    """Hands out the shared client, building it on first use.

    :param client: a ready client to use as is (nothing else below applies).
    :param boto3_session: the boto3 session to build the client from; a new private one
        otherwise, so region and credentials follow boto3's usual lookup.
    :param config: botocore ``Config`` merged over ``default_config``'s timeouts and retries.
    :param endpoint_url: DynamoDB endpoint; ``None`` lets boto3 choose.
    """

    def __init__(
        self,
        *,
        client: DynamoDBClient | None = None,
        boto3_session: boto3.session.Session | None = None,
        config: Config,
        endpoint_url: str | None = None,
    ) -> None:
        self._given = client
        self._boto3_session = boto3_session
        self._config = config
        self._endpoint_url = endpoint_url
        self._lock = threading.Lock()
        self._client: DynamoDBClient | None = None
        self._pid = 0

    def __call__(self) -> DynamoDBClient:
        if self._given is not None:
            return self._given
        client, pid = self._client, os.getpid()
        if client is not None and self._pid == pid:
            return client
        with self._lock:
            if self._client is None or self._pid != pid:
                session = self._boto3_session or boto3.session.Session()
                client = session.client(
                    "dynamodb", endpoint_url=self._endpoint_url, config=self._config
                )
                _parse_models(client)
                # Resolved (and cached) while the client was built: free to ask. Without
                # credentials every call fails before leaving the process; say so now.
                if session.get_credentials() is None:
                    logger.warning(
                        "%s; until then every request that uses a session answers 503",
                        NO_CREDENTIALS,
                    )
                self._client, self._pid = client, pid
            return self._client


def _parse_models(client: DynamoDBClient) -> None:
    service = client.meta.service_model
    for name in OPERATIONS:
        operation = service.operation_model(name)
        operation.input_shape  # noqa: B018 - parsed and cached on first access
        operation.output_shape  # noqa: B018
