"""Per-user sessions: which user a session belongs to, a user's live sessions, and ending
them ("log out my other devices": OWASP ASVS 3.3.3 and 3.3.4).

A session is *bound* to a user while its data holds ``SESSION_DYNAMODB_USER_ID_KEY``
(default ``"_user_id"``, Flask-Login's key) with a ``str`` or ``int`` value. The binding
(user id, a random handle, the User-Agent of the request that bound it) is stored in the
session's own item, written by the same PutItem or UpdateItem that stores or removes the
key: binding costs no extra call and no extra write. A global secondary index on the
binding (``user_id`` hash, ``handle`` range, keys only) finds a user's sessions.

Why keys only: everything a listing shows besides the handle either changes with every
refresh (``refreshed``, ``expires``), so projecting it would make every refresh write the
index too, or is cheap to read from the item in the same batch. With keys only, the index
is written only when a session is bound, rebound, unbound or deleted; the frequent refresh
and data writes never touch it. A listing pays for that with one BatchGetItem per 100
sessions, which it needs anyway to be exact (see below).

What is safe under concurrency:

* The index is eventually consistent: a session bound a moment ago (about a second on
  DynamoDB) may be missing from a listing and survive an "end other sessions" call made
  in that moment; a session ended a moment ago may still be in the index, but listings
  re-read every item with a strongly consistent BatchGetItem, so they never show it.
* Ending is a conditional delete (the record must still be bound to that user, with that
  handle), so a stale index entry never ends another user's session; and every write of a
  request already in flight for the ended session is conditional on its record existing,
  so it cannot bring the session back.

This module never calls DynamoDB itself; :mod:`.store` does.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from . import codec
from .context import SessionContext, context_of
from .records import Binding, SessionRecord
from .settings import Settings

logger = logging.getLogger("dynamodb_session_flask")

#: Longest User-Agent kept, in characters; browsers send 100-300.
MAX_USER_AGENT_LENGTH = 256
#: Longest user id that binds, in UTF-8 bytes. DynamoDB caps an index's hash key at 2048.
MAX_USER_ID_BYTES = 1024
#: No int of more bits has a decimal text within ``MAX_USER_ID_BYTES``.
_MAX_INT_BITS = (10**MAX_USER_ID_BYTES).bit_length()
#: Random bytes per handle: 128 bits, 22 URL-safe characters.
HANDLE_BYTES = 16
_HANDLE_SHAPE = re.compile(r"[A-Za-z0-9_\-]{22}")

__all__ = ["SessionInfo", "end_user_sessions", "list_user_sessions"]


@dataclass(frozen=True)
class SessionInfo:
    """One live session of a user, as a "your devices" page shows it. It carries no
    session id nor storage key: ``handle`` is what a page may show and post back."""

    #: Opaque, random and stable for the session's life, across ``regenerate()``.
    handle: str
    #: When the session began (kept across ``regenerate()``), aware UTC.
    created_at: datetime
    #: When the session was last seen, to within the refresh interval
    #: (``SESSION_DYNAMODB_REFRESH_INTERVAL``: reads inside it write nothing), aware UTC.
    last_active_at: datetime
    #: When the session expires unless used again (or, near its absolute timeout, for
    #: good), aware UTC.
    expires_at: datetime
    #: The User-Agent of the request that bound the session, at most 256 characters;
    #: ``None`` when not recorded.
    user_agent: str | None
    #: Whether this is the session of the request asking.
    current: bool


# -- binding: which user a session's data names --------------------------------------------


def user_id_of(value: Any) -> str | None:
    """The user id a session value binds to: a non-empty ``str`` as is, an ``int`` as its
    decimal text, either at most 1024 UTF-8 bytes; ``None`` for anything else. Ids are
    compared as text, so ``42`` and ``"42"`` are the same user."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        # The bound holds for every type: a longer id would make every write of the
        # session fail (the index's key limit), not merely leave it unlisted. An int too
        # long is ruled out by its bit length, before str(), which is slow for huge ints
        # and refuses them past 4300 digits.
        if value.bit_length() > _MAX_INT_BITS:
            return None
        value = str(value)
    if isinstance(value, str) and value and len(value.encode()) <= MAX_USER_ID_BYTES:
        return value
    return None


def new_handle() -> str:
    return secrets.token_urlsafe(HANDLE_BYTES)


def is_handle(candidate: object) -> bool:
    """Whether ``candidate`` could be a handle we issued; anything else is turned away
    before any DynamoDB call."""
    return isinstance(candidate, str) and _HANDLE_SHAPE.fullmatch(candidate) is not None


def user_agent_of(header: str | None) -> str | None:
    """The User-Agent as kept with a binding: at most 256 characters, ``None`` if empty."""
    return header[:MAX_USER_AGENT_LENGTH] if header else None


def binding_for(
    settings: Settings,
    data: Mapping[str, str],
    previous: Binding | None,
    user_agent: str | None,
    *,
    warn: bool = True,
) -> Binding | None:
    """The binding the serialized session ``data`` calls for.

    ``previous`` is kept as it is while it names the same user, so a session keeps its
    handle and the User-Agent of its login; a new user gets a new handle and this
    request's ``user_agent``; no user (or an id that cannot bind) means no binding. No
    DynamoDB call: the caller writes the result with the write it was making anyway.
    """
    text = data.get(settings.user_id_key)
    if text is None:
        return None
    user_id = user_id_of(codec.decode_value(text))
    if user_id is None:
        if warn:
            logger.warning(
                "Session key %s holds a value that cannot bind the session to a user (a "
                "non-empty str or an int, of at most %d bytes as text, is needed); the "
                "session is not listed among its user's sessions",
                settings.user_id_key,
                MAX_USER_ID_BYTES,
            )
        return None
    if previous is not None and previous.user_id == user_id:
        return previous
    return Binding(user_id, new_handle(), user_agent if settings.record_user_agent else None)


# -- a user's sessions ----------------------------------------------------------------------


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


def _live(record: SessionRecord, settings: Settings, now: float) -> SessionRecord | None:
    """``record`` under the current settings if it is live at ``now`` (the same rule as
    a session read), else ``None``."""
    limited = record.limited(settings.idle_timeout, settings.absolute_timeout)
    return limited if now < limited.expires_at else None


def list_sessions(
    context: SessionContext, user_id: str, *, current_key: str | None = None
) -> list[SessionInfo]:
    """The live sessions bound to ``user_id``, newest first.

    ``current_key`` is the storage key of the session asking: it is marked ``current``,
    and re-read with the others even when the index has not caught up with it yet, so a
    session that just logged in sees itself, and one ended meanwhile does not.

    Costs one Query on the index and one strongly consistent BatchGetItem per 100 of the
    user's sessions (expired ones still awaiting TTL included).
    """
    settings = context.settings
    entries = context.store.user_index_entries(settings.user_index_name, user_id)
    keys = [entry.key for entry in entries]
    if current_key is not None:
        keys.append(current_key)
    records = context.store.get_many(keys)
    now = context.clock()
    sessions = []
    for key, record in records.items():
        binding = record.binding
        # The index may lag behind a rebinding or an unbinding; the item is the truth.
        if binding is None or binding.user_id != user_id:
            continue
        live = _live(record, settings, now)
        if live is None:
            continue
        sessions.append(
            SessionInfo(
                handle=binding.handle,
                created_at=_utc(live.created),
                last_active_at=_utc(live.refreshed),
                expires_at=_utc(live.expires_at),
                user_agent=binding.user_agent,
                current=key == current_key,
            )
        )
    sessions.sort(key=lambda info: (info.created_at, info.handle), reverse=True)
    return sessions


#: Rounds of following moved sessions before giving up on one that keeps moving.
MAX_FOLLOW_ROUNDS = 20


def end_sessions(
    context: SessionContext,
    user_id: str,
    *,
    keep_key: str | None = None,
) -> int:
    """End every session bound to ``user_id`` except the one stored under ``keep_key``;
    return how many live ones were ended.

    A session being rotated (``regenerate()``) meanwhile is followed: rotation creates
    the new record, with the same handle, before it ends the old one, so when a delete
    finds a listed record gone, or cannot tell (its answer was lost and the retry found
    it gone), one Query on that handle finds where it went. Rounds repeat until no
    handle moved.

    Costs one Query on the index and one conditional DeleteItem per session found, plus one
    Query per session that moved under the ending. Expired records found are deleted too,
    but not counted.
    """
    settings = context.settings
    store = context.store
    pending = store.user_index_entries(settings.user_index_name, user_id)
    tried: set[str] = set()
    ended = 0
    for _ in range(MAX_FOLLOW_ROUNDS):
        moved: set[str] = set()
        for entry in pending:
            if entry.key == keep_key or entry.key in tried:
                continue
            tried.add(entry.key)
            ending = store.end_bound(entry.key, user_id)
            if not ending.ended or ending.held is None:
                # Gone under us (rotated to a new key, perhaps), or unknown: follow it.
                moved.add(entry.handle)
            if ending.ended and (
                ending.held is None or _live(ending.held, settings, context.clock()) is not None
            ):
                ended += 1
        if not moved:
            return ended
        pending = [
            entry
            for handle in sorted(moved)
            for entry in store.user_index_entries(settings.user_index_name, user_id, handle)
        ]
    logger.warning(
        "Ending the sessions of a user: a session kept moving to new ids for %d rounds",
        MAX_FOLLOW_ROUNDS,
    )
    return ended


def end_copies(context: SessionContext, user_id: str, handle: str, *, keep_key: str | None) -> int:
    """End the records of ``user_id`` that carry ``handle`` under another key than
    ``keep_key``: copies of a session moved to a new id by another holder of its id.
    Returns how many were ended. One Query on the index, one DeleteItem per copy."""
    settings = context.settings
    ended = 0
    for entry in context.store.user_index_entries(settings.user_index_name, user_id, handle):
        if entry.key != keep_key and context.store.end_bound(entry.key, user_id, handle).ended:
            ended += 1
    return ended


def end_session(context: SessionContext, user_id: str, handle: str) -> bool:
    """End the session of ``user_id`` named ``handle``; ``False`` when there is no live
    one (unknown handle, another user's, already ended or expired). A session being
    rotated meanwhile is followed to its new key, as by :func:`end_sessions`.

    Costs nothing for a handle of the wrong shape; otherwise one Query on the index, and
    one conditional DeleteItem if the index lists the handle under this user.
    """
    if not is_handle(handle):
        return False
    settings = context.settings
    ended = False
    tried: set[str] = set()
    for _ in range(MAX_FOLLOW_ROUNDS):
        entries = context.store.user_index_entries(settings.user_index_name, user_id, handle)
        moved = False
        for entry in entries:
            if entry.key in tried:
                continue
            tried.add(entry.key)
            ending = context.store.end_bound(entry.key, user_id, handle)
            if not ending.ended or ending.held is None:
                moved = True
            if ending.ended and (
                ending.held is None or _live(ending.held, settings, context.clock()) is not None
            ):
                ended = True
        if not moved:
            return ended
    return ended


# -- for admin tools, in an application context ---------------------------------------------


def _application_context() -> SessionContext:
    from flask import current_app

    context = context_of(current_app._get_current_object())  # type: ignore[attr-defined]
    if context is None:
        raise RuntimeError(
            "the current application's session_interface is not a DynamoDbSession; "
            "install one with DynamoDbSession().init_app(app)"
        )
    return context


def _required_user_id(user_id: str | int) -> str:
    bound = user_id_of(user_id)
    if bound is None:
        raise ValueError(
            f"user ids are non-empty strs or ints of at most {MAX_USER_ID_BYTES} bytes as "
            f"text; got {type(user_id).__name__}"
        )
    return bound


def list_user_sessions(user_id: str | int) -> list[SessionInfo]:
    """The live sessions of ``user_id``, newest first (none is ``current``), for admin
    tools; needs an application context of an app using :class:`DynamoDbSession`.

    Costs one Query on the index and one BatchGetItem per 100 sessions. A session bound a
    moment ago may be missing (the index is eventually consistent).

    :raises UserIndexMissingError: when the table has no per-user index.
    """
    return list_sessions(_application_context(), _required_user_id(user_id))


def end_user_sessions(user_id: str | int) -> int:
    """End every session of ``user_id`` (say, an account locked by an administrator) and
    return how many live ones were ended; needs an application context of an app using
    :class:`DynamoDbSession`.

    Costs one Query on the index and one conditional DeleteItem per session. A session
    bound a moment ago may be missed (the index is eventually consistent): call it again
    after a few seconds where that matters.

    :raises UserIndexMissingError: when the table has no per-user index.
    """
    return end_sessions(_application_context(), _required_user_id(user_id))
