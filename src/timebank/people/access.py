"""The one permission layer. Every view, API endpoint and command asks here.

A staff grant gives its role's permissions on a region node and everything below it. Platform
administrators (Django superusers) hold every permission everywhere. Members act for themselves.
"""

from __future__ import annotations

from enum import StrEnum

from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from timebank.common.errors import PermissionDenied
from timebank.people.models import Member, Role, StaffGrant, User
from timebank.regions.models import Region


class Perm(StrEnum):
    PEOPLE_VIEW = "people.view"
    PEOPLE_MANAGE = "people.manage"
    PEOPLE_VERIFY = "people.verify"
    PEOPLE_UNMASK = "people.unmask"
    AUDIT_VIEW = "audit.view"
    STAFF_GRANT = "staff.grant"
    POLICIES_MANAGE = "policies.manage"
    REGIONS_MANAGE = "regions.manage"
    CARE_VIEW = "care.view"
    CARE_MANAGE = "care.manage"
    CARE_REVIEW = "care.review"
    FUNDS_MANAGE = "funds.manage"
    EXCHANGE_MANAGE = "exchange.manage"
    MERCHANTS_MANAGE = "merchants.manage"


_STATION = frozenset(
    {
        Perm.PEOPLE_VIEW,
        Perm.PEOPLE_MANAGE,
        Perm.PEOPLE_VERIFY,
        Perm.PEOPLE_UNMASK,
        Perm.AUDIT_VIEW,
        Perm.CARE_VIEW,
        Perm.CARE_MANAGE,
        Perm.CARE_REVIEW,
        Perm.EXCHANGE_MANAGE,
    }
)

ROLE_PERMISSIONS: dict[str, frozenset[Perm]] = {
    Role.STATION_STAFF: _STATION,
    Role.COMMUNITY_STAFF: _STATION,
    # Operators set up stations and their staff, so they hold everything station staff hold (a role can
    # only be granted by someone holding all its permissions).
    Role.OPERATOR: _STATION | {Perm.STAFF_GRANT, Perm.FUNDS_MANAGE, Perm.MERCHANTS_MANAGE},
    Role.AUDITOR: frozenset({Perm.PEOPLE_VIEW, Perm.AUDIT_VIEW, Perm.CARE_VIEW}),
    Role.PLATFORM_ADMIN: frozenset(Perm),
    Role.MERCHANT_STAFF: frozenset(),
}

_CACHE_ATTR = "_timebank_grant_paths"


def access_paths(user: User | None, perm: Perm) -> list[str] | None:
    """The region paths where ``user`` holds ``perm``; ``None`` means everywhere (platform admins)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return []
    if user.is_superuser:
        return None
    cache: dict[Perm, list[str] | None] | None = getattr(user, _CACHE_ATTR, None)
    if cache is None:
        grants = list(
            StaffGrant.objects.filter(user=user, revoked_at__isnull=True).values_list("role", "region__path")
        )
        cache = {}
        for p in Perm:
            roles = [(role, path) for role, path in grants if p in ROLE_PERMISSIONS.get(role, frozenset())]
            if any(role == Role.PLATFORM_ADMIN for role, _path in roles):
                cache[p] = None
            else:
                cache[p] = _outermost(path for _role, path in roles)
        setattr(user, _CACHE_ATTR, cache)
    return cache[perm]


def access_forget(user: User) -> None:
    """Drop the per-request cache of a user's grants (after granting or revoking)."""
    if hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)


def _outermost(paths: object) -> list[str]:
    result: list[str] = []
    for path in sorted(set(paths)):  # type: ignore[call-overload]
        if not any(path.startswith(kept) for kept in result):
            result.append(path)
    return result


def access_has(user: User | None, perm: Perm, region: Region) -> bool:
    paths = access_paths(user, perm)
    return paths is None or any(region.path.startswith(p) for p in paths)


def access_check(user: User | None, perm: Perm, region: Region) -> None:
    if not access_has(user, perm, region):
        raise PermissionDenied(_("This is outside the regions you may act on."))


def access_anywhere(user: User | None, perm: Perm) -> bool:
    """Whether the user holds ``perm`` on at least one region (platform admins: everywhere)."""
    paths = access_paths(user, perm)
    return paths is None or bool(paths)


def access_is_staff(user: User | None) -> bool:
    """Anyone who may look into the console: a platform admin or anyone whose grant shows people."""
    return access_anywhere(user, Perm.PEOPLE_VIEW)


def access_region_q(user: User | None, perm: Perm, path_field: str) -> Q:
    """A filter that keeps rows whose region path (``path_field``) lies in the user's scope for ``perm``."""
    paths = access_paths(user, perm)
    if paths is None:
        return Q()
    if not paths:
        return Q(pk__in=[])
    q = Q()
    for path in paths:
        q |= Q(**{f"{path_field}__startswith": path})
    return q


def access_member_view(user: User | None, member: Member) -> bool:
    """Members see themselves; staff see members of their subtree."""
    if user is not None and user.is_authenticated and user.member_id == member.pk:
        return True
    return access_has(user, Perm.PEOPLE_VIEW, member.home_region)


def access_member_check(user: User | None, member: Member, perm: Perm) -> None:
    if perm == Perm.PEOPLE_VIEW and access_member_view(user, member):
        return
    access_check(user, perm, member.home_region)
