"""Which values are stored compressed: the rule on its own, no server needed."""

from __future__ import annotations

import json
import zlib

import pytest

from dynamodb_session_flask import compression

from .conftest import random_text

CART = json.dumps(
    [
        {"sku": f"sku-{n:06d}", "name": "Organic cotton T-shirt", "size": "M", "qty": 1}
        for n in range(40)
    ]
)


def test_large_json_is_compressed_and_comes_back_unchanged() -> None:
    packed = compression.compress(CART, 512)
    assert packed is not None
    assert len(packed) * 3 <= len(CART) * 2
    assert compression.decompress(packed) == CART


def test_stored_bytes_are_a_standard_zlib_stream() -> None:
    # Operators can read a stored value with any zlib tool.
    packed = compression.compress(CART)
    assert packed is not None
    assert zlib.decompress(packed).decode() == CART


@pytest.mark.parametrize(
    ("text", "threshold", "compressed"),
    [
        ("a" * 512, 512, False),
        ("a" * 513, 512, True),
        # The threshold counts UTF-8 bytes, not characters: 300 "é" are 600 bytes.
        ("é" * 256, 512, False),
        ("é" * 300, 512, True),
        ("a" * 100, 64, True),
    ],
)
def test_only_text_longer_than_the_threshold_is_compressed(
    text: str, threshold: int, compressed: bool
) -> None:
    assert (compression.compress(text, threshold) is not None) is compressed


def test_threshold_zero_turns_compression_off() -> None:
    assert compression.compress(CART, 0) is None


@pytest.mark.parametrize("size", [1000, 8000, 100_000])
def test_random_base64_text_is_left_as_text(size: int) -> None:
    # zlib shrinks it to about 0.76: less than the third the rule asks for.
    assert compression.compress(random_text(size), 512) is None


def test_non_ascii_text_round_trips() -> None:
    text = json.dumps(["héllo ✓ 日本語"] * 100, ensure_ascii=False)
    packed = compression.compress(text, 512)
    assert packed is not None
    assert compression.decompress(packed) == text


@pytest.mark.parametrize(
    "data",
    [b"", b"not zlib", zlib.compress(b"\xff\xfe not utf-8")],
    ids=["empty", "garbage", "bytes"],
)
def test_data_that_is_not_compressed_text_is_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        compression.decompress(data)
