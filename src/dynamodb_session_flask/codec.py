"""Session values <-> the strings stored per key in the item's ``data`` map.

Each top-level session key is stored as Flask's tagged JSON, the format Flask's own cookie
session uses, so everything that round-trips there (tuples, bytes, datetimes, UUIDs,
Markup, nested containers) round-trips here unchanged.
"""

from __future__ import annotations

import json
from typing import Any

from flask.json.tag import TaggedJSONSerializer

_serializer = TaggedJSONSerializer()
# Every tag is a one-key object whose key starts with a space, serialized as '{" ' (a quote
# inside a JSON string is always escaped). Text without it holds no tag, and plain JSON
# decoding gives the same value without walking it again in Python.
_TAG_MARK = '{" '


def encode_value(key: str, value: Any) -> str:
    """Serialize one session value.

    :raises TypeError: naming ``key`` when the value cannot be serialized.
    """
    try:
        return _serializer.dumps(value)
    except (TypeError, ValueError) as exc:
        # ValueError covers circular references.
        raise TypeError(
            f"session value for key {key!r} cannot be stored: {exc}; store JSON types, "
            f"tuples, bytes, datetimes, UUIDs or Markup"
        ) from exc


def decode_value(text: str) -> Any:
    """Deserialize one stored session value."""
    if _TAG_MARK not in text:
        return json.loads(text)
    return _serializer.loads(text)


def check_key(key: object) -> str:
    """Session keys become DynamoDB map keys, which must be non-empty strings.

    :raises TypeError: for any other key.
    """
    if not isinstance(key, str) or not key:
        raise TypeError(f"session keys must be non-empty strings, got {key!r}")
    return key
