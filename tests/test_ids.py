"""Session ids: lengths SPEC.md states, signatures, rotation, and derived hashes."""

from __future__ import annotations

import base64

import pytest

from dynamodb_session_flask.ids import SessionIds, is_canonical_base64, loggable_id, storage_key

URLSAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


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


def respellings(signed_id: str) -> list[str]:
    """Other final characters that decode to the same signature bytes."""
    signature = signed_id.rpartition(".")[2]
    original = base64.urlsafe_b64decode(signature + "=")
    return [
        signed_id[:-1] + c
        for c in URLSAFE
        if c != signed_id[-1] and base64.urlsafe_b64decode(signature[:-1] + c + "=") == original
    ]


def test_only_the_canonical_spelling_of_a_signature_is_accepted() -> None:
    ids = SessionIds(32, ["k"])
    for _ in range(20):
        sid = ids.generate()
        variants = respellings(sid)
        assert len(variants) == 3, "27 characters carry 2 spare bits"
        assert ids.is_valid(sid)
        assert not any(ids.is_valid(variant) for variant in variants)


@pytest.mark.parametrize("size", range(1, 40))
def test_canonical_base64_check_agrees_with_the_standard_library(size: int) -> None:
    data = bytes(range(size))
    text = base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    assert is_canonical_base64(text)
    respelled = [
        text[:-1] + c
        for c in URLSAFE
        if c != text[-1]
        and base64.urlsafe_b64decode(text[:-1] + c + "=" * (-len(text) % 4)) == data
    ]
    assert not any(is_canonical_base64(variant) for variant in respelled)
