"""The session object a view sees as ``flask.session``: a ``dict`` that loads itself on
first use and tracks what the view changed, with the extra methods of this package
(:meth:`~DynamoDbSessionInstance.regenerate`, the per-user calls, ...).

What happens to the record behind it (load, rotate, create, update, end, fail closed)
is :mod:`.record_life`'s; the per-user listing and ending are :mod:`.users`'.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from flask.sessions import SessionMixin

from . import codec, users
from .context import SessionContext
from .errors import SessionBackendError
from .ids import loggable_id
from .record_life import RecordLife
from .users import SessionInfo

logger = logging.getLogger("dynamodb_session_flask")

_MISSING = object()

__all__ = ["DynamoDbSessionInstance", "SessionContext"]


class DynamoDbSessionInstance(dict[str, Any], SessionMixin):
    """A Flask session stored in DynamoDB.

    Behaves like Flask's own session (a dict with ``permanent``, ``new`` and ``modified``),
    plus :meth:`abandon`, :meth:`create`, :meth:`save` and :meth:`regenerate`, and the
    per-user :meth:`user_sessions`, :meth:`end_other_sessions` and
    :meth:`end_user_session`. Nested
    mutations such as ``session["cart"].append(item)`` are saved without setting
    ``modified``: values that could have changed are compared with what was loaded, and
    only the keys that differ are written.

    ``failed_sid`` is the loggable hash (hex SHA-512) of an id the request presented that
    was malformed, forged, unknown or expired, and ``""`` otherwise.

    When DynamoDB cannot serve the session, the first use raises
    :class:`~dynamodb_session_flask.errors.SessionBackendError` (an HTTP 503). The session
    then stays unavailable for the rest of the request: later uses see it empty, nothing is
    written, and the response becomes a 503 whatever the view returned, so an empty session
    is never passed off as the user's.
    """

    def __init__(
        self,
        context: SessionContext | None = None,
        presented_id: str | None = None,
        *,
        failed_sid: str = "",
        user_agent: str | None = None,
    ) -> None:
        super().__init__()
        self._life = RecordLife(
            self, context, presented_id, failed_sid=failed_sid, user_agent=user_agent
        )

    # -- state ------------------------------------------------------------------------

    @property
    def modified(self) -> bool:
        """Whether this request changed the session's data: through the dict interface,
        or inside a value (found when saving). It stays True after the save, as with
        Flask's session. Change detection does not depend on it: setting it is harmless
        and unnecessary."""
        return self._life.modified

    @modified.setter
    def modified(self, value: bool) -> None:
        self._life.modified = value

    @property
    def session_id(self) -> str:
        """This session's id; a new session gets its id here, before it is stored."""
        return self._life.session_id

    @property
    def failed_sid(self) -> str:
        self._life.ensure_loaded()
        return self._life.failed_sid

    @failed_sid.setter
    def failed_sid(self, value: str) -> None:
        self._life.failed_sid = value

    @property
    def new(self) -> bool:  # type: ignore[override]
        """True until the session is stored in DynamoDB."""
        self._life.ensure_loaded()
        return self._life.record is None

    @property
    def is_loaded(self) -> bool:
        """Whether the session's stored state is known (read, or known to be empty)."""
        return self._life.loaded

    @property
    def is_used(self) -> bool:
        """Whether this request used the session: read it, changed it, or ended it."""
        return self._life.used

    @property
    def client_had_id(self) -> bool:
        """Whether the request carried an id (valid or not): its cookie may need expiring."""
        return self._life.presented_id is not None or bool(self._life.failed_sid)

    @property
    def is_stored(self) -> bool:
        """Whether the session currently has a live record in the table."""
        return self._life.record is not None

    @property
    def ended_client_record(self) -> bool:
        """Whether this request deleted the record the client's id pointed to."""
        return self._life.ended_client_record

    @property
    def backend_error(self) -> SessionBackendError | None:
        """The DynamoDB failure that made this session unavailable, if one did."""
        return self._life.unavailable

    @property
    def created_at(self) -> float | None:
        """Epoch seconds at which the stored session was created, if it is stored.
        ``regenerate()`` keeps it: it is when the user's session began."""
        self._life.ensure_loaded()
        record = self._life.current_record()
        return None if record is None else record.created

    @property
    def expires_at(self) -> float | None:
        """Epoch seconds at which the stored session expires, if it is stored."""
        self._life.ensure_loaded()
        record = self._life.current_record()
        return None if record is None else record.expires_at

    def mark_responding(self) -> None:
        """Flask is finishing the response (after-request hooks such as Flask-Login's
        run now). A DynamoDB failure from here on is not raised, because Flask would turn
        it into a 500 with a traceback; the session is marked unavailable instead and
        ``save_session`` answers 503."""
        self._life.responding = True

    # -- the extra methods ------------------------------------------------------------

    def clear(self) -> None:
        """Empty the session. When the request ends, its record is deleted (before anything
        else is written, so the logout holds even if the rest of the save fails) and the
        cookie expired; data added after ``clear()`` is saved under a new id."""
        self._life.clear()

    def abandon(self) -> None:
        """Immediately remove the session from the database (one DeleteItem) and empty it."""
        self._life.abandon()

    def create(self) -> None:
        """Start a new, empty session with a new id. The old record is not removed."""
        self._life.create()

    def regenerate(self) -> None:
        """Keep the data but move it to a new id: call it when privileges change, e.g. at
        login, against fixation.

        When the request is saved, the new record is created, then the old one is ended
        with a delete that only succeeds while it is still live and returns what it held.
        A logout or an ending of the user's sessions that ran meanwhile therefore wins (the
        new record is deleted again, and no id, old or new, loads the data), keys other
        requests changed meanwhile are kept, and the new record keeps the old one's
        creation time, so the absolute timeout is not restarted. Costs one PutItem and one
        DeleteItem, plus one UpdateItem when other requests changed keys meanwhile.
        """
        self._life.regenerate()

    def save(self) -> None:
        """Save the session now rather than at the end of the request. Later changes in the
        same request are saved as a further delta.

        Records this request ended are deleted first: if saving the new data then fails
        (a value that cannot be serialized, a session too large, DynamoDB failing), the
        ended session stays ended.
        """
        self._life.save()

    # -- per-user sessions (see users.py) ------------------------------------------------

    def user_sessions(self) -> list[SessionInfo]:
        """The live sessions of this session's user, newest first, this one marked
        ``current``; ``[]`` when the session holds no user id (under
        ``SESSION_DYNAMODB_USER_ID_KEY``).

        Costs one Query on the per-user index and one BatchGetItem per 100 sessions. The
        index is eventually consistent: another session bound a moment ago may be missing
        (this one is always re-read, and listed once stored and bound).

        :raises UserIndexMissingError: when the table has no per-user index.
        """
        user_id = self._bound_user()
        if user_id is None:
            return []
        return users.list_sessions(self._life.context, user_id, current_key=self._life.own_key())

    def end_other_sessions(self) -> int:
        """End every other live session of this session's user and return how many were
        ended: the call to make after a password change (ASVS 3.3.3). Only this
        session's own record is kept; ``0`` without a user.

        First, no other holder of this session's id may move it away: a ``regenerate()``
        pending in this request is carried out now, otherwise the record is fenced (one
        UpdateItem), so a stolen copy of the id being moved at this moment fails to move.
        When the record was already moved to a new id by another holder of the id, that
        id is known to someone else: every session of the user is ended, this one and the
        copy included (fail closed). Sessions being moved to a new id meanwhile are
        followed to it, so none escapes by rotating.

        Costs one UpdateItem (none after ``regenerate()``), one Query on the per-user
        index and one conditional DeleteItem per other session, plus one Query per session
        that moved under the ending. Requests of the ended sessions already in flight
        cannot bring them back; a session bound within the last second or so may be
        missed (the index is eventually consistent).

        :raises UserIndexMissingError: when the table has no per-user index.
        """
        user_id = self._bound_user()
        if user_id is None:
            return 0
        life = self._life
        handle = life.own_handle(user_id)
        if not life.hold_against_copies() and handle is not None:
            copies = users.end_copies(life.context, user_id, handle, keep_key=life.own_key())
            if copies:
                logger.warning(
                    "Session %s was moved to a new id by another holder of its id; every "
                    "session of its user is ended, this one included",
                    loggable_id(life.current_id())[:16],
                )
                ended = copies + users.end_sessions(life.context, user_id)
                self.clear()
                return ended
            # Ended or expired meanwhile (another device's ending, a logout elsewhere):
            # this session is gone already; the others are still ended, as asked.
        return users.end_sessions(life.context, user_id, keep_key=life.own_key())

    def end_user_session(self, handle: str) -> bool:
        """End the session of this session's user named ``handle`` (from
        :meth:`user_sessions`); ``False``, with nothing ended, for a handle of another
        user's session, an unknown or malformed one, or when there is no user. Ending
        this session's own handle is a logout: it works as :meth:`abandon`.

        Costs one Query on the per-user index and one conditional DeleteItem (nothing for
        a malformed handle).

        :raises UserIndexMissingError: when the table has no per-user index.
        """
        user_id = self._bound_user()
        if user_id is None or not users.is_handle(handle):
            return False
        if handle == self._life.own_handle(user_id):
            self.abandon()
            return True
        return users.end_session(self._life.context, user_id, handle)

    def _bound_user(self) -> str | None:
        """The user id this session's data names now, loading it first."""
        self._life.ensure_loaded()
        if self._life.unavailable is not None:
            # Never answer "no user" for a session DynamoDB could not load.
            raise self._life.unavailable
        key = self._life.context.settings.user_id_key
        return users.user_id_of(dict.get(self, key))

    # -- dict interface: load first, track changes ---------------------------------------

    def _hand_out(self, key: str) -> Any:
        value = dict.__getitem__(self, key)
        self._life.changes.handed_out(key, value)
        return value

    def _hand_out_all(self) -> None:
        for key in dict.keys(self):
            self._hand_out(key)

    def __getitem__(self, key: str) -> Any:
        self._life.ensure_loaded()
        return self._hand_out(key)

    def get(self, key: str, default: Any = None) -> Any:
        self._life.ensure_loaded()
        return self._hand_out(key) if dict.__contains__(self, key) else default

    def __setitem__(self, key: str, value: Any) -> None:
        self._life.ensure_loaded()
        codec.check_key(key)
        dict.__setitem__(self, key, value)
        self._life.changes.assigned(key)
        self.modified = True

    def __delitem__(self, key: str) -> None:
        self._life.ensure_loaded()
        dict.__delitem__(self, key)
        self.modified = True

    def setdefault(self, key: str, default: Any = None) -> Any:
        self._life.ensure_loaded()
        if key not in self:
            self[key] = default
        return self[key]

    def pop(self, key: str, default: Any = _MISSING) -> Any:
        self._life.ensure_loaded()
        if dict.__contains__(self, key):
            self.modified = True
            return dict.pop(self, key)
        if default is _MISSING:
            raise KeyError(key)
        return default

    def popitem(self) -> tuple[str, Any]:
        self._life.ensure_loaded()
        item = dict.popitem(self)
        self.modified = True
        return item

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._life.ensure_loaded()
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __ior__(self, other: Any) -> DynamoDbSessionInstance:  # type: ignore[override]
        self.update(other)
        return self

    def __or__(self, other: Any) -> dict[str, Any]:  # type: ignore[override]
        merged = self.copy()
        merged.update(other)
        return merged

    def __contains__(self, key: object) -> bool:
        self._life.ensure_loaded()
        return dict.__contains__(self, key)

    def __iter__(self) -> Iterator[str]:
        self._life.ensure_loaded()
        return dict.__iter__(self)

    def __reversed__(self) -> Iterator[str]:
        self._life.ensure_loaded()
        return dict.__reversed__(self)

    def __len__(self) -> int:
        self._life.ensure_loaded()
        return dict.__len__(self)

    def keys(self) -> Any:
        self._life.ensure_loaded()
        return dict.keys(self)

    def values(self) -> Any:
        self._life.ensure_loaded()
        self._hand_out_all()
        return dict.values(self)

    def items(self) -> Any:
        self._life.ensure_loaded()
        self._hand_out_all()
        return dict.items(self)

    def copy(self) -> dict[str, Any]:
        self._life.ensure_loaded()
        self._hand_out_all()
        return dict.copy(self)

    def __eq__(self, other: object) -> bool:
        self._life.ensure_loaded()
        return dict.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if not self._life.loaded:
            return f"<{type(self).__name__} (not loaded)>"
        return f"<{type(self).__name__} {dict.__repr__(self)}>"
