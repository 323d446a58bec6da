"""The session object a view sees as ``flask.session``.

It is a ``dict`` that reads its record from DynamoDB on first use, remembers what it read,
and at the end of the request writes only what changed. What each request costs:

* never touched: nothing, even with a session cookie;
* read: one GetItem (plus, at most once per refresh interval, one small UpdateItem that
  moves the idle expiry);
* changed: one GetItem and one conditional UpdateItem carrying only the changed keys;
* ``clear()``/``abandon()`` without reading first: one DeleteItem;
* ``regenerate()``: one GetItem, one PutItem and one conditional DeleteItem.

Binding the session to its user (see :mod:`.users`) rides on these same writes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Callable

from flask.sessions import SessionMixin

from . import codec, migration, users
from .changes import ChangeTracker, rebase
from .errors import SessionBackendError, UndecodableDataError
from .ids import SessionIds, loggable_id, storage_key
from .records import SessionRecord
from .settings import Settings
from .store import SessionStore
from .users import SessionInfo

logger = logging.getLogger("dynamodb_session_flask")

_MISSING = object()


@dataclass(frozen=True)
class SessionContext:
    """What a session needs from its application: settings, ids, the store and the clock
    (epoch seconds)."""

    settings: Settings
    ids: SessionIds
    store: SessionStore
    clock: Callable[[], float]


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

    #: Whether this request changed the session's data: through the dict interface, or
    #: inside a value (found when saving). It stays True after the save, as with Flask's
    #: session. Change detection does not depend on it: setting it is harmless and
    #: unnecessary.
    modified: bool

    def __init__(
        self,
        context: SessionContext | None = None,
        presented_id: str | None = None,
        *,
        failed_sid: str = "",
        user_agent: str | None = None,
    ) -> None:
        super().__init__()
        self._context = context
        #: The request's User-Agent, kept with the record if this request binds it.
        self._user_agent = user_agent
        #: The well-formed id the request carried; looked up on first use.
        self._presented_id = presented_id
        self._loaded = context is None or presented_id is None
        #: The id this session's data lives under (or will, once it has data).
        self._id: str | None = None
        #: The stored state as last read or written; ``None`` while nothing is stored.
        self._record: SessionRecord | None = None
        self._changes = ChangeTracker()
        #: Storage keys of records this request ended, deleted first thing on save.
        self._doomed: list[str] = []
        #: The record ``regenerate()`` moves to a new id, with the id it had.
        self._rotating: tuple[str, SessionRecord] | None = None
        #: Whether this request used the session at all (its response then varies by it).
        self._used = False
        #: Set once Flask runs the response's after-request hooks; an error raised from
        #: there would become a 500, so a failure is only recorded (see ``mark_responding``).
        self._responding = False
        self._unavailable: SessionBackendError | None = None
        self._save_failed = False
        #: Whether this request deleted the record the client's id pointed to.
        self._ended_client_record = False
        self._failed_sid = failed_sid
        self.modified = False

    # -- state ------------------------------------------------------------------------

    @property
    def session_id(self) -> str:
        """This session's id; a new session gets its id here, before it is stored."""
        if self._id is None:
            self._id = self._require_context().ids.generate()
        return self._id

    @property
    def failed_sid(self) -> str:
        self._ensure_loaded()
        return self._failed_sid

    @failed_sid.setter
    def failed_sid(self, value: str) -> None:
        self._failed_sid = value

    @property
    def new(self) -> bool:  # type: ignore[override]
        """True until the session is stored in DynamoDB."""
        self._ensure_loaded()
        return self._record is None

    @property
    def is_loaded(self) -> bool:
        """Whether the session's stored state is known (read, or known to be empty)."""
        return self._loaded

    @property
    def is_used(self) -> bool:
        """Whether this request used the session: read it, changed it, or ended it."""
        return self._used

    @property
    def client_had_id(self) -> bool:
        """Whether the request carried an id (valid or not): its cookie may need expiring."""
        return self._presented_id is not None or bool(self._failed_sid)

    @property
    def is_stored(self) -> bool:
        """Whether the session currently has a live record in the table."""
        return self._record is not None

    @property
    def ended_client_record(self) -> bool:
        """Whether this request deleted the record the client's id pointed to."""
        return self._ended_client_record

    @property
    def backend_error(self) -> SessionBackendError | None:
        """The DynamoDB failure that made this session unavailable, if one did."""
        return self._unavailable

    @property
    def created_at(self) -> float | None:
        """Epoch seconds at which the stored session was created, if it is stored.
        ``regenerate()`` keeps it: it is when the user's session began."""
        self._ensure_loaded()
        record = self._current_record()
        return None if record is None else record.created

    @property
    def expires_at(self) -> float | None:
        """Epoch seconds at which the stored session expires, if it is stored."""
        self._ensure_loaded()
        record = self._current_record()
        return None if record is None else record.expires_at

    def _current_record(self) -> SessionRecord | None:
        if self._record is None and self._rotating is not None:
            return self._rotating[1]
        return self._record

    def mark_responding(self) -> None:
        """Flask is finishing the response (after-request hooks such as Flask-Login's
        run now). A DynamoDB failure from here on is not raised, because Flask would turn
        it into a 500 with a traceback; the session is marked unavailable instead and
        ``save_session`` answers 503."""
        self._responding = True

    def _require_context(self) -> SessionContext:
        if self._context is None:
            raise RuntimeError("this session is not attached to a DynamoDbSession interface")
        return self._context

    def _ensure_loaded(self) -> None:
        self._used = True
        if self._loaded:
            return
        context = self._require_context()
        presented = self._presented_id
        assert presented is not None
        try:
            record = context.store.get(storage_key(presented))
            if record is None and context.settings.migrate_v1:
                moved = migration.migrate(context, presented, self._user_agent)
                if moved is not None:
                    presented, record = moved  # a new id: the old one was stored in clear
        except SessionBackendError as exc:
            self._become_unavailable(exc)
            return
        except UndecodableDataError as exc:
            self._replace_undecodable(presented, exc)
            return
        self._loaded = True
        if record is not None:
            settings = context.settings
            record = record.limited(settings.idle_timeout, settings.absolute_timeout)
        if record is None or context.clock() >= record.expires_at:
            # DynamoDB's TTL deletes expired items days late, if ever: never trust it.
            self._failed_sid = loggable_id(presented)
            logger.info("Session %s is unknown or expired", self._failed_sid[:16])
            return
        try:
            values = codec.decode_values(record.data)
        except UndecodableDataError as exc:
            self._replace_undecodable(presented, exc)
            return
        self._id = presented
        self._record = record
        self._changes.reset(record.data)
        dict.update(self, values)

    def _replace_undecodable(self, presented: str, exc: UndecodableDataError) -> None:
        """A stored session that cannot be read back is no session: this request gets a
        new one, and the old record is ended when the request is saved (before anything
        else is written), so the same failure does not repeat on every request."""
        self._loaded = True
        self._failed_sid = loggable_id(presented)
        logger.error(
            "Session %s cannot be read back (%s); it is ended and a new session begins",
            self._failed_sid[:16],
            exc,
        )
        self._doomed.append(storage_key(presented))

    def _become_unavailable(self, exc: SessionBackendError) -> None:
        """DynamoDB failed this session: it stays empty and unsaved for the rest of the
        request, and the failure is raised unless the response is being finished."""
        self._unavailable = exc
        self._loaded = True
        self._record = None
        self._rotating = None
        self._doomed.clear()
        dict.clear(self)
        self._changes.forget()
        if not self._responding:
            raise exc

    def _forget_everything(self) -> None:
        """Nothing is stored for this session any more, and it holds nothing."""
        self._record = None
        self._id = None
        self._rotating = None
        dict.clear(self)
        self._changes.forget()
        self.modified = True

    def _client_record_keys(self) -> list[str]:
        """Keys of the records this session stands for, found without reading when
        possible: the loaded (or not yet loaded) record and one being rotated away."""
        keys = []
        if self._record is not None:
            keys.append(storage_key(self.session_id))
        elif not self._loaded and self._presented_id is not None:
            keys.append(storage_key(self._presented_id))
        if self._rotating is not None:
            keys.append(storage_key(self._rotating[0]))
        return keys

    # -- the extra methods ------------------------------------------------------------

    def clear(self) -> None:
        """Empty the session. When the request ends, its record is deleted (before anything
        else is written, so the logout holds even if the rest of the save fails) and the
        cookie expired; data added after ``clear()`` is saved under a new id."""
        self._used = True
        self._doomed.extend(self._client_record_keys())
        self._loaded = True
        self._forget_everything()

    def abandon(self) -> None:
        """Immediately remove the session from the database (one DeleteItem) and empty it."""
        self._used = True
        keys = self._client_record_keys()
        try:
            for key in keys:
                self._require_context().store.delete(key)
        except SessionBackendError as exc:
            self._become_unavailable(exc)
            return
        self._doomed = [key for key in self._doomed if key not in keys]
        self._ended_client_record = self._ended_client_record or bool(keys)
        self._loaded = True
        self._forget_everything()

    def create(self) -> None:
        """Start a new, empty session with a new id. The old record is not removed."""
        self._used = True
        self._loaded = True
        self._forget_everything()

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
        self._ensure_loaded()
        if self._record is not None:
            self._rotating = (self.session_id, self._record)
            self._record = None
        self._id = None
        self.modified = True

    def save(self) -> None:
        """Save the session now rather than at the end of the request. Later changes in the
        same request are saved as a further delta.

        Records this request ended are deleted first: if saving the new data then fails
        (a value that cannot be serialized, a session too large, DynamoDB failing), the
        ended session stays ended.
        """
        if not self._loaded or self._unavailable is not None or self._save_failed:
            return
        context = self._require_context()
        now = context.clock()
        try:
            self._end_doomed(context)
            if self._rotating is not None:
                self._rotate(context, now)
            elif self._record is None:
                if dict.__len__(self) and not self._create_record(
                    context, now, self._changes.current(dict.copy(self))
                ):
                    self._forget_everything()
            else:
                self._update_record(context, now)
        except SessionBackendError as exc:
            self._become_unavailable(exc)
        except BaseException:
            # Flask answers 500 and calls save_session again for that response: do not
            # retry the failing save, only send the cookie the outcome calls for.
            self._save_failed = True
            raise

    def _end_doomed(self, context: SessionContext) -> None:
        while self._doomed:
            context.store.delete(self._doomed[0])
            self._doomed.pop(0)
            self._ended_client_record = True

    def _rotate(self, context: SessionContext, now: float) -> None:
        """Move the session to its new id: create the new record, then end the old one.

        In that order the session's handle is never absent from the table, so an ending
        of the user's sessions (which follows a handle whose record vanished to where it
        went, see :func:`.users.end_sessions`) always finds it. The old record is ended by
        a delete that only succeeds while it is live and returns what it held: when a
        logout or an ending won the race, the new record is deleted again; when other
        requests changed keys meanwhile, their changes are written onto the new record
        (one more UpdateItem, only then).
        """
        assert self._rotating is not None
        old_id, loaded = self._rotating
        old_key = storage_key(old_id)
        baseline = self._changes.baseline
        try:
            ours = self._changes.current(dict.copy(self))
            if ours and not self._create_record(context, now, ours, origin=loaded):
                self._record = None
        except BaseException:
            # Fail closed: whatever kept the new record from being stored, the old id
            # dies with this request (the response carries no live id either).
            self._rotating = None
            self._ended_client_record = True
            context.store.delete(old_key)
            raise
        held = context.store.end_live(old_key, loaded, now)
        self._rotating = None
        self._ended_client_record = True
        if held is None or (ours and self._record is None):
            logger.info(
                "Session %s ended by another request or expired before it could be moved to "
                "a new id; its data is dropped",
                loggable_id(old_id)[:16],
            )
            if self._record is not None:
                context.store.delete(storage_key(self.session_id))
            self._forget_everything()
            return
        settings = context.settings
        held = held.limited(settings.idle_timeout, settings.absolute_timeout)
        data = rebase(baseline, ours, held.data)
        # What other requests changed meanwhile is now this session's too.
        for key in list(dict.keys(self)):
            if key not in data:
                dict.__delitem__(self, key)
        for key, text in data.items():
            if ours.get(key) != text:
                dict.__setitem__(self, key, codec.decode_value(text))
        if data == ours:
            if not data:
                self._forget_everything()
            return
        record = self._record
        if record is None:
            # This request emptied the session but others added keys: store those.
            if not self._create_record(context, now, data, origin=held):
                self._forget_everything()
            return
        key = storage_key(self.session_id)
        if not data:
            context.store.delete(key)
            self._forget_everything()
            return
        binding = users.binding_for(context.settings, data, record.binding, self._user_agent)
        after = record.rewritten(now, data, binding)
        if context.store.update(key, ours, after, binding_before=record.binding):
            self._record = after
            self._mark_saved(data)
        else:
            # Ended (say, by an ending of the user's sessions) since it was created.
            self._forget_everything()

    def _create_record(
        self,
        context: SessionContext,
        now: float,
        data: Mapping[str, str],
        origin: SessionRecord | None = None,
    ) -> bool:
        """Store ``data`` under this session's id; a rotated session keeps its origin's
        creation time and timeouts, and, while it names the same user, its binding (the
        device keeps its handle).

        :returns: ``False`` when the new record was ended by another request before this
            one could confirm its write (nothing is stored for this session then).
        """
        settings = context.settings
        key = settings.user_id_key
        binding = users.binding_for(
            settings,
            data,
            None if origin is None else origin.binding,
            self._user_agent,
            # A user id that cannot bind is worth one warning, not one per rotation.
            warn=origin is None or data.get(key) != origin.data.get(key),
        )
        if origin is None:
            record = SessionRecord(
                now, now, settings.idle_timeout, settings.absolute_timeout, data, binding
            )
        else:
            record = SessionRecord(
                origin.created, now, origin.idle_timeout, origin.absolute_timeout, data, binding
            )
        if not context.store.create(storage_key(self.session_id), record):
            return False
        self._record = record
        self._mark_saved(data)
        return True

    def _update_record(self, context: SessionContext, now: float) -> None:
        record = self._record
        assert record is not None
        data = self._changes.current(dict.copy(self))
        key = storage_key(self.session_id)
        if not data:
            # Emptied key by key: like Flask, an empty session is no session.
            context.store.delete(key)
            self._ended_client_record = True
            self._forget_everything()
            return
        refresh_due = now - record.refreshed >= context.settings.refresh_interval
        if data == self._changes.baseline and not refresh_due:
            self._mark_saved(data)
            return
        user_key = context.settings.user_id_key
        binding = users.binding_for(
            context.settings,
            data,
            record.binding,
            self._user_agent,
            warn=data.get(user_key) != self._changes.baseline.get(user_key),
        )
        after = record.rewritten(now, data, binding)
        if context.store.update(key, self._changes.baseline, after, binding_before=record.binding):
            self._record = after
            self._mark_saved(data)
        else:
            logger.info(
                "Session %s ended by another request or expired; changes dropped",
                loggable_id(self.session_id)[:16],
            )
            self._forget_everything()

    def _mark_saved(self, data: Mapping[str, str]) -> None:
        # Like Flask's own, ``modified`` stays True for the rest of the request (a
        # teardown hook or a test reads it after the save), and a change found inside a
        # value counts too.
        if data != self._changes.baseline:
            self.modified = True
        self._changes.reset(data)

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
        return users.list_sessions(self._require_context(), user_id, current_key=self._own_key())

    def end_other_sessions(self) -> int:
        """End every other live session of this session's user and return how many were
        ended: the call to make after a password change (ASVS 3.3.3). Only this
        session's own record is kept (with a ``regenerate()`` under way, the record being
        moved); ``0`` without a user.

        Sessions being moved to a new id meanwhile are followed to it, so none escapes by
        rotating. Another record carrying this session's handle is a copy of this session
        that someone else moved away (a stolen id used to call ``regenerate()``): it is
        ended, and so is this session (fail closed: its id is known to someone else).

        Costs one Query on the per-user index and one conditional DeleteItem per other
        session, plus one Query per session that was moved away under the ending.
        Requests of the ended sessions already in flight cannot bring them back; a session
        bound within the last second or so may be missed (the index is eventually
        consistent).

        :raises UserIndexMissingError: when the table has no per-user index.
        """
        user_id = self._bound_user()
        if user_id is None:
            return 0
        outcome = users.end_sessions(
            self._require_context(),
            user_id,
            keep_key=self._own_key(),
            own_handle=self._own_handle(user_id),
        )
        if outcome.own_copy_ended:
            logger.warning(
                "Session %s: another holder of its id moved it to a new id; both are ended",
                loggable_id(self._current_id())[:16],
            )
            self.clear()
        return outcome.ended

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
        if handle == self._own_handle(user_id):
            self.abandon()
            return True
        return users.end_session(self._require_context(), user_id, handle)

    def _bound_user(self) -> str | None:
        """The user id this session's data names now, loading it first."""
        self._ensure_loaded()
        if self._unavailable is not None:
            # Never answer "no user" for a session DynamoDB could not load.
            raise self._unavailable
        key = self._require_context().settings.user_id_key
        return users.user_id_of(dict.get(self, key))

    def _own_key(self) -> str | None:
        """The storage key of this session's record in the table, if it has one: the
        loaded record's, or, while ``regenerate()`` is pending, the one being moved."""
        if self._record is not None:
            return storage_key(self.session_id)
        if self._rotating is not None:
            return storage_key(self._rotating[0])
        return None

    def _current_id(self) -> str:
        """The id of the record this session stands for now (the one being moved, while
        ``regenerate()`` is pending)."""
        if self._record is None and self._rotating is not None:
            return self._rotating[0]
        return self.session_id

    def _own_handle(self, user_id: str) -> str | None:
        """This session's handle, if its stored record is bound to ``user_id``."""
        record = self._current_record()
        binding = None if record is None else record.binding
        return binding.handle if binding is not None and binding.user_id == user_id else None

    # -- dict interface: load first, track changes ---------------------------------------

    def _hand_out(self, key: str) -> Any:
        value = dict.__getitem__(self, key)
        self._changes.handed_out(key, value)
        return value

    def _hand_out_all(self) -> None:
        for key in dict.keys(self):
            self._hand_out(key)

    def __getitem__(self, key: str) -> Any:
        self._ensure_loaded()
        return self._hand_out(key)

    def get(self, key: str, default: Any = None) -> Any:
        self._ensure_loaded()
        return self._hand_out(key) if dict.__contains__(self, key) else default

    def __setitem__(self, key: str, value: Any) -> None:
        self._ensure_loaded()
        codec.check_key(key)
        dict.__setitem__(self, key, value)
        self._changes.assigned(key)
        self.modified = True

    def __delitem__(self, key: str) -> None:
        self._ensure_loaded()
        dict.__delitem__(self, key)
        self.modified = True

    def setdefault(self, key: str, default: Any = None) -> Any:
        self._ensure_loaded()
        if key not in self:
            self[key] = default
        return self[key]

    def pop(self, key: str, default: Any = _MISSING) -> Any:
        self._ensure_loaded()
        if dict.__contains__(self, key):
            self.modified = True
            return dict.pop(self, key)
        if default is _MISSING:
            raise KeyError(key)
        return default

    def popitem(self) -> tuple[str, Any]:
        self._ensure_loaded()
        item = dict.popitem(self)
        self.modified = True
        return item

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._ensure_loaded()
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
        self._ensure_loaded()
        return dict.__contains__(self, key)

    def __iter__(self) -> Iterator[str]:
        self._ensure_loaded()
        return dict.__iter__(self)

    def __reversed__(self) -> Iterator[str]:
        self._ensure_loaded()
        return dict.__reversed__(self)

    def __len__(self) -> int:
        self._ensure_loaded()
        return dict.__len__(self)

    def keys(self) -> Any:
        self._ensure_loaded()
        return dict.keys(self)

    def values(self) -> Any:
        self._ensure_loaded()
        self._hand_out_all()
        return dict.values(self)

    def items(self) -> Any:
        self._ensure_loaded()
        self._hand_out_all()
        return dict.items(self)

    def copy(self) -> dict[str, Any]:
        self._ensure_loaded()
        self._hand_out_all()
        return dict.copy(self)

    def __eq__(self, other: object) -> bool:
        self._ensure_loaded()
        return dict.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if not self._loaded:
            return f"<{type(self).__name__} (not loaded)>"
        return f"<{type(self).__name__} {dict.__repr__(self)}>"
