"""Session ids: lengths SPEC.md states, signatures, rotation, and derived hashes."""

from __future__ import annotations

import pytest

from dynamodb_session_flask.ids import SessionIds, loggable_id, storage_key


@pytest.mark.parametrize(("byte_length", "keys", "length"), [(32, (), 43), (32, ("k",), 71)])
def test_id_lengths(byte_length: int, keys: tuple[str, ...], length: int) -> None:
    ids = SessionIds(byte_length, keys)
    sid = ids.generate()
    assert len(sid) == length
    assert ids.is_valid(sid)


def test_ids_are_unique() -> None:
    ids = SessionIds(16)
    assert len({ids.generate() for _ in range(1000)}) == 1000


def test_shape_checked_for_the_configured_length() -> None:
    assert not SessionIds(32).is_valid(SessionIds(16).generate())
    assert not SessionIds(32).is_valid(SessionIds(32, ["k"]).generate())
    assert not SessionIds(32, ["k"]).is_valid(SessionIds(32).generate())


def test_rotation_accepts_old_keys_and_signs_with_the_newest() -> None:
    old = SessionIds(32, ["old"]).generate()
    rotated = SessionIds(32, ["old", "new"])
    assert rotated.is_valid(old)
    assert SessionIds(32, ["new"]).is_valid(rotated.generate())
    assert not SessionIds(32, ["new"]).is_valid(old)


def test_derived_hashes_do_not_reveal_the_id() -> None:
    sid = SessionIds(32).generate()
    assert sid not in storage_key(sid)
    assert len(storage_key(sid)) == 43
    assert len(loggable_id(sid)) == 128
    assert storage_key(sid) != loggable_id(sid)
