"""Page tokens: AWS's nextToken, its listing and the filters it belongs to, sealed with AES-GCM.

A caller's page_token must be opaque (AIP-158), must work on every replica,
and must be refused with filters other than the ones it was issued for, or
by a listing other than its own (a ListRooms token sent to
ListLoggingConfigurations). The token therefore carries AWS's own nextToken,
the listing's name and a digest of the filters,
encrypted and authenticated under a key the replicas share (through Redis;
replicas/page_token_key.py) or, without Redis, one key per process. A token
that does not open under this key was not issued here, or was issued under an
earlier key: it is refused and never reaches AWS, since AWS's tokens could
otherwise be forged, replayed across filters, or probed through the facade.

The key never leaves this object: it is not in its repr, and no message
built here holds it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

# cryptography is imported at the first token sealed or opened, not at start-up:
# its import was a tenth of the time the service took to SERVING.
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES: Final = 32
_NONCE_BYTES: Final = 12
_VERSION: Final = b"\x01"
# Binds a sealed token to its purpose, so nothing else sealed under the key opens as one.
_PURPOSE: Final = b"ivschat-grpc ListRooms page_token v1"
# Far more than any token issued here (AWS's nextToken is at most 1024 characters).
MAX_TOKEN_CHARS: Final = 4096

NOT_OURS: Final = (
    "was issued by another service instance or too old; start again from the first page "
    "(an empty page_token)"
)
OTHER_FILTERS: Final = (
    "was issued for other filters (name, message_review_handler_uri, "
    "logging_configuration_identifier); send the filters of the first page, or start again "
    "from the first page"
)


class BadPageToken(ValueError):
    """BadPageToken is a page_token this service will not use; its message says why."""


def filters_digest(filters: Mapping[str, str]) -> str:
    """A digest of the filters, which a token carries instead of the filters themselves."""
    canonical = json.dumps(sorted(filters.items()), separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _other_listing(listing: str) -> str:
    return (
        f"was issued by {listing}, not this listing; send it to {listing}, or start again "
        "from the first page (an empty page_token)"
    )


# The listing a token names when it names none: tokens from before there was a
# second listing were all ListRooms', and stay valid there.
_FIRST_LISTING: Final = "ListRooms"


class PageTokens:
    """PageTokens seals AWS's nextToken with its listing and the filters' digest, and opens it."""

    __slots__ = ("_cipher", "_key")

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"a page token key is {KEY_BYTES} bytes")
        self._key = key
        self._cipher: AESGCM | None = None

    def _aead(self) -> AESGCM:
        if self._cipher is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            self._cipher = AESGCM(self._key)
        return self._cipher

    @classmethod
    def random(cls) -> PageTokens:
        """Tokens under a new key of this process's own."""
        return cls(new_key())

    def __repr__(self) -> str:
        return "PageTokens(<key hidden>)"

    def issue(self, aws_token: str, filters: Mapping[str, str], *, listing: str) -> str:
        """A page_token for AWS's nextToken from listing (ListRooms), bound to filters."""
        nonce = os.urandom(_NONCE_BYTES)
        body = {"n": aws_token, "f": filters_digest(filters)}
        if listing != _FIRST_LISTING:
            body["l"] = listing
        payload = json.dumps(body).encode()
        sealed = _VERSION + nonce + self._aead().encrypt(nonce, payload, _PURPOSE)
        return base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def open(self, token: str, filters: Mapping[str, str], *, listing: str) -> str:
        """AWS's nextToken inside token, if this service issued it from listing for filters.

        Raises BadPageToken otherwise, whose message is safe to show the caller.
        """
        if len(token) > MAX_TOKEN_CHARS:
            raise BadPageToken(NOT_OURS)
        try:
            sealed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise BadPageToken(NOT_OURS) from None
        if len(sealed) <= 1 + _NONCE_BYTES or sealed[:1] != _VERSION:
            raise BadPageToken(NOT_OURS)
        nonce, ciphertext = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
        cipher = self._aead()
        from cryptography.exceptions import InvalidTag

        try:
            payload = json.loads(cipher.decrypt(nonce, ciphertext, _PURPOSE))
        except InvalidTag:
            raise BadPageToken(NOT_OURS) from None
        issued_by = str(payload.get("l", _FIRST_LISTING))
        if issued_by != listing:
            raise BadPageToken(_other_listing(issued_by))
        if payload.get("f") != filters_digest(filters):
            raise BadPageToken(OTHER_FILTERS)
        return str(payload["n"])


def new_key() -> bytes:
    """A new random key: the OS's random bytes, as AESGCM.generate_key gives them."""
    return os.urandom(KEY_BYTES)
