"""The elder's printed service card: a signed QR token naming the card, and numbered one-time codes.

The token is signed with the platform's secret, so it cannot be made up or altered; it names one card of one
elder, so a photo of somebody else's card checks in nobody (the service's elder must match), and reissuing a
card revokes it. The codes are derived from the card's serial with a keyed hash: printed once, never stored.
"""

from __future__ import annotations

from django.core import signing
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext as _

from timebank.common.errors import ValidationFailed
from timebank.common.pins import ascii_digits

TOKEN_SALT = "timebank.care.service-card"  # noqa: S105 (a signing namespace, not a secret)
CODE_SALT = "timebank.care.card-code"
CODES_PER_CARD = 20


def card_token(serial: str) -> str:
    return signing.dumps({"card": serial}, salt=TOKEN_SALT, compress=False)


def card_serial_from_token(token: str) -> str:
    try:
        data = signing.loads(token.strip(), salt=TOKEN_SALT)
    except signing.BadSignature as exc:
        raise ValidationFailed.field(
            "token",
            _("This is not a valid service card: the code was altered or is not one of ours."),
            code="care_card_invalid",
        ) from exc
    serial = data.get("card") if isinstance(data, dict) else None
    if not isinstance(serial, str):
        raise ValidationFailed.field(
            "token", _("This is not a valid service card."), code="care_card_invalid"
        )
    return serial


def card_code(serial: str, number: int) -> str:
    digest = salted_hmac(CODE_SALT, f"{serial}:{number}", algorithm="sha256").hexdigest()
    return f"{int(digest[:12], 16) % 1_000_000:06d}"


def card_codes(serial: str) -> list[tuple[int, str]]:
    return [(n, card_code(serial, n)) for n in range(1, CODES_PER_CARD + 1)]


def card_code_match(serial: str, code: str) -> int | None:
    """The number of the card's code that matches, or None."""
    code = ascii_digits(code)
    found = None
    for number, expected in card_codes(serial):
        # compare against every code, so the time taken does not tell which number matched
        if constant_time_compare(expected, code):
            found = number
    return found
