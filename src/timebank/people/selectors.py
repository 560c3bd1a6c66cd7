from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from timebank.common.errors import NotFound, PermissionDenied, ValidationFailed
from timebank.people.access import Perm, access_is_staff, access_member_view, access_region_q
from timebank.people.models import BondStatus, FamilyBond, Member, PriorityStatus, Relation, StaffGrant, User
from timebank.people.validators import InvalidValue, normalize_mobile
from timebank.regions.models import Region


def members_visible(
    user: User, *, region: Region | None = None, search: str = "", role: str = ""
) -> QuerySet[Member]:
    """Members the user may see (their subtree), optionally inside ``region``, matching a name or mobile."""
    qs = Member.objects.filter(access_region_q(user, Perm.PEOPLE_VIEW, "home_region__path"))
    if region is not None:
        qs = qs.filter(home_region__path__startswith=region.path)
    search = search.strip()
    if search:
        qs = qs.filter(Q(name__icontains=search) | Q(mobile__startswith=search))
    if role == "volunteer":
        qs = qs.filter(is_volunteer=True)
    elif role == "elder":
        qs = qs.filter(is_elder=True)
    return qs.select_related("home_region").order_by("name", "id")


def member_get(user: User, member_id: int) -> Member:
    """A member the user may see; another community's member is reported as not found, revealing nothing."""
    member = Member.objects.select_related("home_region").filter(pk=member_id).first()
    if member is None or not access_member_view(user, member):
        raise NotFound(code="member_not_found")
    return member


def member_priority_statuses(member: Member) -> QuerySet[PriorityStatus]:
    return member.priority_statuses.select_related("verified_by").order_by("group")


@dataclass(frozen=True)
class BondView:
    bond: FamilyBond
    other: Member
    relation_label: str


def member_bonds(member: Member) -> list[BondView]:
    """The member's family as they would describe it: each other person and what they are to the member."""
    bonds = (
        FamilyBond.objects.filter(Q(member=member) | Q(relative=member))
        .exclude(status=BondStatus.REJECTED)
        .select_related("member", "relative", "decided_by")
        .order_by("-proposed_at")
    )
    views = []
    for bond in bonds:
        other, relation = bond.seen_from(member)
        views.append(BondView(bond=bond, other=other, relation_label=str(Relation(relation).label)))
    return views


def bonds_pending(user: User) -> QuerySet[FamilyBond]:
    scope = access_region_q(user, Perm.PEOPLE_VERIFY, "member__home_region__path") | access_region_q(
        user, Perm.PEOPLE_VERIFY, "relative__home_region__path"
    )
    return (
        FamilyBond.objects.filter(scope, status=BondStatus.PROPOSED)
        .select_related("member", "relative", "proposed_by")
        .order_by("proposed_at")
    )


def bond_get(user: User, bond_id: int) -> FamilyBond:
    bond = (
        FamilyBond.objects.select_related("member__home_region", "relative__home_region")
        .filter(pk=bond_id)
        .first()
    )
    if bond is None or not (access_member_view(user, bond.member) or access_member_view(user, bond.relative)):
        raise NotFound(code="bond_not_found")
    return bond


def grants_visible(user: User) -> QuerySet[StaffGrant]:
    return (
        StaffGrant.objects.filter(
            access_region_q(user, Perm.STAFF_GRANT, "region__path"), revoked_at__isnull=True
        )
        .select_related("user", "region")
        .order_by("region__path", "user__username")
    )


def user_grants(user: User) -> QuerySet[StaffGrant]:
    return (
        StaffGrant.objects.filter(user=user, revoked_at__isnull=True)
        .select_related("region")
        .order_by("region__path")
    )


def require_staff(user: User) -> None:
    if not access_is_staff(user):
        raise PermissionDenied()


def member_find_for_bond(*, name: str, mobile: str) -> Member:
    """The relative named in a bond request: found only by their exact name and mobile number together,
    so that nobody can browse other communities' members through this form."""
    try:
        number = normalize_mobile(mobile)
    except InvalidValue as exc:
        raise ValidationFailed.field("relative_mobile", str(exc)) from exc
    member = Member.objects.filter(mobile=number, name=name.strip(), is_active=True).first()
    if member is None:
        raise ValidationFailed.field(
            "relative_mobile",
            _("No active member has this name and mobile number."),
            code="relative_not_found",
        )
    return member


def grant_get(user: User, grant_id: int) -> StaffGrant:
    """A live grant inside the user's granting scope; others are reported as not found."""
    grant = grants_visible(user).filter(pk=grant_id).first()
    if grant is None:
        raise NotFound(code="grant_not_found")
    return grant


def staff_user_get(user: User, user_id: int) -> User:
    """A staff member holding a live grant inside the user's granting scope, to grant them another role;
    anyone else is reported as not found, so that nobody learns of sign-ins outside their scope."""
    grant = grants_visible(user).filter(user_id=user_id).first()
    if grant is None:
        raise NotFound(code="staff_user_not_found")
    return grant.user


def station_phone(region: Region) -> str:
    """The number an elder calls for help: the mobile of the staff nearest to their community (a grant on the
    community itself first, then its street's station), or "" if none is on record."""
    grants = (
        StaffGrant.objects.filter(
            revoked_at__isnull=True,
            region__path__in=region.ancestor_paths,
            role__in=["station_staff", "community_staff"],
        )
        .exclude(user__mobile__isnull=True)
        .exclude(user__mobile="")
        .select_related("user", "region")
    )
    nearest = sorted(grants, key=lambda g: (-g.region.depth, g.pk))
    return nearest[0].user.mobile or "" if nearest else ""
