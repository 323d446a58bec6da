"""Moving a session to a new id (``regenerate()``), as the request's save makes it: create
the new record, then end the old one, and write onto the new record what other requests
changed meanwhile. Why in this order, and what each outcome means, is in ARCHITECTURE.md
("Rotation").
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from . import codec, users
from .changes import rebase
from .errors import SessionBackendError
from .ids import loggable_id, storage_key
from .records import SessionRecord

if TYPE_CHECKING:
    from .context import SessionContext
    from .record_life import RecordLife

logger = logging.getLogger("dynamodb_session_flask")


def rotate(life: RecordLife, context: SessionContext, now: float) -> None:
    """Move the session to its new id: create the new record, then end the old one.

    In that order the session's handle is never absent from the table, so an ending
    of the user's sessions (which follows a handle whose record vanished to where it
    went, see :func:`.users.end_sessions`) always finds it. The old record is ended by
    a delete that only succeeds while it is live and returns what it held: when a
    logout or an ending won the race, the new record is deleted again; when other
    requests changed keys meanwhile, their changes are written onto the new record
    (one more UpdateItem, only then).
    """
    assert life.rotating is not None
    old_id, loaded = life.rotating
    old_key = storage_key(old_id)
    baseline = life.changes.baseline
    try:
        ours = life.changes.current(life.snapshot())
        if ours and not life.create_record(context, now, ours, origin=loaded):
            life.record = None
    except BaseException:
        # Fail closed: whatever kept the new record from being stored, the old id
        # dies with this request (the response carries no live id either).
        life.rotating = None
        life.ended_client_record = True
        context.store.delete(old_key)
        raise
    try:
        held = context.store.end_live(old_key, loaded, now)
    except SessionBackendError:
        # The old record's fate is unknown, and the client will not hear of the new
        # one (the answer is a 503): it must not stay live under the same handle.
        if life.record is not None:
            context.store.delete_quietly(storage_key(life.session_id))
        raise
    life.rotating = None
    life.ended_client_record = True
    if held is None or (ours and life.record is None):
        logger.info(
            "Session %s ended by another request or expired before it could be moved to "
            "a new id; its data is dropped",
            loggable_id(old_id)[:16],
        )
        if life.record is not None:
            context.store.delete(storage_key(life.session_id))
        life.forget_everything()
        return
    settings = context.settings
    held = held.limited(settings.idle_timeout, settings.absolute_timeout)
    data = rebase(baseline, ours, held.data)
    # What other requests changed meanwhile is now this session's too.
    for key in list(dict.keys(life.values)):
        if key not in data:
            dict.__delitem__(life.values, key)
    for key, text in data.items():
        if ours.get(key) != text:
            dict.__setitem__(life.values, key, codec.decode_value(text))
    if data == ours:
        if not data:
            life.forget_everything()
        return
    _write_rebased(life, context, now, ours, data, held)


def _write_rebased(
    life: RecordLife,
    context: SessionContext,
    now: float,
    ours: Mapping[str, str],
    data: Mapping[str, str],
    held: SessionRecord,
) -> None:
    """Bring the new record from ``ours`` (what it was created with) to ``data`` (with
    what other requests changed meanwhile)."""
    record = life.record
    if record is None:
        # This request emptied the session but others added keys: store those.
        if not life.create_record(context, now, data, origin=held):
            life.forget_everything()
        return
    key = storage_key(life.session_id)
    if not data:
        context.store.delete(key)
        life.forget_everything()
        return
    binding = users.binding_for(context.settings, data, record.binding, life.user_agent)
    after = record.rewritten(now, data, binding)
    if context.store.update(key, ours, after, binding_before=record.binding):
        life.record = after
        life.mark_saved(data)
    else:
        # Ended (say, by an ending of the user's sessions) since it was created.
        life.forget_everything()
