"""Which session values may differ from what is stored, found without re-serializing the
ones that did not change.

A value can only change in two ways: it is assigned (``session[k] = v``), or a mutable
value the session handed out (``session[k].append(x)``) is changed in place. Only those
keys are suspects. A value handed out while it still is what its stored text says gets a
snapshot in marshal's format: C speed, and exact about types (a tuple is not a list, and
``Markup`` or any other subclass is refused). At save time a suspect whose snapshot still
matches is unchanged; any other is checked against its stored text with one C-speed JSON
encoding and a walk over its types, and fully serialized only when that cannot vouch for
it. A request that merely reads a large nested value therefore pays two marshal dumps
(a fifth to a half of one JSON encoding of it), not a serialization.
"""

from __future__ import annotations

import marshal
from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID

from markupsafe import Markup

from . import codec

# Values of these types cannot be changed in place.
_IMMUTABLE = (str, bytes, int, float, bool, type(None), datetime, date, time, UUID, Decimal, Markup)


#: marshal's format 4: equal bytes always load as equal values of the same types. Its
#: back-references follow reference counts, so a value the application still holds parts
#: of may dump differently while unchanged: that only sends it to the slower comparison.
_SNAPSHOT_FORMAT = 4


def _snapshot(value: Any) -> bytes | None:
    try:
        return marshal.dumps(value, _SNAPSHOT_FORMAT)
    except ValueError:
        # A type marshal does not take (Markup, datetime, ...) or nesting too deep: such
        # a value is compared the slower way.
        return None


def is_immutable(value: Any) -> bool:
    if type(value) in _IMMUTABLE:
        return True
    return type(value) is tuple and all(is_immutable(item) for item in value)


class ChangeTracker:
    """The serialized state of a session as last read or written, and the keys whose value
    may differ from it."""

    def __init__(self) -> None:
        #: Serialized values as last read or written: the base of the next delta.
        self.baseline: Mapping[str, str] = {}
        #: Keys assigned, or holding a mutable value the caller may have a reference to.
        #: Kept across saves: a reference handed out before ``save()`` can change after it.
        self._suspects: set[str] = set()
        #: Snapshots of handed-out values taken while they matched their stored text.
        self._snapshots: dict[str, bytes] = {}

    def reset(self, baseline: Mapping[str, str]) -> None:
        """``baseline`` is what the table holds now."""
        # A snapshot stands for its key's stored text: one whose text was just rewritten
        # may describe a value that no longer matches it.
        self._snapshots = {
            key: snapshot
            for key, snapshot in self._snapshots.items()
            if key in baseline and baseline[key] == self.baseline.get(key)
        }
        self.baseline = baseline

    def forget(self) -> None:
        """Nothing is stored any more (cleared, abandoned or ended elsewhere)."""
        self.baseline = {}
        self._suspects.clear()
        self._snapshots.clear()

    def assigned(self, key: str) -> None:
        self._suspects.add(key)
        self._snapshots.pop(key, None)

    def handed_out(self, key: str, value: Any) -> None:
        if is_immutable(value):
            return
        if key not in self._suspects and key in self.baseline:
            # Neither assigned nor handed out before: the value is still what its stored
            # text says, so a snapshot of it now is a snapshot of the stored value.
            snapshot = _snapshot(value)
            if snapshot is not None:
                self._snapshots[key] = snapshot
        self._suspects.add(key)

    def current(self, values: Mapping[str, Any]) -> Mapping[str, str]:
        """The serialized session now: the baseline, minus removed keys, plus re-serialized
        suspects that changed.

        :raises TypeError: naming the key of a value that cannot be serialized.
        """
        if not self._suspects and len(values) == len(self.baseline):
            return self.baseline
        data = {key: text for key, text in self.baseline.items() if key in values}
        for key in self._suspects:
            if key not in values:
                continue
            value = values[key]
            text = self.baseline.get(key)
            if text is not None:
                snapshot = self._snapshots.get(key)
                if snapshot is not None and _snapshot(value) == snapshot:
                    continue
                if codec.still_encodes_to(value, text):
                    continue
            data[codec.check_key(key)] = codec.encode_value(key, value)
        return data


def delta(before: Mapping[str, str], after: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """What turns ``before`` into ``after``: the entries to set (new or with another text)
    and the keys to remove."""
    changed = {key: text for key, text in after.items() if before.get(key) != text}
    removed = [key for key in before if key not in after]
    return changed, removed


def rebase(
    before: Mapping[str, str], after: Mapping[str, str], onto: Mapping[str, str]
) -> dict[str, str]:
    """This request's changes (``before`` to ``after``) applied on top of ``onto``, what
    the table held when the change landed. Keys this request did not change keep the
    table's state, so what a concurrent request wrote meanwhile (a key set, or a key
    removed, as Flask-Login's ``logout_user()`` removes its user key) survives."""
    changed, removed = delta(before, after)
    merged = {key: text for key, text in onto.items() if key not in removed}
    merged.update(changed)
    return merged
