"""Who may read and change whom: a grant covers its node's subtree and nothing else, and each role carries
its own permissions. Every object type is checked: members, priority statuses, family bonds, staff grants
and audit events."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from timebank.audit.models import AuditEvent
from timebank.audit.selectors import audit_events_visible
from timebank.common.errors import NotFound, PermissionDenied
from timebank.conftest import PASSWORD
from timebank.people import services as people
from timebank.people.access import access_is_staff
from timebank.people.models import (
    FamilyBond,
    Member,
    PriorityGroup,
    PriorityStatus,
    Relation,
    Role,
    StaffGrant,
    User,
)
from timebank.people.selectors import bond_get, bonds_pending, grants_visible, member_get, members_visible
from timebank.people.tests.builders import grant_user, next_mobile, register, reload
from timebank.regions.models import Region


@dataclass
class Community:
    region: Region
    staff: User
    elder: Member  # with health notes and a verified "advanced age" priority status
    relative: Member
    neighbour: Member
    bond: FamilyBond  # proposed: relative is elder's child
    grant: StaffGrant  # a station-staff grant on the community

    @property
    def members(self) -> set[Member]:
        return {self.elder, self.relative, self.neighbour}

    def events(self) -> list[AuditEvent]:
        return list(AuditEvent.objects.filter(region_path__startswith=self.region.path))


def build_community(admin: User, staff: User, elder: Member) -> Community:
    region = elder.home_region
    people.member_update(actor=staff, member=elder, changes={"health_notes": "需要轮椅"})
    relative = register(staff, region, name=f"{elder.name}之子", birth=dt.date(1968, 4, 4), sex="M")
    neighbour = register(
        staff, region, name=f"{elder.name}之邻", birth=dt.date(1958, 8, 8), is_volunteer=True
    )
    helper = grant_user(admin, Role.STATION_STAFF, region)
    # proposed by a colleague: nobody decides a bond they proposed themselves
    bond = people.family_bond_propose(actor=helper, member=elder, relative=relative, relation=Relation.CHILD)
    people.priority_group_verify(actor=staff, member=elder, group=PriorityGroup.ADVANCED_AGE)
    return Community(
        region, staff, Member.objects.get(pk=elder.pk), relative, neighbour, bond, helper.grants.get()
    )


@pytest.fixture
def yandang(admin_user, yandang_staff, elder) -> Community:
    return build_community(admin_user, yandang_staff, elder)


@pytest.fixture
def jinyang(admin_user, jinyang_staff, jinyang_elder) -> Community:
    return build_community(admin_user, jinyang_staff, jinyang_elder)


# Every write about people, aimed at one community's people and objects.
WRITES: dict[str, Callable[[User, Community], Any]] = {
    "member_register": lambda actor, c: people.member_register(
        actor=actor, name="新会员", home_region=c.region, mobile=next_mobile()
    ),
    "member_update": lambda actor, c: people.member_update(
        actor=actor, member=c.elder, changes={"address": "新地址 9 号"}
    ),
    "member_id_number_reveal": lambda actor, c: people.member_id_number_reveal(actor=actor, member=c.elder),
    "member_health_notes_reveal": lambda actor, c: people.member_health_notes_reveal(
        actor=actor, member=c.elder
    ),
    "member_sign_in_create": lambda actor, c: people.member_sign_in_create(
        actor=actor, member=c.neighbour, username=f"neighbour-{c.region.code}", password=PASSWORD
    ),
    "priority_group_verify": lambda actor, c: people.priority_group_verify(
        actor=actor, member=c.elder, group=PriorityGroup.LIVING_ALONE
    ),
    "priority_group_revoke": lambda actor, c: people.priority_group_revoke(
        actor=actor, member=c.elder, group=PriorityGroup.ADVANCED_AGE, reason="复核不符"
    ),
    "family_bond_propose": lambda actor, c: people.family_bond_propose(
        actor=actor, member=c.elder, relative=c.neighbour, relation=Relation.FRIEND
    ),
    "family_bond_decide": lambda actor, c: people.family_bond_decide(actor=actor, bond=c.bond, approve=True),
}


def snapshot() -> tuple[int, ...]:
    """Counts that any of the writes would move."""
    return (
        Member.objects.count(),
        AuditEvent.objects.count(),
        User.objects.count(),
        FamilyBond.objects.count(),
        FamilyBond.objects.filter(status="proposed").count(),
        Member.objects.filter(address="新地址 9 号").count(),
        PriorityStatus.objects.count(),
        PriorityStatus.objects.filter(verified_at__isnull=False).count(),
    )


# --- one community's staff and the other community ------------------------------------------------


@pytest.mark.parametrize("write", list(WRITES))
def test_staff_may_not_change_another_communitys_people(yandang_staff, yandang, jinyang, write):
    # given
    before = snapshot()

    # when / then
    with pytest.raises(PermissionDenied):
        WRITES[write](yandang_staff, jinyang)
    assert snapshot() == before


@pytest.mark.parametrize("write", list(WRITES))
def test_staff_may_change_their_own_communitys_people(yandang_staff, yandang, jinyang, write):
    # given
    events_before = len(yandang.events())

    # when
    WRITES[write](yandang_staff, yandang)

    # then the change is logged in the community
    assert len(yandang.events()) == events_before + 1


def test_staff_see_only_their_own_communitys_members(yandang_staff, yandang, jinyang):
    # when
    visible = set(members_visible(yandang_staff))
    searched = set(members_visible(yandang_staff, search=jinyang.elder.name))

    # then
    assert visible == yandang.members
    assert searched == set()


def test_staff_get_their_own_members_and_not_found_for_the_others(yandang_staff, yandang, jinyang):
    # when / then
    for member in yandang.members:
        assert member_get(yandang_staff, member.pk) == member
    for member in jinyang.members:
        with pytest.raises(NotFound) as exc:
            member_get(yandang_staff, member.pk)
        assert exc.value.code == "member_not_found"


def test_another_communitys_member_is_indistinguishable_from_a_missing_one(yandang_staff, jinyang):
    # given
    missing = Member.objects.order_by("-pk")[0].pk + 1000

    # when
    with pytest.raises(NotFound) as other:
        member_get(yandang_staff, jinyang.elder.pk)
    with pytest.raises(NotFound) as absent:
        member_get(yandang_staff, missing)

    # then
    assert other.value.as_dict() == absent.value.as_dict()


def test_staff_see_only_their_own_communitys_bonds(yandang_staff, yandang, jinyang):
    # when / then
    assert bond_get(yandang_staff, yandang.bond.pk) == yandang.bond
    with pytest.raises(NotFound) as exc:
        bond_get(yandang_staff, jinyang.bond.pk)
    assert exc.value.code == "bond_not_found"
    assert list(bonds_pending(yandang_staff)) == [yandang.bond]


def test_a_bond_across_communities_is_seen_from_both_sides_but_not_the_other_member(
    yandang_staff,
    jinyang_staff,
    yandang,
    jinyang,
):
    # given
    bond = people.family_bond_propose(
        actor=yandang_staff, member=yandang.elder, relative=jinyang.neighbour, relation=Relation.SIBLING
    )

    # when / then
    assert bond_get(yandang_staff, bond.pk) == bond
    assert bond_get(jinyang_staff, bond.pk) == bond
    with pytest.raises(NotFound):
        member_get(yandang_staff, jinyang.neighbour.pk)


def test_staff_see_only_their_own_communitys_audit_events(yandang_staff, yandang, jinyang):
    # given both communities have a history
    assert yandang.events() and jinyang.events()

    # when
    visible = list(audit_events_visible(yandang_staff))

    # then
    assert set(visible) == set(yandang.events())
    assert not any(e.region_path.startswith(jinyang.region.path) for e in visible)
    assert not audit_events_visible(
        yandang_staff, subject_type="people.member", subject_id=str(jinyang.elder.pk)
    )


def test_community_staff_see_and_manage_no_grants(yandang_staff, yandang, jinyang):
    # when / then
    assert list(grants_visible(yandang_staff)) == []
    for grant in (yandang.grant, jinyang.grant):
        with pytest.raises(PermissionDenied):
            people.staff_grant_revoke(actor=yandang_staff, grant=grant)
    assert not StaffGrant.objects.filter(revoked_at__isnull=False).exists()


@pytest.fixture
def yandang_operator(admin_user, tree) -> User:
    return grant_user(admin_user, Role.OPERATOR, tree["310101023001"], username="yandang-operator")


def test_an_operator_sees_and_revokes_only_their_own_communitys_grants(yandang_operator, yandang, jinyang):
    # when
    visible = set(grants_visible(yandang_operator))

    # then
    assert yandang.grant in visible and jinyang.grant not in visible
    assert all(g.region.path.startswith(yandang.region.path) for g in visible)
    with pytest.raises(PermissionDenied):
        people.staff_grant_revoke(actor=yandang_operator, grant=jinyang.grant)
    assert StaffGrant.objects.get(pk=jinyang.grant.pk).revoked_at is None
    people.staff_grant_revoke(actor=yandang_operator, grant=yandang.grant)
    assert StaffGrant.objects.get(pk=yandang.grant.pk).revoked_at is not None


def test_an_operator_grants_only_in_their_own_community(admin_user, yandang_operator, yandang, jinyang):
    # given
    user = people.staff_user_create(actor=yandang_operator, username="new-hire", password=PASSWORD)

    # when / then
    with pytest.raises(PermissionDenied):
        people.staff_grant_create(
            actor=yandang_operator, user=user, role=Role.STATION_STAFF, region=jinyang.region
        )
    people.staff_grant_create(
        actor=yandang_operator, user=user, role=Role.STATION_STAFF, region=yandang.region
    )
    assert [g.region for g in StaffGrant.objects.filter(user=user)] == [yandang.region]


# --- the roles, granted on the same node ----------------------------------------------------------

CAPABILITIES = ("view", "manage", "verify", "unmask", "audit", "grant")
MAY: dict[str, set[str]] = {
    Role.STATION_STAFF: {"view", "manage", "verify", "unmask", "audit"},
    Role.COMMUNITY_STAFF: {"view", "manage", "verify", "unmask", "audit"},
    Role.OPERATOR: {"view", "manage", "verify", "unmask", "audit", "grant"},  # grants only what it holds
    Role.AUDITOR: {"view", "audit"},
    Role.MERCHANT_STAFF: set(),
}


def refused(action: Callable[[], Any]) -> bool:
    try:
        action()
    except (PermissionDenied, NotFound):
        return True
    return False


def probe(capability: str, actor: User, c: Community, admin: User) -> bool:
    """Whether ``actor`` could exercise ``capability`` on community ``c`` (every object type it covers)."""
    if capability == "view":
        results = {
            c.elder in members_visible(actor),
            not refused(lambda: member_get(actor, c.elder.pk)),
            not refused(lambda: bond_get(actor, c.bond.pk)),
        }
    elif capability == "manage":
        results = {
            not refused(lambda: people.member_update(actor=actor, member=c.elder, changes={"address": "改"})),
            not refused(
                lambda: people.family_bond_propose(
                    actor=actor, member=c.elder, relative=c.neighbour, relation=Relation.FRIEND
                )
            ),
            not refused(lambda: WRITES["member_register"](actor, c)),
        }
    elif capability == "verify":
        results = {
            not refused(
                lambda: people.priority_group_verify(
                    actor=actor, member=c.elder, group=PriorityGroup.DISABLED
                )
            ),
            not refused(lambda: people.family_bond_decide(actor=actor, bond=c.bond, approve=True)),
        }
    elif capability == "unmask":
        results = {
            not refused(lambda: people.member_id_number_reveal(actor=actor, member=c.elder)),
            not refused(lambda: people.member_health_notes_reveal(actor=actor, member=c.elder)),
        }
    elif capability == "audit":
        results = {bool(set(c.events()) & set(audit_events_visible(actor)))}
    else:
        newcomer = people.staff_user_create(
            actor=admin, username=f"newcomer-{c.region.code}", password=PASSWORD
        )
        results = {
            c.grant in grants_visible(actor),
            not refused(
                lambda: people.staff_grant_create(
                    actor=actor, user=newcomer, role=Role.AUDITOR, region=c.region
                )
            ),
            not refused(lambda: people.staff_grant_revoke(actor=actor, grant=c.grant)),
        }
    assert len(results) == 1, f"{capability} is only partly allowed: the permission is applied unevenly"
    return results.pop()


@pytest.mark.parametrize("capability", CAPABILITIES)
@pytest.mark.parametrize("role", list(MAY))
def test_each_role_may_do_what_it_is_for_in_its_community(admin_user, tree, yandang, role, capability):
    # given
    actor = grant_user(admin_user, role, tree["310101023001"])

    # when
    allowed = probe(capability, actor, yandang, admin_user)

    # then
    assert allowed == (capability in MAY[role])


@pytest.mark.parametrize("capability", CAPABILITIES)
@pytest.mark.parametrize("role", list(MAY))
def test_no_role_reaches_into_another_community(admin_user, tree, yandang, jinyang, role, capability):
    # given
    actor = grant_user(admin_user, role, tree["310101023001"])

    # when / then
    assert probe(capability, actor, jinyang, admin_user) is False


def test_merchant_staff_see_no_people(admin_user, tree, yandang):
    # given
    merchant = grant_user(admin_user, Role.MERCHANT_STAFF, tree["310101"])

    # when / then
    assert not access_is_staff(merchant)
    assert list(members_visible(merchant)) == []
    assert list(audit_events_visible(merchant)) == []


# --- wider and narrower grants --------------------------------------------------------------------


def test_a_district_grant_covers_every_community_below_it(admin_user, tree, yandang, jinyang):
    # given
    maoming_member = register(admin_user, tree["310101023002"], name="茂名会员")
    district_staff = grant_user(admin_user, Role.COMMUNITY_STAFF, tree["310101"])

    # when
    visible = set(members_visible(district_staff))

    # then
    assert visible == yandang.members | {maoming_member}
    assert set(members_visible(district_staff, region=tree["310101023002"])) == {maoming_member}
    for member in visible:
        assert member_get(district_staff, member.pk) == member
    people.member_update(actor=district_staff, member=maoming_member, changes={"address": "茂名北路"})
    assert all(
        probe(cap, district_staff, yandang, admin_user) for cap in ("view", "manage", "verify", "unmask")
    )
    assert not any(probe(cap, district_staff, jinyang, admin_user) for cap in ("view", "manage", "verify"))


def test_a_street_grant_does_not_cover_its_sibling_street(admin_user, tree, yandang, jinyang):
    # given
    street_staff = grant_user(admin_user, Role.STATION_STAFF, tree["310109018"])

    # when / then
    assert set(members_visible(street_staff)) == jinyang.members
    assert not probe("view", street_staff, yandang, admin_user)


def test_a_platform_admin_sees_and_manages_everything(admin_user, yandang, jinyang):
    # when / then
    assert set(members_visible(admin_user)) == yandang.members | jinyang.members
    assert set(audit_events_visible(admin_user)) == set(AuditEvent.objects.all())
    for c in (yandang, jinyang):
        assert all(probe(cap, admin_user, c, admin_user) for cap in CAPABILITIES)


def test_a_platform_admin_grant_reaches_everywhere_whatever_its_node(admin_user, tree, yandang, jinyang):
    # given
    boss = grant_user(admin_user, Role.PLATFORM_ADMIN, tree["310101023001"])

    # when / then
    assert set(members_visible(boss)) == yandang.members | jinyang.members
    assert all(probe(cap, boss, jinyang, admin_user) for cap in CAPABILITIES)


def test_a_revoked_grant_gives_nothing(admin_user, yandang_staff, yandang, jinyang):
    # given
    people.staff_grant_revoke(actor=admin_user, grant=yandang_staff.grants.get())

    # when
    actor = reload(yandang_staff)

    # then
    assert not access_is_staff(actor)
    assert list(members_visible(actor)) == []
    assert list(audit_events_visible(actor)) == []
    assert not any(probe(cap, actor, yandang, admin_user) for cap in CAPABILITIES)


def test_a_revoked_grant_leaves_the_users_other_grants_in_force(admin_user, tree, yandang, jinyang):
    # given
    actor = grant_user(admin_user, Role.COMMUNITY_STAFF, tree["310101023001"])
    people.staff_grant_create(
        actor=admin_user, user=actor, role=Role.COMMUNITY_STAFF, region=tree["310109018021"]
    )

    # when
    people.staff_grant_revoke(actor=admin_user, grant=actor.grants.get(region=tree["310101023001"]))
    actor = reload(actor)

    # then
    assert set(members_visible(actor)) == jinyang.members
    assert not probe("view", actor, yandang, admin_user)
