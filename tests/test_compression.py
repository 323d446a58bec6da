"""Which values are stored compressed: the rule on its own, no server needed."""

from __future__ import annotations

import json
import tracemalloc
import zlib

import pytest

from dynamodb_session_flask import compression
from dynamodb_session_flask.records import ITEM_SIZE_LIMIT

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
    assert compression.decompress(packed, ITEM_SIZE_LIMIT) == CART


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
    assert compression.decompress(packed, ITEM_SIZE_LIMIT) == text


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not zlib",
        zlib.compress(b"\xff\xfe not utf-8"),
        zlib.compress(b"cut short")[:-3],
        zlib.compress(b"trailing") + b"junk",
    ],
    ids=["empty", "garbage", "bytes", "truncated", "trailing"],
)
def test_data_that_is_not_compressed_text_is_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        compression.decompress(data, ITEM_SIZE_LIMIT)


def test_text_up_to_the_limit_decompresses_and_past_it_is_refused() -> None:
    packed = zlib.compress(b"a" * 1000)
    assert compression.decompress(packed, 1000) == "a" * 1000
    with pytest.raises(ValueError, match="more than 999 bytes"):
        compression.decompress(packed, 999)


def test_a_small_stream_of_a_huge_text_never_takes_more_than_the_limit() -> None:
    # 64 MB of text in about 64 KB of zlib: a value that fits in an item many times.
    bomb = zlib.compress(b" " * (64 << 20), 9)
    assert len(bomb) < ITEM_SIZE_LIMIT
    tracemalloc.start()
    try:
        with pytest.raises(ValueError):
            compression.decompress(bomb, ITEM_SIZE_LIMIT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * ITEM_SIZE_LIMIT
