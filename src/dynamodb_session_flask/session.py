"""The session object a view sees as ``flask.session``.

It is a ``dict`` that reads its record from DynamoDB on first use, remembers what it read,
and at the end of the request writes only what changed. What each request costs:

* never touched: nothing, even with a session cookie;
* read: one GetItem (plus, at most once per refresh interval, one small UpdateItem that
  moves the idle expiry);
* changed: one GetItem and one conditional UpdateItem carrying only the changed keys;
* ``clear()``/``abandon()`` without reading first: one DeleteItem.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Callable

from flask.sessions import SessionMixin

from . import codec
from .changes import ChangeTracker
from .ids import SessionIds, loggable_id, storage_key
from .settings import Settings
from .store import SessionRecord, SessionStore

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
    plus :meth:`abandon`, :meth:`create`, :meth:`save` and :meth:`regenerate`. Nested
    mutations such as ``session["cart"].append(item)`` are saved without setting
    ``modified``: values that could have changed are compared with what was loaded, and
    only the keys that differ are written.

    ``failed_sid`` is the loggable hash (hex SHA-512) of an id the request presented that
    was malformed, forged, unknown or expired, and ``""`` otherwise.
    """

    #: Set when the session's data is changed through the dict interface. Change detection
    #: does not depend on it: setting it is harmless and unnecessary.
    modified: bool

    def __init__(
        self,
        context: SessionContext | None = None,
        presented_id: str | None = None,
        *,
        failed_sid: str = "",
    ) -> None:
        super().__init__()
        self._context = context
        #: The well-formed id the request carried; looked up on first use.
        self._presented_id = presented_id
        self._loaded = context is None or presented_id is None
        #: The id this session's data lives under (or will, once it has data).
        self._id: str | None = None
        #: The stored state as last read or written; ``None`` while nothing is stored.
        self._record: SessionRecord | None = None
        self._changes = ChangeTracker()
        #: Storage keys of records this request ended, deleted when the session is saved.
        self._doomed: list[str] = []
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
        """Whether this request has used the session (and so may have to save it)."""
        return self._loaded

    @property
    def client_had_id(self) -> bool:
        """Whether the request carried an id (valid or not): its cookie may need expiring."""
        return self._presented_id is not None or bool(self._failed_sid)

    @property
    def is_stored(self) -> bool:
        """Whether the session currently has a live record in the table."""
        return self._record is not None

    @property
    def created_at(self) -> float | None:
        """Epoch seconds at which the stored session was created, if it is stored."""
        return None if self._record is None else self._record.created

    @property
    def expires_at(self) -> float | None:
        """Epoch seconds at which the stored session expires, if it is stored."""
        return None if self._record is None else self._record.expires_at

    def _require_context(self) -> SessionContext:
        if self._context is None:
            raise RuntimeError("this session is not attached to a DynamoDbSession interface")
        return self._context

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        context = self._require_context()
        presented = self._presented_id
        assert presented is not None
        record = context.store.get(storage_key(presented))
        # Only mark loaded once the read succeeded: after a backend error the session must
        # not pass for an empty one.
        self._loaded = True
        if record is None or context.clock() >= record.expires_at:
            # DynamoDB's TTL deletes expired items days late, if ever: never trust it.
            self._failed_sid = loggable_id(presented)
            logger.info("Session %s is unknown or expired", self._failed_sid[:16])
            return
        self._id = presented
        self._record = record
        self._changes.reset(record.data)
        for key, text in record.data.items():
            dict.__setitem__(self, key, codec.decode_value(text))

    def _drop_data(self) -> None:
        dict.clear(self)
        self._changes.forget()
        self.modified = True

    def _storage_key_of_client_session(self) -> str | None:
        """Key of the record the client's id points to, without reading it when possible."""
        if self._record is not None:
            return storage_key(self.session_id)
        if not self._loaded and self._presented_id is not None:
            return storage_key(self._presented_id)
        return None

    # -- the extra methods ------------------------------------------------------------

    def clear(self) -> None:
        """Empty the session. When the request ends, its record is deleted and the cookie
        expired; data added after ``clear()`` is saved under a new id."""
        key = self._storage_key_of_client_session()
        if key is not None:
            self._doomed.append(key)
        self._loaded = True
        self._record = None
        self._id = None
        self._drop_data()

    def abandon(self) -> None:
        """Immediately remove the session from the database (one DeleteItem) and empty it."""
        key = self._storage_key_of_client_session()
        if key is not None:
            self._require_context().store.delete(key)
            if key in self._doomed:
                self._doomed.remove(key)
        self._loaded = True
        self._record = None
        self._id = None
        self._drop_data()

    def create(self) -> None:
        """Start a new, empty session with a new id. The old record is not removed."""
        self._loaded = True
        self._record = None
        self._id = None
        self._drop_data()

    def regenerate(self) -> None:
        """Keep the data but move it to a new id, deleting the old record when the session
        is saved: call it when privileges change, e.g. at login, against fixation."""
        self._ensure_loaded()
        if self._record is not None:
            self._doomed.append(storage_key(self.session_id))
        self._record = None
        self._id = None
        # Everything is written anew under the new id.
        self._changes.reset({})
        for key in dict.keys(self):
            self._changes.assigned(key)
        self.modified = True

    def save(self) -> None:
        """Save the session now rather than at the end of the request. Later changes in the
        same request are saved as a further delta."""
        if not self._loaded:
            return
        context = self._require_context()
        now = context.clock()
        if self._record is None:
            if dict.__len__(self):
                self._create_record(context, now)
        else:
            self._update_record(context, now)
        for key in self._doomed:
            context.store.delete(key)
        self._doomed.clear()

    def _create_record(self, context: SessionContext, now: float) -> None:
        settings = context.settings
        data = self._changes.current(dict.copy(self))
        record = SessionRecord(now, now, settings.idle_timeout, settings.absolute_timeout, data)
        context.store.create(storage_key(self.session_id), record)
        self._record = record
        self._mark_saved(data)

    def _update_record(self, context: SessionContext, now: float) -> None:
        record = self._record
        assert record is not None
        data = self._changes.current(dict.copy(self))
        key = storage_key(self.session_id)
        if not data:
            # Emptied key by key: like Flask, an empty session is no session.
            self._doomed.append(key)
            self._record = None
            self._id = None
            self._changes.forget()
            return
        refresh_due = now - record.refreshed >= context.settings.refresh_interval
        if data == self._changes.baseline and not refresh_due:
            self._mark_saved(data)
            return
        after = record.rewritten(now, data)
        if context.store.update(key, self._changes.baseline, after):
            self._record = after
            self._mark_saved(data)
        else:
            logger.info(
                "Session %s ended by another request; changes dropped",
                loggable_id(self.session_id)[:16],
            )
            self._record = None
            self._id = None
            dict.clear(self)
            self._changes.forget()

    def _mark_saved(self, data: Mapping[str, str]) -> None:
        self._changes.reset(data)
        self.modified = False

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
