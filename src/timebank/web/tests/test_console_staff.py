"""The staff page: operators create staff and grant roles in their subtree; mistakes write nothing."""

from __future__ import annotations

from timebank.conftest import PASSWORD
from timebank.people.models import Role, StaffGrant, User
from timebank.people.tests.builders import grant_user
from timebank.web.tests.pages import field_errors


def test_an_operator_creates_station_staff_in_their_district(client, admin_user, tree):
    # given
    operator = grant_user(admin_user, Role.OPERATOR, tree["310101"])
    client.force_login(operator)

    # when
    response = client.post(
        "/console/staff/",
        {
            "username": "new-station",
            "name": "孙丽",
            "mobile": "",
            "password": "Station-Pass-42",
            "role": Role.STATION_STAFF,
            "region": tree["310101023"].pk,
        },
    )

    # then
    assert response.status_code == 302
    grant = StaffGrant.objects.get(user__username="new-station")
    assert (grant.role, grant.region, grant.granted_by) == (Role.STATION_STAFF, tree["310101023"], operator)


def test_a_bad_staff_form_marks_each_field_and_writes_nothing(client, admin_user, tree):
    # given
    operator = grant_user(admin_user, Role.OPERATOR, tree["310101"])
    client.force_login(operator)
    users = User.objects.count()

    # when: a taken username, a weak password, a region outside the district
    response = client.post(
        "/console/staff/",
        {
            "username": operator.username,
            "name": "x",
            "mobile": "123",
            "password": "123",
            "role": Role.STATION_STAFF,
            "region": tree["310109018021"].pk,
        },
    )

    # then
    assert response.status_code == 422
    errors = field_errors(response)
    assert {"region"} <= set(errors)
    assert User.objects.count() == users


def test_an_operator_may_not_grant_a_platform_admin(client, admin_user, tree):
    operator = grant_user(admin_user, Role.OPERATOR, tree["310101"])
    client.force_login(operator)
    response = client.post(
        "/console/staff/",
        {
            "username": "would-be-admin",
            "name": "x",
            "mobile": "",
            "password": "Station-Pass-42",
            "role": Role.PLATFORM_ADMIN,
            "region": tree["310101"].pk,
        },
    )
    assert response.status_code == 422
    assert not User.objects.filter(username="would-be-admin").exists()  # the sign-in is not left behind


def test_staff_of_another_region_cannot_revoke_a_grant(client, admin_user, tree, jinyang_staff):
    # given an operator of Huangpu, and a grant in Hongkou
    operator = grant_user(admin_user, Role.OPERATOR, tree["310101"])
    client.force_login(operator)
    grant = jinyang_staff.grants.get()

    # when / then
    assert client.post(f"/console/staff/{grant.pk}/revoke/").status_code == 404
    grant.refresh_from_db()
    assert grant.revoked_at is None


def test_members_and_plain_staff_cannot_open_the_staff_page(client, yandang_staff):
    client.force_login(yandang_staff)
    assert client.get("/console/staff/").status_code == 403
    assert client.post("/console/staff/", {"username": "x", "password": PASSWORD}).status_code == 403
