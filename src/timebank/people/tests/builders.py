"""Members and staff for the people tests, built through the real services."""

from __future__ import annotations

import datetime as dt
from itertools import count
from typing import Any

from timebank.conftest import make_id_number, staff
from timebank.people import services as people
from timebank.people.models import Member, User
from timebank.regions.models import Region

_serials = count(20)
_mobiles = count(13800000001)


def next_mobile() -> str:
    return str(next(_mobiles))


def register(
    actor: User,
    region: Region,
    *,
    name: str = "测试会员",
    birth: dt.date = dt.date(1950, 1, 1),
    sex: str = "F",
    **extra: Any,
) -> Member:
    """A member of ``region`` with a fresh valid ID number issued in the region's district."""
    extra.setdefault("mobile", next_mobile())
    extra.setdefault("id_number", make_id_number(birth, sex, region.code[:6], serial=next(_serials)))
    return people.member_register(actor=actor, name=name, home_region=region, **extra)


def grant_user(admin: User, role: str, region: Region, *, username: str | None = None) -> User:
    """A fresh staff sign-in holding ``role`` at ``region`` (reloaded, so no grant cache is carried over)."""
    return staff(admin, username or f"{role}-{region.code}-{next(_serials)}", role, region)


def reload(user: User) -> User:
    """The user as a new request would see them: grants are read again."""
    return User.objects.get(pk=user.pk)
