"""Session ids: generation, signing with key rotation, shape checks, and the hashes derived
from an id.

An id is ``token_urlsafe(byte_length)`` (43 characters for 32 bytes), optionally followed by
``.`` and a 27-character itsdangerous HMAC-SHA1 signature (71 characters in all). The table
never sees an id: records are keyed by :func:`storage_key`, and logs and ``failed_sid`` only
ever show :func:`loggable_id`.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Sequence
from typing import Union

from itsdangerous import Signer

Key = Union[str, bytes]

_BASE64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

#: Length of an itsdangerous signature with the default HMAC-SHA1 digest, base64 encoded.
SIGNATURE_LENGTH = 27


def token_length(byte_length: int) -> int:
    """Characters in the unpadded URL-safe base64 encoding of ``byte_length`` bytes."""
    return (byte_length * 4 + 2) // 3


class SessionIds:
    """Makes and checks the ids of one application's settings.

    :param byte_length: random bytes per id.
    :param keys: signing keys, oldest to newest; empty for unsigned ids. New ids are signed
        with the newest key; ids signed with any listed key are accepted.
    """

    def __init__(self, byte_length: int, keys: Sequence[Key] = ()) -> None:
        self.byte_length = byte_length
        # itsdangerous signs with the last key and accepts any of them.
        self._signer = Signer(list(keys)) if keys else None  # type: ignore[arg-type]
        token = rf"[A-Za-z0-9_\-]{{{token_length(byte_length)}}}"
        if self._signer is not None:
            pattern = rf"{token}\.[A-Za-z0-9_\-]{{{SIGNATURE_LENGTH}}}"
        else:
            pattern = token
        self._shape = re.compile(pattern)

    def generate(self) -> str:
        """A new id from the operating system's CSPRNG."""
        token = secrets.token_urlsafe(self.byte_length)
        if self._signer is None:
            return token
        return self._signer.sign(token).decode("ascii")

    def is_valid(self, candidate: str) -> bool:
        """Whether ``candidate`` could be an id we issued: right shape, canonical encoding,
        good signature.

        Cheap and side-effect free, so garbage and forgeries are turned away before any
        DynamoDB call.
        """
        if not self._shape.fullmatch(candidate):
            return False
        if self._signer is None:
            # An unsigned token is looked up as the exact string it is: another spelling
            # of the same bytes is simply another, unknown, id.
            return True
        # The signature is compared as bytes, so each spelling of them would pass.
        signature = candidate.rpartition(".")[2]
        return is_canonical_base64(signature) and self._signer.validate(candidate)


def is_canonical_base64(text: str) -> bool:
    """Whether unpadded URL-safe base64 ``text`` is the one encoding of its bytes.

    When the bit length is not a multiple of 8, the last character carries unused low
    bits; decoders ignore them, so up to three other final characters decode to the same
    bytes. Only the encoding with those bits zero is one we could have issued.
    """
    spare_bits = len(text) * 6 % 8
    if not spare_bits:
        return True
    return _BASE64_ALPHABET.index(text[-1]) % (1 << spare_bits) == 0


def storage_key(session_id: str) -> str:
    """The table's hash key for an id: URL-safe base64 of its SHA-256.

    A leaked table or backup therefore holds no usable session tokens.
    """
    digest = hashlib.sha256(session_id.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def loggable_id(session_id: str) -> str:
    """The hex SHA-512 of an id: safe to log, and stable so log lines can be correlated."""
    return hashlib.sha512(session_id.encode()).hexdigest()
