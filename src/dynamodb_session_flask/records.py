"""The stored form of a session: the record, the attributes of its DynamoDB item, and the
item's size as DynamoDB counts it. Pure data: nothing here talks to DynamoDB.

Item layout (hash key ``id``, type S)::

    id                storage key: hash of the session id (see ids.storage_key)
    data              M: one entry per session key: the value's tagged JSON (S), or, for
                         a large value that compresses well, that text compressed (B)
    created           N: epoch seconds
    refreshed         N: epoch seconds of the last idle-expiry refresh
    expires           N: integer epoch seconds, min(refreshed + idle, created + absolute);
                         the table's TTL attribute, and re-checked on every read
    idle_timeout      N: the timeouts this session was created with
    absolute_timeout  N
    user_id, handle,  S: the user binding (see users.py), only while the session is bound;
    user_agent           ``user_id`` and ``handle`` are the per-user index's keys
    fence             S: set on the asking session's record by "end my other sessions",
                         so a move of it to a new id by another holder of its id fails
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from . import compression
from .errors import SessionTooLargeError, UndecodableDataError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef
else:
    AttributeValueTypeDef = Any

#: DynamoDB's maximum item size, in bytes.
ITEM_SIZE_LIMIT = 400 * 1024
#: Upper bound of a number attribute's stored size, used so the size check never under-counts.
_NUMBER_SIZE = 21
_NUMBER_ATTRIBUTES = ("created", "refreshed", "expires", "idle_timeout", "absolute_timeout")
#: The user binding's attributes. ``user_id`` and ``handle`` are the per-user index's keys:
#: they are only ever written together, by a write that binds, rebinds or unbinds.
USER_ID = "user_id"
HANDLE = "handle"
USER_AGENT = "user_agent"
#: Written only by an ending of the user's other sessions, on the asking session's record.
FENCE = "fence"


@dataclass(frozen=True)
class Binding:
    """The user a stored session belongs to, as its item records it."""

    user_id: str
    #: Opaque and random: never the session id nor its storage key.
    handle: str
    user_agent: str | None = None


@dataclass(frozen=True)
class SessionRecord:
    """One stored session: timestamps in epoch seconds, values as serialized strings."""

    created: float
    refreshed: float
    idle_timeout: int
    absolute_timeout: int
    data: Mapping[str, str]
    binding: Binding | None = None
    #: Set by an ending of the user's other sessions (see :meth:`.store.SessionStore.fence`):
    #: a move of this record to a new id must have read it since, or it is refused.
    fence: str | None = None

    @property
    def expires_at(self) -> float:
        """When the session ends: idle expiry or absolute expiry, whichever is first."""
        return min(self.refreshed + self.idle_timeout, self.created + self.absolute_timeout)

    def rewritten(
        self, now: float, data: Mapping[str, str], binding: Binding | None
    ) -> SessionRecord:
        """This record as rewritten at ``now`` with ``data`` and ``binding``."""
        return SessionRecord(
            self.created, now, self.idle_timeout, self.absolute_timeout, data, binding, self.fence
        )

    def limited(self, idle_timeout: int, absolute_timeout: int) -> SessionRecord:
        """This record under timeouts no longer than the given ones: an operator who
        shortens the settings shortens every live session on its next read."""
        if idle_timeout >= self.idle_timeout and absolute_timeout >= self.absolute_timeout:
            return self
        return replace(
            self,
            idle_timeout=min(idle_timeout, self.idle_timeout),
            absolute_timeout=min(absolute_timeout, self.absolute_timeout),
        )

    def live_condition_values(self, now: float) -> dict[str, AttributeValueTypeDef]:
        """Values for :data:`.store.LIVE_ONLY`: live at ``now`` means refreshed less than the idle
        timeout ago and created less than the absolute timeout ago."""
        return {
            ":idle_cutoff": number(now - self.idle_timeout),
            ":absolute_cutoff": number(now - self.absolute_timeout),
        }


def item_size(key: str, data: Mapping[str, str | bytes], binding: Binding | None = None) -> int:
    """An upper bound of the stored item's size under DynamoDB's accounting: attribute
    names plus values, 3 bytes per map and 1 byte per map entry. Each value counts as
    given: text by its UTF-8 bytes, a compressed value by its bytes."""
    size = len("id") + len(key.encode())
    size += len("data") + 3
    size += sum(len(k.encode()) + _stored_size(v) + 1 for k, v in data.items())
    size += sum(len(name) + _NUMBER_SIZE for name in _NUMBER_ATTRIBUTES)
    if binding is not None:
        size += len(USER_ID) + len(binding.user_id.encode())
        size += len(HANDLE) + len(binding.handle)
        if binding.user_agent is not None:
            size += len(USER_AGENT) + len(binding.user_agent.encode())
    return size


def _stored_size(value: str | bytes) -> int:
    return len(value) if isinstance(value, bytes) else len(value.encode())


def ensure_fits(key: str, data: Mapping[str, str | bytes], binding: Binding | None = None) -> None:
    """:raises SessionTooLargeError: before any write, when the item would be too large.

    The store passes every value as text, compressed or not: compression changes what a
    session is billed, never how much it may hold. Otherwise a few hundred kilobytes of
    zlib could carry hundreds of megabytes of text that every request of the session
    decompresses and decodes.
    """
    size = item_size(key, data, binding)
    if size > ITEM_SIZE_LIMIT:
        raise SessionTooLargeError(size, ITEM_SIZE_LIMIT)


def number(value: float) -> AttributeValueTypeDef:
    # Millisecond precision keeps short idle timeouts exact without float noise.
    return {"N": f"{value:.3f}".rstrip("0").rstrip(".")}


def expiry_epoch(record: SessionRecord) -> AttributeValueTypeDef:
    # TTL wants whole epoch seconds; rounding up never deletes a live session early.
    return {"N": str(math.ceil(record.expires_at))}


def data_map(data: Mapping[str, str | bytes]) -> AttributeValueTypeDef:
    return {"M": {k: attribute(v) for k, v in data.items()}}


def attribute(value: str | bytes) -> AttributeValueTypeDef:
    """A value as stored: text as S, compressed text as B."""
    return {"B": value} if isinstance(value, bytes) else {"S": value}


def texts_of(data: Any) -> dict[str, str]:
    """The text of each value in an item's ``data`` map: S as it is (items written before
    values were compressed hold S only), B decompressed.

    Decompression is bounded by the item limit for the whole session: a session written
    by this package never holds more text than that (see :func:`ensure_fits`), and a few
    kilobytes of zlib must not cost a request hundreds of megabytes.

    :raises UndecodableDataError: naming the key of a value that is neither, or when
        ``data`` is not a map.
    """
    stored = data.get("M") if isinstance(data, Mapping) else None
    if not isinstance(stored, Mapping):
        raise UndecodableDataError("the data attribute is not a map")
    budget = ITEM_SIZE_LIMIT
    texts = {}
    for key, value in stored.items():
        if "S" in value:
            texts[key] = str(value["S"])
            continue
        try:
            text = compression.decompress(value["B"], budget)
        except (KeyError, TypeError, ValueError) as exc:
            raise UndecodableDataError(f"stored value of key {key!r}: {exc}") from exc
        # An ASCII text's length is its size in bytes, found without encoding it again.
        budget -= len(text) if text.isascii() else len(text.encode())
        texts[key] = text
    return texts


def binding_attributes(binding: Binding | None) -> dict[str, AttributeValueTypeDef]:
    if binding is None:
        return {}
    attributes: dict[str, AttributeValueTypeDef] = {
        USER_ID: {"S": binding.user_id},
        HANDLE: {"S": binding.handle},
    }
    if binding.user_agent:
        attributes[USER_AGENT] = {"S": binding.user_agent}
    return attributes


def binding_from_item(item: Mapping[str, Any]) -> Binding | None:
    if USER_ID not in item or HANDLE not in item:
        return None
    user_agent = item.get(USER_AGENT)
    return Binding(
        user_id=item[USER_ID]["S"],
        handle=item[HANDLE]["S"],
        user_agent=None if user_agent is None else user_agent["S"],
    )


def record_from_item(item: Mapping[str, Any], *, with_data: bool = True) -> SessionRecord:
    """The record an item holds (``data`` left empty unless ``with_data``).

    :raises KeyError, TypeError, ValueError: for an item that is not a session record.
    :raises UndecodableDataError: for a session record whose data cannot be read back.
    """
    return SessionRecord(
        created=float(item["created"]["N"]),
        refreshed=float(item["refreshed"]["N"]),
        idle_timeout=int(item["idle_timeout"]["N"]),
        absolute_timeout=int(item["absolute_timeout"]["N"]),
        data=texts_of(item.get("data")) if with_data else {},
        binding=binding_from_item(item),
        fence=item[FENCE]["S"] if FENCE in item else None,
    )


def rebind(
    binding: Binding | None,
    names: dict[str, str],
    values: dict[str, AttributeValueTypeDef],
    assignments: list[str],
    removals: list[str],
) -> None:
    """Add to an update expression what binds the record to ``binding``, or unbinds it."""
    names.update({"#user_id": USER_ID, "#handle": HANDLE, "#user_agent": USER_AGENT})
    if binding is None:
        removals.extend(["#user_id", "#handle", "#user_agent"])
        return
    values[":user_id"] = {"S": binding.user_id}
    values[":handle"] = {"S": binding.handle}
    assignments.extend(["#user_id = :user_id", "#handle = :handle"])
    if binding.user_agent:
        values[":user_agent"] = {"S": binding.user_agent}
        assignments.append("#user_agent = :user_agent")
    else:
        removals.append("#user_agent")
