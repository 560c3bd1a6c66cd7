"""Field encryption for sensitive personal data, with a keyed hash for exact lookup.

Ciphertexts are Fernet tokens (AES-128-CBC + HMAC-SHA256) under the first of ``FIELD_ENCRYPTION_KEYS``;
older keys still decrypt, so keys can be rotated. The lookup hash is HMAC-SHA256 under
``FIELD_HASH_KEY``: equal values can be found without storing them in the clear.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty: set TIMEBANK_FIELD_KEYS")
    return MultiFernet([Fernet(k.encode()) for k in keys])


def encrypt_text(value: str) -> str:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).encrypt(value.encode()).decode()


def decrypt_text(token: str) -> str:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).decrypt(token.encode()).decode()


def lookup_hash(value: str) -> str:
    key = settings.FIELD_HASH_KEY
    if not key:
        raise ImproperlyConfigured("FIELD_HASH_KEY is empty: set TIMEBANK_FIELD_HASH_KEY")
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()
