"""Validation of Chinese mobile numbers and resident ID numbers (GB 11643-1999)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from django.utils.translation import gettext as _

from timebank.regions.codes import PROVINCE_PREFIXES

_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


class InvalidValue(ValueError):
    """A value that breaks a format rule; the message says which rule, in the user's language."""


def normalize_mobile(raw: str) -> str:
    """``+86 139-1234-5678`` → ``13912345678``. Raises InvalidValue naming the rule."""
    value = re.sub(r"[\s-]", "", raw or "")
    if value.startswith("+86"):
        value = value[3:]
    elif value.startswith("0086"):
        value = value[4:]
    if not value.isascii() or not value.isdigit():
        raise InvalidValue(_("A mobile number has only digits (an optional +86 in front)."))
    if len(value) != 11:
        raise InvalidValue(_("A mobile number has 11 digits, this one has %(n)d.") % {"n": len(value)})
    if not _MOBILE.match(value):
        raise InvalidValue(_("A mobile number starts with 13 to 19."))
    return value


def id_check_digit(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


@dataclass(frozen=True)
class IdNumber:
    number: str
    birth_date: dt.date
    sex: str  # "M" or "F"

    @property
    def masked(self) -> str:
        return mask_id_number(self.number)


def mask_id_number(number: str) -> str:
    """``310101194912310021`` → ``3101**********0021``."""
    return number[:4] + "*" * (len(number) - 8) + number[-4:]


def parse_id_number(raw: str, *, today: dt.date | None = None) -> IdNumber:
    """Check an 18-character resident ID number and derive the birth date and sex from it."""
    value = (raw or "").strip().upper()
    if len(value) != 18:
        raise InvalidValue(
            _("A resident ID number has 18 characters, this one has %(n)d.") % {"n": len(value)}
        )
    first17, last = value[:17], value[17]
    if not first17.isascii() or not first17.isdigit() or not (last.isdigit() or last == "X"):
        raise InvalidValue(_("A resident ID number is 17 digits followed by a digit or X."))
    if first17[:2] not in PROVINCE_PREFIXES:
        raise InvalidValue(
            _("The first two digits “%(prefix)s” are not a province code.") % {"prefix": first17[:2]}
        )
    try:
        birth = dt.date(int(first17[6:10]), int(first17[10:12]), int(first17[12:14]))
    except ValueError as exc:
        raise InvalidValue(_("Digits 7 to 14 are not a real birth date.")) from exc
    today = today or dt.date.today()  # noqa: DTZ011 - a calendar date, the zone does not matter here
    if birth.year < 1900 or birth > today:
        raise InvalidValue(_("The birth date in the ID number is not plausible."))
    expected = id_check_digit(first17)
    if last != expected:
        raise InvalidValue(
            _("The check digit is wrong: the last character should be %(expected)s.") % {"expected": expected}
        )
    return IdNumber(number=value, birth_date=birth, sex="M" if int(first17[16]) % 2 else "F")


def age_on(birth_date: dt.date, day: dt.date) -> int:
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))
