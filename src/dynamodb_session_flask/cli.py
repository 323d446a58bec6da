"""``flask dynamodb-session ...``: the session table's operations from the command line.

The commands work on the table the application's settings name
(``SESSION_DYNAMODB_TABLE_NAME``, ``SESSION_DYNAMODB_ENDPOINT_URL``, ...), with the
application's own client. They are registered through the package's ``flask.commands``
entry point, and by :meth:`DynamoDbSession.init_app`. A failure is one line on stderr
and exit code 1, never a traceback.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click
from botocore.exceptions import BotoCoreError, ClientError
from flask import current_app
from flask.cli import AppGroup

from . import maintenance, users
from .context import SessionContext, build_context, context_of
from .diagnose import explain
from .errors import SessionBackendError, SessionError
from .table import INDEX_WAIT_SECONDS, add_user_index, create_table

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

cli = AppGroup("dynamodb-session", help="Operate this application's DynamoDB session table.")


def _context() -> SessionContext:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    context = context_of(app)
    if context is None:
        # An app that has not installed the interface: its settings still name the table.
        context = build_context(app.config, clock=time.time)
    return context


def _client(context: SessionContext) -> DynamoDBClient:
    return context.store.client


@contextmanager
def _reported(context: SessionContext) -> Iterator[None]:
    """Turn every failure into a one-line ``click.ClickException`` (exit code 1)."""
    table = context.settings.table_name
    logger = logging.getLogger("dynamodb_session_flask")
    # The library logs backend failures at ERROR; here the exception says it once, so
    # keep Python's last-resort handler from printing it a second time.
    quiet = logging.NullHandler()
    logger.addHandler(quiet)
    try:
        yield
    except SessionBackendError as exc:
        raise click.ClickException(explain(exc.original_error, table, exc.operation)) from exc
    except (ClientError, BotoCoreError) as exc:
        raise click.ClickException(explain(exc, table)) from exc
    except SessionError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        logger.removeHandler(quiet)


class _Bar:
    """A click progress bar that the scanning threads may all advance."""

    def __init__(self, bar: Any) -> None:
        self._bar = bar
        self._lock = threading.Lock()

    def __call__(self, count: int) -> None:
        with self._lock:
            self._bar.update(count)


@contextmanager
def _progressbar(client: DynamoDBClient, table: str, label: str) -> Iterator[Any]:
    """A progress bar over the table's items, on stderr so that stdout stays the result,
    only when stderr is a terminal: in a pipe, a log or a cron mail it prints nothing
    (click would still print its label) and costs no DescribeTable."""
    if not sys.stderr.isatty():
        yield _NoBar()
        return
    # DynamoDB refreshes ItemCount about every six hours: an estimate only.
    count = client.describe_table(TableName=table)["Table"].get("ItemCount", 0)
    with click.progressbar(length=max(1, int(count)), label=label, file=sys.stderr) as bar:
        yield bar


class _NoBar:
    def update(self, count: int) -> None:
        pass


_SEGMENTS = click.option(
    "--segments",
    type=click.IntRange(1, 64),
    default=maintenance.DEFAULT_SEGMENTS,
    show_default=True,
    help="Parallel Scan segments, each read by its own thread.",
)


@cli.command("create-table")
@click.option(
    "--no-user-index",
    is_flag=True,
    help="Do not create the per-user index (user_sessions() and the other per-user "
    "calls then fail; ordinary sessions work).",
)
def create_table_command(no_user_index: bool) -> None:
    """Create the session table: on-demand billing, TTL on `expires`, and the per-user
    index. An existing table is left as it is (TTL is enabled if it is off)."""
    context = _context()
    settings = context.settings
    with _reported(context):
        state = create_table(
            settings.table_name,
            client=_client(context),
            user_index=not no_user_index,
            index_name=settings.user_index_name,
        )
    table = settings.table_name
    if state.created:
        click.echo(f"Created table {table!r} (on-demand billing, hash key id).")
    else:
        click.echo(f"Table {table!r} already exists; left as it is.")
    if state.ttl_enabled:
        click.echo("TTL: enabled on attribute 'expires'.")
    else:
        click.echo(
            "TTL: this endpoint has no TTL API; expired sessions are never loaded but stay "
            "in the table until `flask dynamodb-session purge-expired` deletes them."
        )
    index = settings.user_index_name
    if state.user_index:
        click.echo(f"Per-user index {index!r}: present.")
    elif no_user_index:
        click.echo("Per-user index: not created (--no-user-index).")
    else:
        click.echo(
            f"Per-user index {index!r}: missing; add it with "
            f"`flask dynamodb-session add-user-index`."
        )


@cli.command("add-user-index")
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Wait until DynamoDB has built the index over the existing sessions.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=INDEX_WAIT_SECONDS,
    show_default=True,
    help="Longest wait, in seconds.",
)
def add_user_index_command(wait: bool, timeout: float) -> None:
    """Add the per-user index to an existing session table (one UpdateTable).

    Sessions keep working while DynamoDB builds it. dynalite cannot add an index to an
    existing table: create a new table there instead."""
    context = _context()
    settings = context.settings
    with _reported(context):
        added = add_user_index(
            settings.table_name,
            client=_client(context),
            index_name=settings.user_index_name,
            wait_seconds=timeout if wait else None,
        )
    index, table = settings.user_index_name, settings.table_name
    if not added:
        click.echo(f"Table {table!r} already has index {index!r}.")
    elif wait:
        click.echo(f"Added index {index!r} to table {table!r}; it is active.")
    else:
        click.echo(f"Adding index {index!r} to table {table!r}; DynamoDB is building it.")


@cli.command("stats")
@_SEGMENTS
def stats_command(segments: int) -> None:
    """Count the table's sessions (live, expired awaiting TTL, bound to users) and show
    their item sizes. Reads the whole table once (a Scan)."""
    context = _context()
    table = context.settings.table_name
    with _reported(context):
        client = _client(context)
        with _progressbar(client, table, "Scanning") as bar:
            stats = maintenance.table_stats(
                client,
                table,
                context.settings,
                context.clock(),
                segments=segments,
                progress=_Bar(bar),
            )
    click.echo(f"Table {table!r}: {stats.items} items")
    click.echo(f"  live sessions:          {stats.live}")
    click.echo(f"  expired, awaiting TTL:  {stats.expired}")
    click.echo(f"  live, bound to a user:  {stats.bound}")
    if stats.other:
        click.echo(f"  not sessions:           {stats.other}")
    sizes = ", ".join(
        f"{name} {stats.size_percentile(quantile)}"
        for name, quantile in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))
    )
    click.echo(f"  item size (bytes):      {sizes}")


@cli.command("purge-expired")
@click.option("--dry-run", is_flag=True, help="Count the expired sessions, delete nothing.")
@click.option(
    "--margin",
    type=click.FloatRange(min=0),
    default=maintenance.DEFAULT_MARGIN,
    show_default=True,
    help="Seconds past its expiry before a session is deleted: at least how far this "
    "machine's clock may be ahead of the application servers'.",
)
@_SEGMENTS
def purge_expired_command(dry_run: bool, margin: float, segments: int) -> None:
    """Delete expired sessions: for engines or tables without TTL, or to not wait for
    TTL's lag. A parallel Scan (reads the whole table), then one conditional DeleteItem
    per session that expired, by its own stored timeouts, at least --margin seconds ago
    and has not been used since the Scan. This application's timeout settings are not
    applied: the command never ends a session an application still serves."""
    context = _context()
    table = context.settings.table_name
    with _reported(context):
        client = _client(context)
        with _progressbar(client, table, "Purging") as bar:
            result = maintenance.purge_expired(
                client,
                table,
                context.clock,
                margin=margin,
                dry_run=dry_run,
                segments=segments,
                progress=_Bar(bar),
            )
    if dry_run:
        click.echo(f"Dry run: {result.expired} expired sessions would be deleted from {table!r}.")
    else:
        click.echo(f"Deleted {result.deleted} expired sessions from {table!r}.")
        if result.kept:
            click.echo(f"Left {result.kept} alone: changed or gone since the Scan found them.")


@cli.command("end-user")
@click.argument("user_id")
def end_user_command(user_id: str) -> None:
    """End every session of USER_ID (as stored under SESSION_DYNAMODB_USER_ID_KEY).

    Sessions bound within the last second or so may be missed (the index is eventually
    consistent): run it again where that matters."""
    context = _context()
    bound = users.user_id_of(user_id)
    if bound is None:
        raise click.BadParameter("must be a non-empty user id", param_hint="USER_ID")
    with _reported(context):
        ended = users.end_sessions(context, bound)
    click.echo(f"Ended {ended} sessions of user {user_id!r}.")
