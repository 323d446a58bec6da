"""Which session values may differ from what is stored, found without re-serializing the
ones that did not change.

A value can only change in two ways: it is assigned (``session[k] = v``), or a mutable
value the session handed out (``session[k].append(x)``) is changed in place. Only those
keys are suspects. At save time each suspect is checked against its stored text with one
C-speed JSON encoding, and fully serialized only when that check cannot vouch for it. A
request that merely reads a large nested value therefore pays one fast encoding, not a
serialization.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID

from markupsafe import Markup

from . import codec

# Values of these types cannot be changed in place.
_IMMUTABLE = (str, bytes, int, float, bool, type(None), datetime, date, time, UUID, Decimal, Markup)


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

    def reset(self, baseline: Mapping[str, str]) -> None:
        """``baseline`` is what the table holds now."""
        self.baseline = baseline

    def forget(self) -> None:
        """Nothing is stored any more (cleared, abandoned or ended elsewhere)."""
        self.baseline = {}
        self._suspects.clear()

    def assigned(self, key: str) -> None:
        self._suspects.add(key)

    def handed_out(self, key: str, value: Any) -> None:
        if not is_immutable(value):
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
            if text is not None and codec.still_encodes_to(value, text):
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
