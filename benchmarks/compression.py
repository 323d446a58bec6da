"""How well, and how fast, the standard library's compressors shrink session values: the
measurements behind the package's compression threshold and algorithm.

``python benchmarks/compression.py`` prints, for each value of the benchmark's sessions and
for shop carts of growing length, the compressed size as a fraction of the UTF-8 text and
the median microseconds to compress and to decompress, per algorithm and level.
"""

from __future__ import annotations

import bz2
import lzma
import random
import statistics
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.payloads import PAYLOADS, product, random_text, shop_session  # noqa: E402
from benchmarks.report import render  # noqa: E402
from dynamodb_session_flask import codec  # noqa: E402

Codec = tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]

ALGORITHMS: dict[str, Codec] = {
    "zlib 1": (lambda b: zlib.compress(b, 1), zlib.decompress),
    "zlib 6": (lambda b: zlib.compress(b, 6), zlib.decompress),
    "zlib 9": (lambda b: zlib.compress(b, 9), zlib.decompress),
    "bz2 9": (lambda b: bz2.compress(b, 9), bz2.decompress),
    "lzma 0": (lambda b: lzma.compress(b, preset=0), lzma.decompress),
}


def microseconds(call: Callable[[], object], repeat: int = 7) -> float:
    """Median of ``repeat`` timings, each averaged over enough calls to last ~5 ms."""
    number = 1
    while True:
        started = time.perf_counter()
        for _ in range(number):
            call()
        elapsed = time.perf_counter() - started
        if elapsed > 0.005:
            break
        number *= 2
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(number):
            call()
        timings.append((time.perf_counter() - started) / number)
    return statistics.median(timings) * 1e6


def values() -> list[tuple[str, str]]:
    """(name, stored text) of every value measured."""
    found = []
    for payload in PAYLOADS.values():
        for key, value in payload.login_data().items():
            text = codec.encode_value(key, value)
            if len(text) > 100:
                found.append((f"{payload.name} {key}", text))
    # Short values too, to show what compressing them would give.
    found.append(
        ("8k-shop csrf_token", codec.encode_value("csrf_token", shop_session()["csrf_token"]))
    )
    rng = random.Random(1)
    for lines in (1, 2, 4, 8):
        cart = [product(rng) for _ in range(lines)]
        found.append((f"cart of {lines}", codec.encode_value("cart", cart)))
    for size in (1000, 4000):
        found.append((f"random base64 {size}", codec.encode_value("t", random_text(size))))
    found.append(("random hex 8000", codec.encode_value("t", rng.randbytes(4000).hex())))
    return found


def main() -> int:
    headers = ["value", "bytes"]
    for name in ALGORITHMS:
        headers += [f"{name} size", "comp us", "decomp us"]
    rows = []
    for name, text in sorted(values(), key=lambda item: len(item[1].encode())):
        data = text.encode()
        row = [name, str(len(data))]
        for compress, decompress in ALGORITHMS.values():
            packed = compress(data)
            assert decompress(packed) == data
            row += [
                f"{len(packed) / len(data):.2f}",
                f"{microseconds(lambda: compress(data)):.1f}",  # noqa: B023
                f"{microseconds(lambda: decompress(packed)):.1f}",  # noqa: B023
            ]
        rows.append(row)
    print(render(headers, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
