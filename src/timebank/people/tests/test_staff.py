"""Staff sign-ins and the roles granted to them on region nodes."""

from __future__ import annotations

import pytest

from timebank.audit.models import AuditEvent
from timebank.common.errors import Conflict, PermissionDenied, ValidationFailed
from timebank.conftest import PASSWORD
from timebank.people import services as people
from timebank.people.access import Perm, access_has, access_is_staff
from timebank.people.models import Role, StaffGrant, User
from timebank.people.selectors import grants_visible, members_visible
from timebank.people.tests.builders import grant_user, reload


@pytest.fixture
def district_operator(admin_user, tree) -> User:
    return grant_user(admin_user, Role.OPERATOR, tree["310101"], username="huangpu-operator")


def new_user(actor: User, username: str) -> User:
    return people.staff_user_create(actor=actor, username=username, password=PASSWORD, mobile="13600000001")


# --- staff sign-ins -------------------------------------------------------------------------------


def test_a_platform_admin_creates_a_staff_sign_in_that_can_do_nothing_yet(admin_user, tree):
    # when
    user = people.staff_user_create(
        actor=admin_user,
        username="wang-li",
        password=PASSWORD,
        name=" 王丽 ",
        mobile="+86 136 0000 0001",
        email=" wl@example.org ",
    )

    # then
    user = reload(user)
    assert (user.first_name, user.mobile, user.email) == ("王丽", "13600000001", "wl@example.org")
    assert user.check_password(PASSWORD)
    assert not access_is_staff(user)
    assert not access_has(user, Perm.PEOPLE_VIEW, tree["310101023001"])
    event = AuditEvent.objects.get(event_type="staff.user_created")
    assert (event.actor, event.subject_id, event.region_path) == (admin_user, str(user.pk), "")


def test_an_operator_may_create_staff_sign_ins(district_operator):
    assert new_user(district_operator, "wang-li").pk is not None


@pytest.mark.parametrize(
    "role", [Role.STATION_STAFF, Role.COMMUNITY_STAFF, Role.AUDITOR, Role.MERCHANT_STAFF]
)
def test_only_someone_who_may_grant_creates_staff_sign_ins(admin_user, tree, role):
    # given
    actor = grant_user(admin_user, role, tree["310101"])
    before = User.objects.count()

    # when / then
    with pytest.raises(PermissionDenied):
        new_user(actor, "wang-li")
    assert User.objects.count() == before


def test_a_revoked_operator_may_not_create_staff_sign_ins(admin_user, district_operator):
    # given
    people.staff_grant_revoke(actor=admin_user, grant=district_operator.grants.get())

    # when / then
    with pytest.raises(PermissionDenied):
        new_user(reload(district_operator), "wang-li")


def test_staff_sign_ins_need_a_free_username_and_mobile(admin_user):
    # given
    new_user(admin_user, "wang-li")

    # when / then
    with pytest.raises(ValidationFailed) as exc:
        people.staff_user_create(
            actor=admin_user, username="WANG-LI", password=PASSWORD, mobile="136 0000 0001"
        )
    assert set(exc.value.fields) == {"username", "mobile"}


# --- granting -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "role", [Role.STATION_STAFF, Role.COMMUNITY_STAFF, Role.AUDITOR, Role.MERCHANT_STAFF]
)
def test_an_operator_grants_the_roles_below_them_inside_their_district(district_operator, tree, role):
    # given
    user = new_user(district_operator, "wang-li")

    # when
    grant = people.staff_grant_create(
        actor=district_operator, user=user, role=role, region=tree["310101023002"]
    )

    # then
    assert (grant.granted_by, grant.revoked_at) == (district_operator, None)
    event = AuditEvent.objects.get(event_type="staff.granted", subject_id=str(grant.pk))
    assert (event.actor, event.region_path, event.new) == (
        district_operator,
        tree["310101023002"].path,
        {"user": "wang-li", "role": role},
    )
    assert grant in grants_visible(district_operator)


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.PLATFORM_ADMIN])
def test_an_operator_may_not_grant_operator_or_platform_admin(district_operator, tree, role):
    # given
    user = new_user(district_operator, "wang-li")

    # when / then
    with pytest.raises(PermissionDenied):
        people.staff_grant_create(actor=district_operator, user=user, role=role, region=tree["310101023002"])
    assert not StaffGrant.objects.filter(user=user).exists()


@pytest.mark.parametrize("region", ["310109", "310109018021", "310100", "310000"])
def test_nobody_grants_outside_their_subtree(district_operator, tree, region):
    # given
    user = new_user(district_operator, "wang-li")

    # when / then
    with pytest.raises(PermissionDenied):
        people.staff_grant_create(
            actor=district_operator, user=user, role=Role.STATION_STAFF, region=tree[region]
        )
    assert not StaffGrant.objects.filter(user=user).exists()


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.PLATFORM_ADMIN])
def test_a_platform_admin_grants_any_role(admin_user, tree, role):
    # given
    user = new_user(admin_user, "wang-li")

    # when
    people.staff_grant_create(actor=admin_user, user=user, role=role, region=tree["310000"])

    # then
    assert access_has(reload(user), Perm.STAFF_GRANT, tree["310109018021"])


def test_a_granted_platform_admin_may_grant_anything_anywhere(admin_user, tree):
    # given
    boss = grant_user(admin_user, Role.PLATFORM_ADMIN, tree["310000"])
    user = new_user(boss, "wang-li")

    # when
    people.staff_grant_create(actor=boss, user=user, role=Role.OPERATOR, region=tree["310109"])

    # then
    assert StaffGrant.objects.filter(user=user, role=Role.OPERATOR).exists()


def test_the_same_live_grant_cannot_be_given_twice(district_operator, tree):
    # given
    user = new_user(district_operator, "wang-li")
    people.staff_grant_create(actor=district_operator, user=user, role=Role.AUDITOR, region=tree["310101023"])

    # when / then
    with pytest.raises(Conflict) as exc:
        people.staff_grant_create(
            actor=district_operator, user=user, role=Role.AUDITOR, region=tree["310101023"]
        )
    assert exc.value.code == "grant_exists"


def test_an_unknown_role_is_refused(admin_user, tree):
    with pytest.raises(ValidationFailed) as exc:
        people.staff_grant_create(actor=admin_user, user=admin_user, role="janitor", region=tree["310101"])
    assert list(exc.value.fields) == ["role"]


def test_a_grant_takes_effect_for_the_granted_user(district_operator, tree, elder):
    # given
    user = new_user(district_operator, "wang-li")
    assert list(members_visible(user)) == []

    # when
    people.staff_grant_create(
        actor=district_operator, user=user, role=Role.STATION_STAFF, region=tree["310101023"]
    )

    # then the service dropped the cached scope of that very object
    assert list(members_visible(user)) == [elder]


# --- revoking -------------------------------------------------------------------------------------


def test_an_operator_revokes_a_grant_in_their_district_once(district_operator, yandang_staff):
    # given
    grant = yandang_staff.grants.get()

    # when
    people.staff_grant_revoke(actor=district_operator, grant=grant)

    # then
    grant.refresh_from_db()
    assert grant.revoked_by == district_operator
    assert grant.revoked_at is not None
    assert grant not in grants_visible(district_operator)
    event = AuditEvent.objects.get(event_type="staff.revoked")
    assert event.old == {"user": "yandang-staff", "role": Role.COMMUNITY_STAFF}
    with pytest.raises(Conflict) as exc:
        people.staff_grant_revoke(actor=district_operator, grant=grant)
    assert exc.value.code == "grant_revoked"


def test_a_role_may_be_granted_again_after_it_was_revoked(district_operator, yandang_staff, tree):
    # given
    people.staff_grant_revoke(actor=district_operator, grant=yandang_staff.grants.get())

    # when
    people.staff_grant_create(
        actor=district_operator, user=yandang_staff, role=Role.COMMUNITY_STAFF, region=tree["310101023001"]
    )

    # then
    assert StaffGrant.objects.filter(user=yandang_staff).count() == 2
    assert access_is_staff(reload(yandang_staff))


def test_nobody_revokes_outside_their_subtree(district_operator, jinyang_staff):
    # given
    grant = jinyang_staff.grants.get()

    # when / then
    with pytest.raises(PermissionDenied):
        people.staff_grant_revoke(actor=district_operator, grant=grant)
    assert StaffGrant.objects.get(pk=grant.pk).revoked_at is None


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.PLATFORM_ADMIN])
def test_an_operator_may_not_revoke_a_role_they_may_not_grant(admin_user, district_operator, tree, role):
    """Granting operator and platform-admin roles is reserved to platform administrators; taking them away
    must be too, or a district operator could strip a fellow operator or an administrator."""
    # given a peer holding a senior role on the operator's own district
    peer = grant_user(admin_user, role, tree["310101"])

    # when / then
    with pytest.raises(PermissionDenied):
        people.staff_grant_revoke(actor=district_operator, grant=peer.grants.get())
    assert StaffGrant.objects.get(user=peer).revoked_at is None
