"""How a device signs an event and a gateway signs an MQTT frame — pure Python, no Django.

The canonical payload of an event is one line of text, cheap for a wristband to build and for the server
to rebuild::

    <device>|<seq>|<ts>|<battery>|<peer>:<rssi>,<peer>:<rssi>,...

``battery`` is empty when the event carries none; peers are in the order sent, and an event that saw no peer
ends in ``|``. Example: ``wb-00017|42|1764900000123|87|wb-00031:-58,bc-00002:-71``. Identifiers are 1–64 of
``A–Z a–z 0–9 . _ -``, so the separators cannot occur inside a field: a device must leave out (not sign) a
peer advertising any other name — signed as is, ``a:1,b`` seen at −60 would read the same as two peers.

The signature (``sig``) is lowercase hex: HMAC-SHA256 of the UTF-8 payload under the device's secret, or the
Ed25519 signature of it under the device's private key.

An MQTT frame is ``<hex HMAC-SHA256 of the JSON bytes under the gateway's token>`` ``\\n`` ``<JSON bytes>``:
the gateway proves it is itself without putting its token on the wire.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

IDENTIFIER = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
Peers = Sequence[tuple[str, int] | list[str | int]]


def canonical(device: str, seq: int, ts: int, battery: int | None, peers: Peers) -> bytes:
    for peer, _rssi in peers:
        if not isinstance(peer, str) or not IDENTIFIER.match(peer):
            raise ValueError(f"not a device identifier: {peer!r}")
    joined = ",".join([f"{peer}:{rssi}" for peer, rssi in peers])
    return f"{device}|{seq}|{ts}|{'' if battery is None else battery}|{joined}".encode()


def hmac_sign(secret: bytes, payload: bytes) -> str:
    return hmac.digest(secret, payload, "sha256").hex()


def ed25519_sign(private: Ed25519PrivateKey, payload: bytes) -> str:
    return private.sign(payload).hex()


def event_sign(
    *,
    device: str,
    seq: int,
    ts: int,
    peers: Peers,
    battery: int | None = None,
    secret: bytes | None = None,
    private: Ed25519PrivateKey | None = None,
) -> dict[str, object]:
    """One event as a device sends it (the wire format of ``ingest``), signed with ``secret`` (HMAC) or
    ``private`` (Ed25519)."""
    payload = canonical(device, seq, ts, battery, peers)
    if secret is not None:
        sig = hmac_sign(secret, payload)
    elif private is not None:
        sig = ed25519_sign(private, payload)
    else:
        raise ValueError("a secret or a private key")
    event: dict[str, object] = {"device": device, "seq": seq, "ts": ts, "peers": [list(p) for p in peers]}
    if battery is not None:
        event["battery"] = battery
    event["sig"] = sig
    return event


def frame_key(token: str) -> bytes:
    """The key a gateway signs its MQTT frames with: its bearer token (``tb_<prefix>_<secret>``)."""
    return token.encode()


def frame_sign(token: str, body: bytes) -> bytes:
    """An MQTT frame: the MAC line, then the JSON batch."""
    return hashlib_hex(frame_key(token), body).encode() + b"\n" + body


def hashlib_hex(key: bytes, body: bytes) -> str:
    return hmac.new(key, body, hashlib.sha256).hexdigest()
