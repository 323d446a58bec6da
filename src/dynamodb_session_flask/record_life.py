"""What happens to a request's record, in the order a request meets it: load on first
use, then, when the request is saved, end what the request ended, and move (rotate),
create or update the record; and what happens when DynamoDB fails on the way.

:class:`RecordLife` owns that state for one request. The dict a view sees
(:class:`.session.DynamoDbSessionInstance`) holds the values; this module reads and writes
them with ``dict``'s own methods, so nothing here triggers a load or marks a change.

What each request costs:

* never touched: nothing, even with a session cookie;
* read: one GetItem (plus, at most once per refresh interval, one small UpdateItem that
  moves the idle expiry);
* changed: one GetItem and one conditional UpdateItem carrying only the changed keys;
* ``clear()``/``abandon()`` without reading first: one DeleteItem;
* ``regenerate()``: one GetItem, one PutItem and one conditional DeleteItem.

Binding the session to its user (see :mod:`.users`) rides on these same writes. Every
conditional write and the guarantee it carries is listed in ARCHITECTURE.md.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from . import codec, migration, rotation, users
from .changes import ChangeTracker
from .context import SessionContext
from .errors import SessionBackendError, UndecodableDataError
from .ids import loggable_id, storage_key
from .records import SessionRecord

logger = logging.getLogger("dynamodb_session_flask")


class RecordLife:
    """One request's view of its session record.

    :param values: the session's values (the dict the view sees), written only with
        ``dict``'s own methods.
    :param context: the application's settings, ids, store and clock; ``None`` for a
        session not attached to an interface (it can hold values, never be stored).
    :param presented_id: the well-formed id the request carried; looked up on first use.
    :param failed_sid: the loggable id of a malformed or forged id the request carried.
    :param user_agent: the request's User-Agent, kept with the record if this request
        binds it to a user.
    """

    def __init__(
        self,
        values: dict[str, Any],
        context: SessionContext | None,
        presented_id: str | None,
        *,
        failed_sid: str = "",
        user_agent: str | None = None,
    ) -> None:
        self.values = values
        self._context = context
        self.user_agent = user_agent
        self.presented_id = presented_id
        self.loaded = context is None or presented_id is None
        #: The id this session's data lives under (or will, once it has data).
        self.id: str | None = None
        #: The stored state as last read or written; ``None`` while nothing is stored.
        self.record: SessionRecord | None = None
        self.changes = ChangeTracker()
        #: Storage keys of records this request ended, deleted first thing on save.
        self.doomed: list[str] = []
        #: The record ``regenerate()`` moves to a new id, with the id it had.
        self.rotating: tuple[str, SessionRecord] | None = None
        #: Whether this request used the session at all (its response then varies by it).
        self.used = False
        #: Set once Flask runs the response's after-request hooks; an error raised from
        #: there would become a 500, so a failure is only recorded.
        self.responding = False
        self.unavailable: SessionBackendError | None = None
        self.save_failed = False
        #: Whether this request deleted the record the client's id pointed to.
        self.ended_client_record = False
        self.failed_sid = failed_sid
        #: Whether this request changed the data (see the session's ``modified``).
        self.modified = False

    @property
    def context(self) -> SessionContext:
        if self._context is None:
            raise RuntimeError("this session is not attached to a DynamoDbSession interface")
        return self._context

    @property
    def session_id(self) -> str:
        """This session's id; a new session gets its id here, before it is stored."""
        if self.id is None:
            self.id = self.context.ids.generate()
        return self.id

    def current_record(self) -> SessionRecord | None:
        """The record this session stands for: the stored one, or the one being moved."""
        if self.record is None and self.rotating is not None:
            return self.rotating[1]
        return self.record

    def snapshot(self) -> dict[str, Any]:
        """The values as they are, read without the session's own accessors (which would
        mark every value as handed out, and so as possibly changed)."""
        return dict(dict.items(self.values))

    # -- load: on first use -------------------------------------------------------------

    def ensure_loaded(self) -> None:
        self.used = True
        if self.loaded:
            return
        context = self.context
        presented = self.presented_id
        assert presented is not None
        try:
            record = context.store.get(storage_key(presented))
            if record is None and context.settings.migrate_v1:
                moved = migration.migrate(context, presented, self.user_agent)
                if moved is not None:
                    presented, record = moved  # a new id: the old one was stored in clear
        except SessionBackendError as exc:
            self.become_unavailable(exc)
            return
        except UndecodableDataError as exc:
            self._replace_undecodable(presented, exc)
            return
        self.loaded = True
        if record is not None:
            settings = context.settings
            record = record.limited(settings.idle_timeout, settings.absolute_timeout)
        if record is None or context.clock() >= record.expires_at:
            # DynamoDB's TTL deletes expired items days late, if ever: never trust it.
            self.failed_sid = loggable_id(presented)
            logger.info("Session %s is unknown or expired", self.failed_sid[:16])
            return
        try:
            values = codec.decode_values(record.data)
        except UndecodableDataError as exc:
            self._replace_undecodable(presented, exc)
            return
        self.id = presented
        self.record = record
        self.changes.reset(record.data)
        dict.update(self.values, values)

    def _replace_undecodable(self, presented: str, exc: UndecodableDataError) -> None:
        """A stored session that cannot be read back is no session: this request gets a
        new one, and the old record is ended when the request is saved (before anything
        else is written), so the same failure does not repeat on every request."""
        self.loaded = True
        self.failed_sid = loggable_id(presented)
        logger.error(
            "Session %s cannot be read back (%s); it is ended and a new session begins",
            self.failed_sid[:16],
            exc,
        )
        self.doomed.append(storage_key(presented))

    def become_unavailable(self, exc: SessionBackendError) -> None:
        """DynamoDB failed this session: it stays empty and unsaved for the rest of the
        request, and the failure is raised unless the response is being finished."""
        self.unavailable = exc
        self.loaded = True
        self.record = None
        self.rotating = None
        self.doomed.clear()
        dict.clear(self.values)
        self.changes.forget()
        if not self.responding:
            raise exc

    def forget_everything(self) -> None:
        """Nothing is stored for this session any more, and it holds nothing."""
        self.record = None
        self.id = None
        self.rotating = None
        dict.clear(self.values)
        self.changes.forget()
        self.modified = True

    # -- what a view asks for: end, abandon, start afresh, move -----------------------

    def client_record_keys(self) -> list[str]:
        """Keys of the records this session stands for, found without reading when
        possible: the loaded (or not yet loaded) record and one being rotated away."""
        keys = []
        if self.record is not None:
            keys.append(storage_key(self.session_id))
        elif not self.loaded and self.presented_id is not None:
            keys.append(storage_key(self.presented_id))
        if self.rotating is not None:
            keys.append(storage_key(self.rotating[0]))
        return keys

    def clear(self) -> None:
        self.used = True
        self.doomed.extend(self.client_record_keys())
        self.loaded = True
        self.forget_everything()

    def abandon(self) -> None:
        self.used = True
        keys = self.client_record_keys()
        try:
            for key in keys:
                self.context.store.delete(key)
        except SessionBackendError as exc:
            self.become_unavailable(exc)
            return
        self.doomed = [key for key in self.doomed if key not in keys]
        self.ended_client_record = self.ended_client_record or bool(keys)
        self.loaded = True
        self.forget_everything()

    def create(self) -> None:
        self.used = True
        self.loaded = True
        self.forget_everything()

    def regenerate(self) -> None:
        self.ensure_loaded()
        if self.record is not None:
            self.rotating = (self.session_id, self.record)
            self.record = None
        self.id = None
        self.modified = True

    # -- save: at the end of the request, or when the view asks -------------------------

    def save(self) -> None:
        """Records this request ended are deleted first: if saving the new data then fails
        (a value that cannot be serialized, a session too large, DynamoDB failing), the
        ended session stays ended."""
        if not self.loaded or self.unavailable is not None or self.save_failed:
            return
        context = self.context
        now = context.clock()
        try:
            self._end_doomed(context)
            if self.rotating is not None:
                rotation.rotate(self, context, now)
            elif self.record is None:
                if dict.__len__(self.values) and not self.create_record(
                    context, now, self.changes.current(self.snapshot())
                ):
                    self.forget_everything()
            else:
                self._update_record(context, now)
        except SessionBackendError as exc:
            self.become_unavailable(exc)
        except BaseException:
            # Flask answers 500 and calls save_session again for that response: do not
            # retry the failing save, only send the cookie the outcome calls for.
            self.save_failed = True
            raise

    def _end_doomed(self, context: SessionContext) -> None:
        while self.doomed:
            context.store.delete(self.doomed[0])
            self.doomed.pop(0)
            self.ended_client_record = True

    def create_record(
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
            self.user_agent,
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
        self.record = record
        self.mark_saved(data)
        return True

    def _update_record(self, context: SessionContext, now: float) -> None:
        record = self.record
        assert record is not None
        data = self.changes.current(self.snapshot())
        key = storage_key(self.session_id)
        if not data:
            # Emptied key by key: like Flask, an empty session is no session.
            context.store.delete(key)
            self.ended_client_record = True
            self.forget_everything()
            return
        refresh_due = now - record.refreshed >= context.settings.refresh_interval
        if data == self.changes.baseline and not refresh_due:
            self.mark_saved(data)
            return
        user_key = context.settings.user_id_key
        binding = users.binding_for(
            context.settings,
            data,
            record.binding,
            self.user_agent,
            warn=data.get(user_key) != self.changes.baseline.get(user_key),
        )
        after = record.rewritten(now, data, binding)
        if context.store.update(key, self.changes.baseline, after, binding_before=record.binding):
            self.record = after
            self.mark_saved(data)
        else:
            logger.info(
                "Session %s ended by another request or expired; changes dropped",
                loggable_id(self.session_id)[:16],
            )
            self.forget_everything()

    def mark_saved(self, data: Mapping[str, str]) -> None:
        # Like Flask's own, ``modified`` stays True for the rest of the request (a
        # teardown hook or a test reads it after the save), and a change found inside a
        # value counts too.
        if data != self.changes.baseline:
            self.modified = True
        self.changes.reset(data)

    # -- the record, as the per-user calls see it -----------------------------------------

    def own_key(self) -> str | None:
        """The storage key of this session's record in the table, if it has one: the
        loaded record's, or, while ``regenerate()`` is pending, the one being moved."""
        if self.record is not None:
            return storage_key(self.session_id)
        if self.rotating is not None:
            return storage_key(self.rotating[0])
        return None

    def hold_against_copies(self) -> bool:
        """Make sure no other holder of this session's id can move its record to a new id
        from now on (the move is what would let a stolen copy escape an ending under this
        session's handle): a move this request has pending is made now, else the record
        is fenced (one UpdateItem). ``False`` when the record was moved or ended by
        another request meanwhile."""
        if self.rotating is not None:
            self.save()
            return self.record is not None
        if self.record is None:
            return True  # nothing stored yet: nothing anyone could move
        context = self.context
        fence = context.store.fence(storage_key(self.session_id), self.record, context.clock())
        if fence is None:
            return False
        self.record = replace(self.record, fence=fence)
        return True

    def current_id(self) -> str:
        """The id of the record this session stands for now (the one being moved, while
        ``regenerate()`` is pending)."""
        if self.record is None and self.rotating is not None:
            return self.rotating[0]
        return self.session_id

    def own_handle(self, user_id: str) -> str | None:
        """This session's handle, if its stored record is bound to ``user_id``."""
        record = self.current_record()
        binding = None if record is None else record.binding
        return binding.handle if binding is not None and binding.user_id == user_id else None
