"""Which session values may differ from what is stored, found without re-serializing the
ones that cannot.

A value can only change in two ways: it is assigned (``session[k] = v``), or a mutable
value the session handed out (``session[k].append(x)``) is changed in place. Assigned keys
are serialized at save time; handed-out mutable values are compared with a pristine copy
decoded from the stored text when they were handed out, and serialized only if they differ.
A request that reads a large nested value therefore pays a comparison, not a serialization.
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


def strictly_equal(left: Any, right: Any) -> bool:
    """``==`` that also tells ``1`` from ``True`` and ``1.0``, and ``str`` from ``Markup``,
    at any depth: those would serialize differently."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(
            strictly_equal(value, right[key]) for key, value in left.items()
        )
    if isinstance(left, (list, tuple)):
        return len(left) == len(right) and all(map(strictly_equal, left, right))
    return bool(left == right)


class ChangeTracker:
    """The serialized state of a session as last read or written, and what may have changed
    since."""

    def __init__(self) -> None:
        #: Serialized values as last read or written: the base of the next delta.
        self.baseline: Mapping[str, str] = {}
        self._assigned: set[str] = set()
        #: Mutable values the caller may hold a reference to, with a pristine copy of the
        #: stored version of each (absent while the key has no stored version).
        self._watched: set[str] = set()
        self._pristine: dict[str, Any] = {}

    def reset(self, baseline: Mapping[str, str]) -> None:
        """``baseline`` is now what the table holds. Watched values stay watched, since the
        caller may still change them, against a fresh pristine copy where the text changed."""
        previous = self.baseline
        self.baseline = baseline
        self._assigned.clear()
        for key in self._watched:
            text = baseline.get(key)
            if text is None:
                self._pristine.pop(key, None)
            elif text != previous.get(key) or key not in self._pristine:
                self._pristine[key] = codec.decode_value(text)

    def forget(self) -> None:
        """Nothing is stored any more (cleared, abandoned or ended elsewhere)."""
        self.baseline = {}
        self._assigned.clear()
        self._watched.clear()
        self._pristine.clear()

    def assigned(self, key: str, value: Any) -> None:
        self._assigned.add(key)
        if not is_immutable(value):
            self._watched.add(key)

    def handed_out(self, key: str, value: Any) -> None:
        if key in self._watched or is_immutable(value):
            return
        self._watched.add(key)
        text = self.baseline.get(key)
        if text is not None and key not in self._assigned:
            self._pristine[key] = codec.decode_value(text)

    def may_have_changed(self) -> bool:
        return bool(self._assigned or self._watched)

    def current(self, values: Mapping[str, Any]) -> Mapping[str, str]:
        """The serialized session now: the baseline, minus removed keys, plus re-serialized
        values that were assigned or changed in place.

        :raises TypeError: naming the key of a value that cannot be serialized.
        """
        if len(values) == len(self.baseline) and not self.may_have_changed():
            return self.baseline
        data = {key: text for key, text in self.baseline.items() if key in values}
        for key in self._assigned | self._watched:
            if key not in values:
                continue
            value = values[key]
            if key not in self._assigned and key in self._pristine:
                if strictly_equal(value, self._pristine[key]):
                    continue
            data[codec.check_key(key)] = codec.encode_value(key, value)
        return data
