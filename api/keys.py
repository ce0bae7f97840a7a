"""API keys: generation, keyed-hash lookup and encryption at rest.

A key is `tt_` + 32 URL-safe random characters (`secrets.token_urlsafe(24)` is
exactly 32 characters: 24 bytes -> 32 base64url symbols, about 192 bits).
The database never holds it in plain text:

* `api_key_hash` = HMAC-SHA256(TINYTRAIL_SECRET_KEY, key), unique-indexed: how a
  request's `X-API-KEY` finds its user. A database dump without the secret cannot
  be used to test guesses.
* `api_key_enc` = nonce (12 bytes) || AES-256-GCM(k, key), with
  k = HKDF-SHA256(secret, info="tinytrail api-key encryption v1"): what
  `GET /api/v1/users/:id/api-key` decrypts. The user id is the associated data,
  so a ciphertext copied onto another user's row does not decrypt.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_PREFIX = "tt_"
KEY_RE = re.compile(r"^tt_[A-Za-z0-9_-]{32}$")
_NONCE = 12


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(24)


def looks_like_key(value: str) -> bool:
    """Cheap shape check so that junk never reaches the database."""
    return bool(KEY_RE.match(value))


def key_hash(secret: str, key: str) -> bytes:
    return hmac.new(secret.encode(), key.encode(), hashlib.sha256).digest()


def hashes_equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def _aead(secret: str) -> AESGCM:
    k = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"tinytrail api-key encryption v1"
    ).derive(secret.encode())
    return AESGCM(k)


def encrypt_key(secret: str, key: str, user_id: str) -> bytes:
    nonce = os.urandom(_NONCE)
    return nonce + _aead(secret).encrypt(nonce, key.encode(), user_id.encode())


def decrypt_key(secret: str, blob: bytes, user_id: str) -> str:
    """Raises `cryptography.exceptions.InvalidTag` if the secret or the row changed."""
    blob = bytes(blob)
    return _aead(secret).decrypt(blob[:_NONCE], blob[_NONCE:], user_id.encode()).decode()
