"""Priority groups verified by staff, and family bonds proposed by members or staff and decided by staff."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from timebank.audit.models import AuditEvent
from timebank.common.errors import Conflict, PermissionDenied, ValidationFailed
from timebank.conftest import PASSWORD
from timebank.people import services as people
from timebank.people.models import BondStatus, FamilyBond, PriorityGroup, PriorityStatus, Relation
from timebank.people.selectors import bonds_pending, member_bonds, member_priority_statuses
from timebank.people.tests.builders import register

# --- priority groups ------------------------------------------------------------------------------


def test_staff_verify_a_priority_group_and_who_and_when_are_kept(yandang_staff, elder):
    # given
    before = timezone.now()

    # when
    status = people.priority_group_verify(
        actor=yandang_staff, member=elder, group=PriorityGroup.LIVING_ALONE, note=" 独居 "
    )

    # then
    status = PriorityStatus.objects.get(pk=status.pk)
    assert status.verified_by == yandang_staff
    assert status.verified_at is not None and status.verified_at >= before
    assert status.note == "独居"
    assert list(member_priority_statuses(elder)) == [status]
    event = AuditEvent.objects.get(event_type="member.priority_verified")
    assert (event.actor, event.on_behalf_of, event.new) == (
        yandang_staff,
        elder,
        {"group": "living_alone", "note": "独居"},
    )


def test_a_priority_group_is_verified_once(yandang_staff, elder):
    # given
    people.priority_group_verify(actor=yandang_staff, member=elder, group=PriorityGroup.LOW_INCOME)

    # when / then
    with pytest.raises(Conflict) as exc:
        people.priority_group_verify(actor=yandang_staff, member=elder, group=PriorityGroup.LOW_INCOME)
    assert exc.value.code == "already_verified"
    assert AuditEvent.objects.filter(event_type="member.priority_verified").count() == 1


def test_only_an_elder_joins_a_priority_group(yandang_staff, tree):
    # given
    volunteer = register(yandang_staff, tree["310101023001"], name="志愿者", is_volunteer=True)

    # when / then
    with pytest.raises(ValidationFailed) as exc:
        people.priority_group_verify(actor=yandang_staff, member=volunteer, group=PriorityGroup.DISABLED)
    assert exc.value.code == "not_elder"
    assert not PriorityStatus.objects.filter(member=volunteer).exists()


@pytest.mark.parametrize(
    ("group", "note", "field"), [("rich", "", "group"), ("disabled", "长" * 201, "note")]
)
def test_an_unknown_group_or_a_long_note_is_refused(yandang_staff, elder, group, note, field):
    with pytest.raises(ValidationFailed) as exc:
        people.priority_group_verify(actor=yandang_staff, member=elder, group=group, note=note)
    assert list(exc.value.fields) == [field]


def test_revoking_a_priority_group_needs_a_reason(yandang_staff, elder):
    # given
    people.priority_group_verify(actor=yandang_staff, member=elder, group=PriorityGroup.ADVANCED_AGE)

    # when / then
    with pytest.raises(ValidationFailed) as exc:
        people.priority_group_revoke(
            actor=yandang_staff, member=elder, group=PriorityGroup.ADVANCED_AGE, reason="  "
        )
    assert list(exc.value.fields) == ["reason"]
    assert PriorityStatus.objects.filter(member=elder).exists()


def test_staff_revoke_a_priority_group_with_a_reason(yandang_staff, elder):
    # given
    people.priority_group_verify(actor=yandang_staff, member=elder, group=PriorityGroup.ADVANCED_AGE)

    # when
    people.priority_group_revoke(
        actor=yandang_staff, member=elder, group=PriorityGroup.ADVANCED_AGE, reason=" 已随子女迁居 "
    )

    # then
    assert not PriorityStatus.objects.filter(member=elder).exists()
    event = AuditEvent.objects.get(event_type="member.priority_revoked")
    assert (event.old, event.new) == ({"group": "advanced_age"}, {"reason": "已随子女迁居"})
    with pytest.raises(Conflict) as exc:
        people.priority_group_revoke(
            actor=yandang_staff, member=elder, group=PriorityGroup.ADVANCED_AGE, reason="再次"
        )
    assert exc.value.code == "not_in_group"


# --- family bonds ---------------------------------------------------------------------------------


@pytest.fixture
def daughter(yandang_staff, tree):
    return register(yandang_staff, tree["310101023001"], name="朱小红", birth=dt.date(1970, 5, 1))


def test_staff_propose_a_bond_for_a_member(yandang_staff, elder, daughter):
    # when
    bond = people.family_bond_propose(
        actor=yandang_staff, member=elder, relative=daughter, relation=Relation.CHILD
    )

    # then
    assert (bond.status, bond.proposed_by) == (BondStatus.PROPOSED, yandang_staff)
    event = AuditEvent.objects.get(event_type="bond.proposed")
    assert (event.actor, event.on_behalf_of, event.subject_id) == (yandang_staff, elder, str(bond.pk))
    assert event.new == {"member": elder.pk, "relative": daughter.pk, "relation": "child"}
    assert list(bonds_pending(yandang_staff)) == [bond]


def test_a_member_may_propose_a_bond_themselves_even_to_another_community(
    yandang_staff, elder, jinyang_elder
):
    # given
    user = people.member_sign_in_create(
        actor=yandang_staff, member=elder, username="zhu-delin", password=PASSWORD
    )

    # when
    bond = people.family_bond_propose(
        actor=user, member=elder, relative=jinyang_elder, relation=Relation.SIBLING
    )

    # then
    assert bond.proposed_by == user
    events = AuditEvent.objects.filter(event_type="bond.proposed")
    # one event in each member's region, so the staff of both communities see it
    assert sorted(e.region_path for e in events) == sorted(
        [elder.home_region.path, jinyang_elder.home_region.path]
    )
    assert all(e.on_behalf_of is None for e in events)


def test_the_relative_may_propose_the_bond_too(yandang_staff, elder, daughter):
    # given
    user = people.member_sign_in_create(
        actor=yandang_staff, member=daughter, username="zhu-xh", password=PASSWORD
    )

    # when
    bond = people.family_bond_propose(actor=user, member=elder, relative=daughter, relation=Relation.CHILD)

    # then
    assert bond.proposed_by == user


def test_a_member_may_not_propose_a_bond_between_two_other_members(yandang_staff, elder, daughter, tree):
    # given
    stranger = register(yandang_staff, tree["310101023001"], name="路人")
    user = people.member_sign_in_create(
        actor=yandang_staff, member=stranger, username="stranger", password=PASSWORD
    )

    # when / then
    with pytest.raises(PermissionDenied):
        people.family_bond_propose(actor=user, member=elder, relative=daughter, relation=Relation.CHILD)


def test_nobody_is_bound_to_themselves(yandang_staff, elder):
    with pytest.raises(ValidationFailed) as exc:
        people.family_bond_propose(
            actor=yandang_staff, member=elder, relative=elder, relation=Relation.FRIEND
        )
    assert exc.value.code == "bond_self"
    assert not FamilyBond.objects.exists()


def test_an_unknown_relation_is_refused(yandang_staff, elder, daughter):
    with pytest.raises(ValidationFailed) as exc:
        people.family_bond_propose(actor=yandang_staff, member=elder, relative=daughter, relation="cousin")
    assert list(exc.value.fields) == ["relation"]


@pytest.mark.parametrize("reverse", [False, True], ids=["same-direction", "other-direction"])
def test_a_pair_has_at_most_one_live_bond(yandang_staff, elder, daughter, reverse):
    # given
    people.family_bond_propose(actor=yandang_staff, member=elder, relative=daughter, relation=Relation.CHILD)
    member, relative = (daughter, elder) if reverse else (elder, daughter)

    # when / then
    with pytest.raises(Conflict) as exc:
        people.family_bond_propose(
            actor=yandang_staff, member=member, relative=relative, relation=Relation.PARENT
        )
    assert exc.value.code == "bond_exists"
    assert FamilyBond.objects.count() == 1


def test_a_rejected_bond_may_be_proposed_again(yandang_clerk, yandang_staff, elder, daughter):
    # given
    bond = people.family_bond_propose(
        actor=yandang_clerk, member=elder, relative=daughter, relation=Relation.CHILD
    )
    people.family_bond_decide(actor=yandang_staff, bond=bond, approve=False, reason="证件不符")

    # when
    again = people.family_bond_propose(
        actor=yandang_clerk, member=daughter, relative=elder, relation=Relation.PARENT
    )

    # then
    assert again.status == BondStatus.PROPOSED


def test_a_bond_to_an_inactive_member_is_refused(yandang_staff, elder, daughter):
    # given
    type(daughter).objects.filter(pk=daughter.pk).update(is_active=False)
    daughter.refresh_from_db()

    # when / then
    with pytest.raises(ValidationFailed):
        people.family_bond_propose(
            actor=yandang_staff, member=elder, relative=daughter, relation=Relation.CHILD
        )


def test_staff_verify_a_bond_once(yandang_clerk, yandang_staff, elder, daughter):
    # given
    bond = people.family_bond_propose(
        actor=yandang_clerk, member=elder, relative=daughter, relation=Relation.CHILD
    )

    # when
    people.family_bond_decide(actor=yandang_staff, bond=bond, approve=True)

    # then
    bond.refresh_from_db()
    assert (bond.status, bond.decided_by) == (BondStatus.VERIFIED, yandang_staff)
    assert bond.decided_at is not None
    event = AuditEvent.objects.get(event_type="bond.verified")
    assert (event.old, event.new) == ({"status": "proposed"}, {"status": "verified", "reason": ""})
    with pytest.raises(Conflict) as exc:
        people.family_bond_decide(actor=yandang_staff, bond=bond, approve=False, reason="改主意")
    assert exc.value.code == "bond_decided"
    assert FamilyBond.objects.get(pk=bond.pk).status == BondStatus.VERIFIED


def test_rejecting_a_bond_needs_a_reason(yandang_clerk, yandang_staff, elder, daughter):
    # given
    bond = people.family_bond_propose(
        actor=yandang_clerk, member=elder, relative=daughter, relation=Relation.CHILD
    )

    # when / then
    with pytest.raises(ValidationFailed) as exc:
        people.family_bond_decide(actor=yandang_staff, bond=bond, approve=False, reason=" ")
    assert list(exc.value.fields) == ["reason"]
    assert FamilyBond.objects.get(pk=bond.pk).status == BondStatus.PROPOSED

    # when rejected with a reason
    people.family_bond_decide(actor=yandang_staff, bond=bond, approve=False, reason="不是亲属")

    # then
    bond.refresh_from_db()
    assert (bond.status, bond.reason) == (BondStatus.REJECTED, "不是亲属")
    assert member_bonds(elder) == []


def test_staff_of_the_relatives_community_may_decide(yandang_staff, jinyang_staff, elder, jinyang_elder):
    # given a bond proposed in 雁荡 whose relative lives in 晋阳
    bond = people.family_bond_propose(
        actor=yandang_staff, member=elder, relative=jinyang_elder, relation=Relation.SIBLING
    )
    assert bond in bonds_pending(jinyang_staff)

    # when
    people.family_bond_decide(actor=jinyang_staff, bond=bond, approve=True)

    # then
    assert FamilyBond.objects.get(pk=bond.pk).decided_by == jinyang_staff


def test_a_member_may_not_decide_their_own_bond(yandang_staff, elder, daughter):
    # given
    user = people.member_sign_in_create(
        actor=yandang_staff, member=elder, username="zhu-delin", password=PASSWORD
    )
    bond = people.family_bond_propose(actor=user, member=elder, relative=daughter, relation=Relation.CHILD)

    # when / then
    with pytest.raises(PermissionDenied):
        people.family_bond_decide(actor=user, bond=bond, approve=True)


def test_each_side_sees_the_bond_in_their_own_words(yandang_staff, elder, daughter):
    # given "daughter is elder's child"
    bond = people.family_bond_propose(
        actor=yandang_staff, member=elder, relative=daughter, relation=Relation.CHILD
    )

    # when
    from_elder = member_bonds(elder)
    from_daughter = member_bonds(daughter)

    # then
    assert [(v.bond, v.other, v.relation_label) for v in from_elder] == [
        (bond, daughter, str(Relation.CHILD.label))
    ]
    assert [(v.bond, v.other, v.relation_label) for v in from_daughter] == [
        (bond, elder, str(Relation.PARENT.label)),
    ]


@pytest.mark.parametrize(
    ("relation", "inverse"),
    [
        (Relation.GRANDCHILD, Relation.GRANDPARENT),
        (Relation.GRANDPARENT, Relation.GRANDCHILD),
        (Relation.SPOUSE, Relation.SPOUSE),
        (Relation.SIBLING, Relation.SIBLING),
        (Relation.FRIEND, Relation.FRIEND),
        (Relation.PARENT, Relation.CHILD),
    ],
)
def test_every_relation_has_its_inverse(yandang_staff, elder, daughter, relation, inverse):
    # given
    people.family_bond_propose(actor=yandang_staff, member=elder, relative=daughter, relation=relation)

    # when
    (view,) = member_bonds(daughter)

    # then
    assert (view.other, view.relation_label) == (elder, str(inverse.label))


def test_nobody_decides_a_bond_they_proposed(yandang_staff, elder, daughter):
    # given
    bond = people.family_bond_propose(
        actor=yandang_staff, member=elder, relative=daughter, relation=Relation.CHILD
    )

    # when / then
    with pytest.raises(PermissionDenied):
        people.family_bond_decide(actor=yandang_staff, bond=bond, approve=True)
    bond.refresh_from_db()
    assert bond.status == BondStatus.PROPOSED


def test_staff_of_the_other_side_decide_a_bond_across_communities(
    yandang_staff, jinyang_staff, elder, jinyang_elder
):
    # given 雁荡 staff propose, for their elder, a bond with an elder of 晋阳
    bond = people.family_bond_propose(
        actor=yandang_staff, member=elder, relative=jinyang_elder, relation=Relation.SIBLING
    )

    # then only 晋阳's staff, who know the relative, may decide it
    with pytest.raises(PermissionDenied):
        people.family_bond_decide(actor=yandang_staff, bond=bond, approve=True)
    people.family_bond_decide(actor=jinyang_staff, bond=bond, approve=True)
    bond.refresh_from_db()
    assert bond.status == BondStatus.VERIFIED


def test_staff_never_verify_their_own_priority_group(admin_user, tree, yandang_staff):
    # given a station staff member who is also an elder of the community
    from timebank.people.models import Role, User
    from timebank.people.tests.builders import grant_user, register

    own = register(yandang_staff, tree["310101023001"], name="钱阿姨", is_elder=True)
    worker = grant_user(admin_user, Role.STATION_STAFF, tree["310101023001"])
    User.objects.filter(pk=worker.pk).update(member=own)
    worker.refresh_from_db()

    # when / then
    with pytest.raises(PermissionDenied):
        people.priority_group_verify(actor=worker, member=own, group="low_income")
    with pytest.raises(PermissionDenied):
        people.member_update(actor=worker, member=own, changes={"is_elder": False})
