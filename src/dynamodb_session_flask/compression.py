"""Which session values are stored compressed, and how.

DynamoDB bills a write per started kilobyte and a read per started 4 KB of the *whole
item*, an UpdateItem that changes one small key included. Session values of a few
kilobytes are mostly JSON of repeated shapes (cart lines, profiles) that zlib shrinks to a
fifth to a half, so storing them compressed makes a large session bill like a small one.

The rule, from measurements on session-like values (``benchmarks/compression.py``):

* only text longer than the threshold (512 UTF-8 bytes by default) is tried: below that,
  zlib's own overhead leaves typical JSON at 0.7 to 0.9 of its size, and a few hundred
  bytes rarely change the kilobytes an item is billed for;
* the compressed form is kept only when it is at most two thirds of the text. DynamoDB's
  JSON protocol carries binary values in base64, a third larger, so below that ratio the
  value is smaller on the wire as well as in the bill. Random tokens in base64 (about
  0.76) stay text, while JSON (0.2 to 0.5) and hex (0.58) are compressed.

zlib at level 6 (its default): bz2 and lzma took 10 to 20 times longer on these values
for at most a few percent more, and levels 1 or 9 changed sizes by under 10 %. The stored
bytes are a standard zlib stream (RFC 1950), so any zlib tool reads them. Change detection
compares the texts, never these bytes, so they need not be the same across zlib versions.
"""

from __future__ import annotations

import zlib

#: Text of at most this many UTF-8 bytes is stored as it is.
DEFAULT_THRESHOLD = 512
#: zlib's default level: levels 1 and 9 changed sizes by under 10 % on session values.
LEVEL = 6
#: The compressed form is kept when at most this fraction of the text (2/3), checked in
#: integers as ``compressed * 3 <= text * 2``.
_RATIO_NUMERATOR = 2
_RATIO_DENOMINATOR = 3


def compress(text: str, threshold: int = DEFAULT_THRESHOLD) -> bytes | None:
    """The zlib stream to store for ``text``, or ``None`` when it is better stored as
    text: ``threshold`` is 0 (compression off), the text is not longer than ``threshold``
    UTF-8 bytes, or compressing saves less than a third."""
    # A character is at least one UTF-8 byte: most short values need no encoding to rule out.
    if threshold <= 0 or len(text) * 4 <= threshold:
        return None
    data = text.encode()
    if len(data) <= threshold:
        return None
    packed = zlib.compress(data, LEVEL)
    if len(packed) * _RATIO_DENOMINATOR > len(data) * _RATIO_NUMERATOR:
        return None
    return packed


def decompress(data: bytes, limit: int) -> str:
    """The text stored as ``data`` by :func:`compress`, at most ``limit`` bytes of it.

    A few kilobytes of zlib can stand for hundreds of megabytes of text, and the stored
    bytes are whatever the table holds: decompressing never produces more than ``limit``
    bytes, so a value that would is refused before it takes the memory.

    :raises ValueError: when ``data`` is not one complete zlib stream of UTF-8 text of at
        most ``limit`` bytes.
    """
    inflater = zlib.decompressobj()
    try:
        # One byte over the limit tells "exactly the limit" from "more than it".
        text = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise ValueError(f"not a zlib stream: {exc}") from exc
    if len(text) > limit:
        raise ValueError(f"decompresses to more than {limit} bytes")
    if not inflater.eof or inflater.unused_data:
        raise ValueError("not one complete zlib stream")
    try:
        return text.decode()
    except UnicodeDecodeError as exc:
        # Its message quotes the stored bytes.
        raise ValueError("not UTF-8 text") from exc
