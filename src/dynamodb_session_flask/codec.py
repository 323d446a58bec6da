"""Session values <-> the strings stored per key in the item's ``data`` map.

Each top-level session key is stored as Flask's tagged JSON, the format Flask's own cookie
session uses, so everything that round-trips there (tuples, bytes, datetimes, UUIDs,
Markup, nested containers) round-trips here unchanged. The JSON text itself is produced
with fixed options rather than the application's JSON provider, so the same value always
gives the same text and unchanged values can be recognised by comparing texts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask.json.tag import TaggedJSONSerializer

from .errors import UndecodableDataError

_serializer = TaggedJSONSerializer()
# Every tag is a one-key object whose key starts with a space, serialized as '{" ' (a quote
# inside a JSON string is always escaped). Text without it holds no tag.
_TAG_MARK = '{" '


def _dumps(obj: Any) -> str:
    # Sorted keys make the text a function of the value; UTF-8 instead of \u escapes keeps
    # non-ASCII text small, and DynamoDB bills by UTF-8 bytes.
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


_PLAIN_SCALARS = frozenset({str, int, float, bool, type(None)})


def _needs_no_tags(value: Any) -> bool:
    """Whether tagging would leave ``value`` as it is: only JSON's own types, and no dict
    that could be mistaken for a tag. One cheap type walk instead of the tagger's, which
    tries every tag on every element."""
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind in _PLAIN_SCALARS:
            continue
        if kind is list:
            pending.extend(item)
        elif kind is dict:
            if len(item) == 1 and next(iter(item)) in _serializer.tags:
                return False
            pending.extend(item.values())
        else:
            return False
    return True


def encode_value(key: str, value: Any) -> str:
    """Serialize one session value.

    :raises TypeError: naming ``key`` when the value cannot be serialized.
    """
    try:
        if _needs_no_tags(value):
            return _dumps(value)
        return _dumps(_serializer.tag(value))
    except (TypeError, ValueError) as exc:
        # ValueError covers circular references.
        raise TypeError(
            f"session value for key {key!r} cannot be stored: {exc}; store JSON types, "
            f"tuples, bytes, datetimes, UUIDs or Markup"
        ) from exc


def decode_value(text: str) -> Any:
    """Deserialize one stored session value."""
    if _TAG_MARK not in text:
        # No tags: plain JSON decoding gives the same value without a second walk.
        return json.loads(text)
    return _serializer.loads(text)


def decode_values(texts: Mapping[str, str]) -> dict[str, Any]:
    """Deserialize a stored session's values.

    :raises UndecodableDataError: naming the key of a text that is not tagged JSON.
    """
    values = {}
    for key, text in texts.items():
        try:
            values[key] = decode_value(text)
        except Exception as exc:
            # Stored text can be anything (an older layout, a hand edit, a bad
            # migration), and a tag's decoder fails on bad content with whatever its type
            # raises (TypeError, binascii.Error, RecursionError, ...): each of them means
            # the value cannot be read back. Only the type is kept: the message may quote
            # the stored content.
            raise UndecodableDataError(
                f"stored value of key {key!r}: {type(exc).__name__}"
            ) from exc
    return values


def still_encodes_to(value: Any, text: str) -> bool:
    """Whether ``value`` is unchanged from the stored ``text``, checked with one C-speed
    JSON encoding instead of a full tagged serialization.

    Only decides for tag-free text; ``False`` means "serialize it to find out".
    """
    if _TAG_MARK in text:
        return False
    try:
        same_text = _dumps(value) == text
    except (TypeError, ValueError):
        # Holds a type that needs a tag (datetime, bytes, ...), so it was changed.
        return False
    # Plain JSON text cannot tell a tuple from a list nor Markup from a str: the same text
    # is the same value only when every type in it is JSON's own. Checked last, so only
    # a value that seems unchanged pays for the walk.
    return same_text and _needs_no_tags(value)


def check_key(key: object) -> str:
    """Session keys become DynamoDB map keys, which must be non-empty strings.

    :raises TypeError: for any other key.
    """
    if not isinstance(key, str) or not key:
        raise TypeError(f"session keys must be non-empty strings, got {key!r}")
    return key
