"""What a login puts in the session, for each session the benchmark measures.

Every payload is deterministic (seeded), so every implementation stores the same bytes and
two runs store the same bytes as each other:

- ``1k`` and ``8k``: a user profile padded to about that many serialized bytes with a list
  of recently viewed product codes, and an empty cart of product codes;
- ``8k-shop``: what a shop's session really holds at that size: a cart of 40 product
  records (dicts), a profile with addresses and preferences, a CSRF token and two flashed
  messages, each under its own key;
- ``8k-random``: about 8 KB of random base64 text (an encrypted token, say), which no
  compressor can shrink by much, and an empty cart of product codes.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

from flask.json.tag import TaggedJSONSerializer

_serializer = TaggedJSONSerializer()

_PRODUCTS = [
    "Merino wool crew-neck jumper",
    "Organic cotton T-shirt",
    "Slim-fit stretch chinos",
    "Waterproof hiking jacket",
    "Leather chelsea boots",
    "Linen button-down shirt",
    "Cashmere beanie",
    "Recycled polyester running shorts",
    "Quilted puffer vest",
    "Canvas weekender bag",
]
_COLOURS = ["Navy", "Charcoal", "Forest green", "Oatmeal", "Black", "Rust"]
_SIZES = ["XS", "S", "M", "L", "XL"]


@dataclass(frozen=True)
class Payload:
    """One kind of session: what login stores (besides ``user``), and the cart line one
    change adds for a product code."""

    name: str
    label: str
    login_data: Callable[[], dict[str, Any]]
    cart_item: Callable[[str], Any]

    def cart_size(self) -> int:
        """Items in the cart right after login."""
        return len(self.login_data()["cart"])

    def serialized_size(self) -> int:
        return sum(len(_serializer.dumps(value).encode()) for value in self.login_data().values())


def profile_template(size: int) -> dict[str, Any]:
    """A user profile whose serialized form is about ``size`` bytes: what a login puts in
    the session."""
    profile: dict[str, Any] = {
        "user": "",
        "display_name": "Benchmark User",
        "email": "user@example.test",
        "locale": "en-GB",
        "timezone": "Europe/London",
        "roles": ["customer", "newsletter"],
        "preferences": {"currency": "EUR", "theme": "dark", "page_size": 24},
        "recently_viewed": [],
    }
    viewed: list[str] = profile["recently_viewed"]
    while len(_serializer.dumps(profile)) < size:
        viewed.append(f"sku-{len(viewed):06d}")
    return profile


def product(rng: random.Random) -> dict[str, Any]:
    """One cart line as a shop keeps it: enough to render the cart without a lookup."""
    code = f"sku-{rng.randrange(1_000_000):06d}"
    return {
        "sku": code,
        "name": rng.choice(_PRODUCTS),
        "colour": rng.choice(_COLOURS),
        "size": rng.choice(_SIZES),
        "price": f"{rng.randrange(900, 25000) / 100:.2f}",
        "qty": rng.choice([1, 1, 1, 2, 3]),
        "added": f"2026-11-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:"
        f"{rng.randrange(60):02d}:{rng.randrange(60):02d}Z",
    }


def shop_session(lines: int = 40, seed: int = 10) -> dict[str, Any]:
    rng = random.Random(seed)
    return {
        "cart": [product(rng) for _ in range(lines)],
        "profile": {
            "display_name": "Ann Example",
            "email": "ann.example@example.test",
            "locale": "en-GB",
            "timezone": "Europe/London",
            "currency": "EUR",
            "roles": ["customer", "newsletter", "beta"],
            "addresses": [
                {
                    "label": label,
                    "name": "Ann Example",
                    "street": f"{rng.randrange(1, 200)} {street}",
                    "city": city,
                    "postcode": postcode,
                    "country": "GB",
                    "phone": f"+44 20 7946 {rng.randrange(10000):04d}",
                }
                for label, street, city, postcode in [
                    ("home", "Acacia Avenue", "London", "N1 7GU"),
                    ("work", "Commercial Street", "London", "E1 6LP"),
                ]
            ],
            "preferences": {
                "theme": "dark",
                "page_size": 24,
                "newsletter": True,
                "sort": "price-asc",
                "sizes": {"tops": "M", "bottoms": "32/32", "shoes": "42"},
            },
            "recently_viewed": [f"sku-{rng.randrange(1_000_000):06d}" for _ in range(24)],
            "recent_orders": [
                {
                    "id": f"ord-{rng.randrange(10**8):08d}",
                    "placed": f"2026-{rng.randrange(1, 11):02d}-{rng.randrange(1, 29):02d}",
                    "total": f"{rng.randrange(2000, 40000) / 100:.2f}",
                    "status": rng.choice(["delivered", "delivered", "returned", "shipped"]),
                }
                for _ in range(14)
            ],
            "loyalty": {"tier": "silver", "points": 1840, "since": "2023-04-02"},
        },
        "csrf_token": f"{rng.getrandbits(160):040x}",
        # Flask keeps flashed messages as a list of (category, message) tuples.
        "_flashes": [
            ("success", "Welcome back, Ann! Your saved cart has been restored."),
            ("info", "Free delivery on orders over 50 EUR until Sunday."),
        ],
    }


def random_text(size: int, seed: int = 8) -> str:
    """``size`` characters of base64 from seeded random bytes."""
    rng = random.Random(seed)
    return base64.b64encode(rng.randbytes(size * 3 // 4)).decode()


PAYLOADS: Mapping[str, Payload] = {
    payload.name: payload
    for payload in [
        Payload(
            "1k",
            "~1 KB",
            lambda: {"profile": profile_template(1000), "cart": []},
            lambda sku: sku,
        ),
        Payload(
            "8k",
            "~8 KB",
            lambda: {"profile": profile_template(8000), "cart": []},
            lambda sku: sku,
        ),
        Payload(
            "8k-shop",
            "~8 KB shop",
            shop_session,
            lambda sku: {**product(random.Random(sku)), "sku": sku},
        ),
        Payload(
            "8k-random",
            "~8 KB random",
            lambda: {"token": random_text(8000), "cart": []},
            lambda sku: sku,
        ),
    ]
}
