"""The platform's Ed25519 signing key: from ``TIMEBANK_LEDGER_SIGNING_KEY`` (hex seed), or in the embedded
mode a key generated once under ``var/keys``. Only its public half is stored in the database."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from timebank.ledger import proofs
from timebank.ledger.models import SigningKey


@dataclass(frozen=True)
class PlatformKey:
    private: Ed25519PrivateKey
    public_hex: str
    key_id: str

    def sign(self, message: bytes) -> str:
        return proofs.sign(self.private, message)


@lru_cache(maxsize=2)
def _load(seed_hex: str) -> PlatformKey:
    try:
        private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed_hex))
    except ValueError as exc:
        raise ImproperlyConfigured(
            "TIMEBANK_LEDGER_SIGNING_KEY must be 64 hex digits (an Ed25519 seed)"
        ) from exc
    public_hex = proofs.public_key_hex(private)
    return PlatformKey(private, public_hex, proofs.key_id_of(public_hex))


def platform_key() -> PlatformKey:
    seed = settings.LEDGER_SIGNING_KEY
    if not seed:
        raise ImproperlyConfigured("LEDGER_SIGNING_KEY is empty: set TIMEBANK_LEDGER_SIGNING_KEY")
    key = _load(seed)
    if not SigningKey.objects.filter(key_id=key.key_id).exists():
        SigningKey.objects.get_or_create(key_id=key.key_id, defaults={"public_key": key.public_hex})
    return key


def public_keys() -> dict[str, str]:
    """The keys blocks may be signed with, by key id: the platform's own and the retired ones named in
    ``LEDGER_TRUSTED_PUBLIC_KEYS`` — from configuration, never from the database, which an intruder could
    fill with a key of their own."""
    trusted = [_load(settings.LEDGER_SIGNING_KEY).public_hex] if settings.LEDGER_SIGNING_KEY else []
    trusted += list(settings.LEDGER_TRUSTED_PUBLIC_KEYS)
    return {proofs.key_id_of(public): public for public in trusted}
