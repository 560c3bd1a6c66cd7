"""``/api/v1`` sign-ins and staff grants, as a station's or an operator's system would use them: station staff
of 瑞金二路 give their members a sign-in (a password, or a PIN for an elder); the 黄浦 operator creates staff
and grants and revokes their roles. Staff of 虹口 reach none of it, and nobody grants above their own role."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client

from timebank.api.tests.conftest import bearer, send
from timebank.api.tests.test_people import YANDANG, refused, walk
from timebank.audit.models import AuditEvent
from timebank.care.tests.conftest import member, user_of
from timebank.conftest import PASSWORD, staff
from timebank.people import services as people
from timebank.people.models import Member, Role, StaffGrant, User
from timebank.regions.models import Region

RUIJIN = "310101023"
HUANGPU = "310101"
PIN = "470952"


def token_for(client: Client, username: str, password: str) -> Any:
    """Sign in through the API as an app would."""
    body = {"username": username, "password": password, "name": "测试手机"}
    return send(client, "/api/v1/auth/token", body, {})


def writes() -> tuple[int, int, int]:
    """What a refused request must leave as it was: sign-ins, grants, audit rows (but for the test's own
    tokens being issued)."""
    events = AuditEvent.objects.exclude(event_type__startswith="api.token.")
    return User.objects.count(), StaffGrant.objects.count(), events.count()


@pytest.fixture
def auditor(admin_user: User, tree: dict[str, Region]) -> User:
    """An auditor of 黄浦: sees people, manages none."""
    return staff(admin_user, "huangpu-auditor", Role.AUDITOR, tree[HUANGPU])


@pytest.fixture
def newcomer(station: User, tree: dict[str, Region]) -> Member:
    """孙阿婆 of 雁荡, born 2 February 1938, registered at the station without a sign-in."""
    return member(station, tree[YANDANG], "孙阿婆", birth=dt.date(1938, 2, 2), is_elder=True)


@pytest.fixture
def huangpu_operator(admin_user: User, tree: dict[str, Region]) -> User:
    return staff(admin_user, "huangpu-operator", Role.OPERATOR, tree[HUANGPU])


# --- a member's sign-in -------------------------------------------------------------------------------------


def test_staff_give_a_member_a_sign_in_and_she_signs_in_with_it(
    client: Client, station: User, newcomer: Member
) -> None:
    # when
    response = send(
        client,
        f"/api/v1/people/{newcomer.pk}/sign-in",
        {"username": "sun-apo", "password": PASSWORD},
        bearer(station, station),
    )

    # then
    assert response.status_code == 201, response.json()
    created = User.objects.get(member=newcomer)
    assert response.json() == {
        "member_id": newcomer.pk,
        "user_id": created.pk,
        "username": "sun-apo",
        "mobile": newcomer.mobile,
    }
    assert PASSWORD not in response.content.decode()
    event = AuditEvent.objects.get(event_type="member.sign_in_created", subject_id=str(newcomer.pk))
    assert (event.actor, event.channel, event.new) == (station, "api", {"username": "sun-apo"})

    # and she signs in by her username or her mobile number
    assert token_for(client, "sun-apo", PASSWORD).status_code == 201
    assert token_for(client, newcomer.mobile, PASSWORD).status_code == 201


def test_a_member_has_one_sign_in(client: Client, station: User, old_elder: Member) -> None:
    before = writes()
    body = {"username": "wang-apo-2", "password": PASSWORD}
    response = send(client, f"/api/v1/people/{old_elder.pk}/sign-in", body, bearer(station, station))
    refused(response, 409, "sign_in_exists")
    assert writes() == before


def test_a_password_like_the_username_is_refused(client: Client, station: User, newcomer: Member) -> None:
    body = {"username": "sun-apo-1938", "password": "sun-apo-1938"}
    response = send(client, f"/api/v1/people/{newcomer.pk}/sign-in", body, bearer(station, station))
    refused(response, 422)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "sun-apo", "password": "123"}, "password"),  # too short, too common, all digits
        ({"username": "sun-apo", "password": "12345678"}, "password"),  # all digits, and common
        ({"username": "wang-apo", "password": PASSWORD}, "username"),  # taken by 王阿婆
        ({"username": "WANG-APO", "password": PASSWORD}, "username"),  # taken, whatever the case
        ({"username": "13900001111", "password": PASSWORD}, "username"),  # would look like a mobile number
        ({"username": "孙 阿婆", "password": PASSWORD}, "username"),
        ({"username": "", "password": PASSWORD}, "username"),
        ({"username": 5, "password": PASSWORD}, "username"),
        ({"username": "sun-apo", "password": PASSWORD, "role": "operator"}, "role"),
        ({"username": "sun-apo"}, "password"),
        ({"username": "s" * 151, "password": PASSWORD}, "username"),
    ],
)
def test_a_bad_sign_in_names_the_field_and_writes_nothing(
    client: Client, station: User, newcomer: Member, old_elder: Member, body: dict[str, Any], field: str
) -> None:
    # given
    before = writes()

    # when
    response = send(client, f"/api/v1/people/{newcomer.pk}/sign-in", body, bearer(station, station))

    # then
    refused(response, 422)
    assert field in response.json()["fields"]
    assert writes() == before
    assert not User.objects.filter(member=newcomer).exists()


def test_a_sign_in_is_given_only_by_staff_who_manage_the_member(
    client: Client,
    station: User,
    hongkou_staff: User,
    jinyang_staff: User,
    auditor: User,
    newcomer: Member,
    helper: Member,
) -> None:
    # given
    path = f"/api/v1/people/{newcomer.pk}/sign-in"
    body = {"username": "sun-apo", "password": PASSWORD}
    before = writes()

    # when / then: another district's staff do not find her
    refused(send(client, path, body, bearer(hongkou_staff, hongkou_staff)), 404, "member_not_found")
    refused(send(client, path, body, bearer(jinyang_staff, jinyang_staff)), 404, "member_not_found")
    # the auditor sees her but manages nobody; a member is not staff; a read token writes nothing
    refused(send(client, path, body, bearer(auditor, auditor)), 403)
    volunteer = user_of(helper)
    refused(send(client, path, body, bearer(volunteer, volunteer)), 403)
    refused(send(client, path, body, bearer(station, station, ("read",))), 403, "api_scope_missing")
    for bad in ("abc", "0", str(2**70)):
        refused(send(client, f"/api/v1/people/{bad}/sign-in", body, bearer(station, station)), 422)
    assert writes() == before


# --- an elder's PIN -----------------------------------------------------------------------------------------


def test_staff_set_an_elders_pin_and_she_signs_in_on_the_web_with_it(
    client: Client, station: User, newcomer: Member
) -> None:
    # when
    response = send(
        client, f"/api/v1/people/{newcomer.pk}/sign-in-pin", {"pin": PIN}, bearer(station, station)
    )

    # then she has a sign-in, her mobile number its name
    assert response.status_code == 200, response.json()
    created = User.objects.get(member=newcomer)
    assert response.json() == {
        "member_id": newcomer.pk,
        "user_id": created.pk,
        "username": f"m{newcomer.pk}",
        "mobile": newcomer.mobile,
    }
    assert PIN not in response.content.decode()
    event = AuditEvent.objects.get(event_type="member.sign_in_pin_set", subject_id=str(newcomer.pk))
    assert (event.actor, event.channel, event.new) == (
        station,
        "api",
        {"username": f"m{newcomer.pk}", "created": True},
    )

    # and she signs in on the web with her mobile number and the PIN
    web = client.post("/sign-in/", {"identifier": newcomer.mobile, "password": PIN})
    assert (web.status_code, web["Location"]) == (302, "/")


def test_a_pin_replaces_the_password_of_an_existing_sign_in(
    client: Client, station: User, old_elder: Member
) -> None:
    response = send(
        client,
        f"/api/v1/people/{old_elder.pk}/sign-in-pin",
        {"pin": "０４７０９５"},
        bearer(station, station),
    )
    assert response.status_code == 200 and response.json()["username"] == "wang-apo"
    assert token_for(client, "wang-apo", "047095").status_code == 201  # full-width digits are read as digits
    refused(token_for(client, "wang-apo", PASSWORD), 401)


@pytest.mark.parametrize(
    ("pin", "code"),
    [
        ("123456", "sign_in_pin_weak"),
        ("111111", "sign_in_pin_weak"),
        ("380202", "sign_in_pin_weak"),  # her birth date, yymmdd
        ("020238", "sign_in_pin_weak"),  # and ddmmyy
        ("12345", "sign_in_pin_invalid"),
        ("4709521", "sign_in_pin_invalid"),
        ("47O952", "sign_in_pin_invalid"),
        ("", "sign_in_pin_invalid"),
        (470952, "validation_failed"),
        ("4" * 21, "validation_failed"),
    ],
)
def test_a_guessable_or_malformed_pin_is_refused_and_writes_nothing(
    client: Client, station: User, newcomer: Member, pin: Any, code: str
) -> None:
    # given
    before = writes()

    # when
    response = send(
        client, f"/api/v1/people/{newcomer.pk}/sign-in-pin", {"pin": pin}, bearer(station, station)
    )

    # then
    refused(response, 422, code)
    assert "pin" in response.json()["fields"]
    assert writes() == before


def test_a_pin_is_set_only_by_staff_who_manage_the_member(
    client: Client,
    station: User,
    hongkou_staff: User,
    jinyang_staff: User,
    auditor: User,
    newcomer: Member,
    old_elder: Member,
) -> None:
    # given
    path = f"/api/v1/people/{newcomer.pk}/sign-in-pin"
    body = {"pin": PIN}
    before = writes()

    # when / then
    refused(send(client, path, body, bearer(hongkou_staff, hongkou_staff)), 404, "member_not_found")
    refused(send(client, path, body, bearer(jinyang_staff, jinyang_staff)), 404, "member_not_found")
    refused(send(client, path, body, bearer(auditor, auditor)), 403)
    elder = user_of(old_elder)
    refused(send(client, path, body, bearer(elder, elder)), 403)
    refused(send(client, f"/api/v1/people/{old_elder.pk}/sign-in-pin", body, bearer(elder, elder)), 403)
    refused(send(client, path, body, bearer(station, station, ("read",))), 403, "api_scope_missing")
    refused(send(client, path, {"pin": PIN, "hint": "生日"}, bearer(station, station)), 422)
    refused(send(client, "/api/v1/people/abc/sign-in-pin", body, bearer(station, station)), 422)
    assert writes() == before


# --- staff and their grants ---------------------------------------------------------------------------------


def new_staff(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "username": "ruijin-desk",
        "password": PASSWORD,
        "name": "周敏",
        "mobile": "13816000001",
        "role": "station_staff",
        "region": RUIJIN,
    }
    body.update(changes)
    return body


def test_an_operator_creates_station_staff_who_then_sign_in_and_serve_their_street(
    client: Client, huangpu_operator: User, old_elder: Member
) -> None:
    # when
    response = send(client, "/api/v1/staff", new_staff(), bearer(huangpu_operator, huangpu_operator))

    # then a sign-in exists with its role on 瑞金二路, granted by the operator
    assert response.status_code == 201, response.json()
    created = User.objects.get(username="ruijin-desk")
    grant = StaffGrant.objects.get(user=created)
    assert (created.first_name, created.mobile, created.check_password(PASSWORD)) == (
        "周敏",
        "13816000001",
        True,
    )
    assert (grant.role, grant.region.code, grant.granted_by) == ("station_staff", RUIJIN, huangpu_operator)
    body = response.json()
    assert body == {
        "id": grant.pk,
        "user_id": created.pk,
        "username": "ruijin-desk",
        "name": "周敏",
        "role": "station_staff",
        "region": RUIJIN,
        "granted_by": "huangpu-operator",
        "granted_at": body["granted_at"],
        "revoked_by": None,
        "revoked_at": None,
    }
    events = AuditEvent.objects.filter(event_type__startswith="staff.", actor=huangpu_operator)
    assert sorted((e.event_type, e.channel) for e in events) == [
        ("staff.granted", "api"),
        ("staff.user_created", "api"),
    ]

    # and the new staff member signs in and sees the street's members
    issued = token_for(client, "ruijin-desk", PASSWORD)
    assert issued.status_code == 201
    headers = {"HTTP_AUTHORIZATION": f"Bearer {issued.json()['token']}"}
    assert [p["id"] for p in walk(client, "/api/v1/people", headers, "people")] == [old_elder.pk]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (new_staff(password="password"), 422, "password"),
        (new_staff(password="Ab-1"), 422, "password"),
        (new_staff(username="ruijin-station"), 422, "username"),  # the station's own sign-in
        (new_staff(username="RUIJIN-STATION"), 422, "username"),
        (new_staff(username="13816000001"), 422, "username"),
        (new_staff(mobile="12345"), 422, "mobile"),
        (new_staff(mobile=13816000001), 422, "mobile"),
        (new_staff(name=""), 422, "name"),
        (new_staff(role="chief"), 422, "role"),
        (new_staff(region="999999"), 422, "region"),
        (new_staff(region=310101023), 422, "region"),
        (new_staff(region="3" * 13), 422, "region"),
        (new_staff(badge="007"), 422, "badge"),
        ({k: v for k, v in new_staff().items() if k != "role"}, 422, "role"),
        (new_staff(role="operator"), 403, None),  # their own role: only a platform administrator grants it
        (new_staff(role="platform_admin"), 403, None),
        (new_staff(region="310109018"), 403, None),  # 北外滩, outside 黄浦
        (new_staff(region="310100"), 403, None),  # the city above 黄浦
    ],
)
def test_a_bad_or_overreaching_staff_creation_is_refused_and_writes_nothing(
    client: Client,
    huangpu_operator: User,
    station: User,
    body: dict[str, Any],
    status: int,
    field: str | None,
) -> None:
    # given
    before = writes()

    # when
    response = send(client, "/api/v1/staff", body, bearer(huangpu_operator, huangpu_operator))

    # then
    refused(response, status)
    if field is not None:
        assert field in response.json()["fields"]
    assert writes() == before
    assert not User.objects.filter(username__iexact="ruijin-desk").exists()


def test_only_operators_with_a_write_token_create_staff(
    client: Client, huangpu_operator: User, station: User, hongkou_staff: User, auditor: User, helper: Member
) -> None:
    before = writes()
    volunteer = user_of(helper)
    for user in (station, hongkou_staff, auditor, volunteer):
        refused(send(client, "/api/v1/staff", new_staff(), bearer(user, user)), 403)
    read_only = bearer(huangpu_operator, huangpu_operator, ("read",))
    refused(send(client, "/api/v1/staff", new_staff(), read_only), 403, "api_scope_missing")
    assert writes() == before


def test_a_platform_administrator_grants_any_role_anywhere(
    client: Client, admin_user: User, tree: dict[str, Region]
) -> None:
    body = new_staff(username="hongkou-ops", role="operator", region="310109")
    response = send(client, "/api/v1/staff", body, bearer(admin_user, admin_user))
    assert response.status_code == 201 and response.json()["role"] == "operator"


def test_grants_are_listed_for_the_operators_district_only_page_by_page(
    client: Client,
    huangpu_operator: User,
    hongkou_operator: User,
    station: User,
    reviewer: User,
    auditor: User,
    hongkou_staff: User,
) -> None:
    # given a grant revoked
    revoked = people.staff_grant_revoke(actor=huangpu_operator, grant=StaffGrant.objects.get(user=auditor))

    # when the 黄浦 operator reads every page, one grant a page
    rows = walk(
        client, "/api/v1/staff?limit=1", bearer(huangpu_operator, huangpu_operator, ("read",)), "grants"
    )

    # then the live grants of 黄浦 appear once each, newest first, none of 虹口 and not the revoked one
    ours = StaffGrant.objects.filter(region__path__startswith=tree_path(HUANGPU), revoked_at__isnull=True)
    assert [r["id"] for r in rows] == sorted(ours.values_list("pk", flat=True), reverse=True)
    assert {r["username"] for r in rows} == {"huangpu-operator", "ruijin-station", "yandang-reviewer"}
    assert revoked.pk not in [r["id"] for r in rows]

    # and the 虹口 operator sees only 虹口's
    theirs = walk(client, "/api/v1/staff", bearer(hongkou_operator, hongkou_operator), "grants")
    assert {r["username"] for r in theirs} == {"hongkou-operator", "beiwaitan-station"}
    assert all(r["region"].startswith("310109") for r in theirs)

    # and staff who grant nothing, and members, may not look
    refused(client.get("/api/v1/staff", **bearer(station, station)), 403)
    refused(client.get("/api/v1/staff", **bearer(auditor, auditor)), 403)
    for query in ("limit=0", "limit=201", "cursor=%%%", "limit=many"):
        refused(client.get(f"/api/v1/staff?{query}", **bearer(huangpu_operator, huangpu_operator)), 422)


def tree_path(code: str) -> str:
    return Region.objects.get(code=code).path


def test_an_operator_grants_a_further_role_to_staff_of_the_district(
    client: Client, huangpu_operator: User, station: User
) -> None:
    # when
    body = {"user_id": station.pk, "role": "auditor", "region": HUANGPU}
    response = send(
        client, "/api/v1/staff/grants", body, bearer(huangpu_operator, huangpu_operator), key="g-1"
    )
    again = send(client, "/api/v1/staff/grants", body, bearer(huangpu_operator, huangpu_operator), key="g-1")

    # then once, whatever the retries
    assert response.status_code == 201, response.json()
    assert again.json() == response.json() and again["Idempotent-Replayed"] == "true"
    grant = StaffGrant.objects.get(user=station, role=Role.AUDITOR)
    assert (grant.region.code, grant.granted_by, response.json()["id"]) == (
        HUANGPU,
        huangpu_operator,
        grant.pk,
    )
    assert (
        AuditEvent.objects.filter(event_type="staff.granted", subject_id=str(grant.pk), channel="api").count()
        == 1
    )
    refused(
        send(client, "/api/v1/staff/grants", body, bearer(huangpu_operator, huangpu_operator)),
        409,
        "grant_exists",
    )


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"role": "operator"}, 403, None),
        ({"role": "platform_admin"}, 403, None),
        ({"region": "310109018021"}, 403, None),
        ({"region": "999999"}, 422, "region_not_found"),
        ({"role": "chief"}, 422, None),
        ({"user_id": 0}, 422, None),
        ({"user_id": "abc"}, 422, None),
        ({"user_id": 2**70}, 422, None),
        ({"user_id": 999_999}, 404, "staff_user_not_found"),
        ({"until": "2030-01-01"}, 422, None),
    ],
)
def test_a_bad_or_overreaching_grant_is_refused_and_writes_nothing(
    client: Client,
    huangpu_operator: User,
    station: User,
    changes: dict[str, Any],
    status: int,
    code: str | None,
) -> None:
    before = writes()
    body = {"user_id": station.pk, "role": "auditor", "region": HUANGPU, **changes}
    refused(
        send(client, "/api/v1/staff/grants", body, bearer(huangpu_operator, huangpu_operator)), status, code
    )
    assert writes() == before


def test_grants_reach_only_staff_of_the_granters_scope_and_never_oneself(
    client: Client,
    huangpu_operator: User,
    hongkou_operator: User,
    hongkou_staff: User,
    station: User,
    old_elder: Member,
) -> None:
    before = writes()
    headers = bearer(huangpu_operator, huangpu_operator)
    body = {"role": "auditor", "region": RUIJIN}
    # 虹口's staff and a member's sign-in are not found by 黄浦's operator, nor 黄浦's staff by 虹口's
    refused(send(client, "/api/v1/staff/grants", {**body, "user_id": hongkou_staff.pk}, headers), 404)
    refused(send(client, "/api/v1/staff/grants", {**body, "user_id": user_of(old_elder).pk}, headers), 404)
    theirs = bearer(hongkou_operator, hongkou_operator)
    refused(send(client, "/api/v1/staff/grants", {**body, "user_id": station.pk}, theirs), 404)
    # nobody grants a role to themselves
    mine = {**body, "user_id": huangpu_operator.pk}
    refused(send(client, "/api/v1/staff/grants", mine, headers), 403, "self_grant")
    # station staff grant nothing; a read token writes nothing
    refused(
        send(client, "/api/v1/staff/grants", {**body, "user_id": station.pk}, bearer(station, station)), 403
    )
    read_only = bearer(huangpu_operator, huangpu_operator, ("read",))
    refused(
        send(client, "/api/v1/staff/grants", {**body, "user_id": station.pk}, read_only),
        403,
        "api_scope_missing",
    )
    assert writes() == before


def test_an_operator_revokes_a_role_and_it_stops_working_at_once(
    client: Client, huangpu_operator: User, station: User, old_elder: Member
) -> None:
    # given the station works with a token of its own
    grant = StaffGrant.objects.get(user=station)
    desk = bearer(station, station)
    assert client.get("/api/v1/people", **desk).status_code == 200

    # when
    path = f"/api/v1/staff/grants/{grant.pk}/revoke"
    response = send(client, path, {}, bearer(huangpu_operator, huangpu_operator), key="r-1")
    again = send(client, path, {}, bearer(huangpu_operator, huangpu_operator), key="r-1")

    # then
    assert response.status_code == 200, response.json()
    assert again.json() == response.json() and again["Idempotent-Replayed"] == "true"
    grant.refresh_from_db()
    assert (grant.revoked_by, grant.revoked_at is not None) == (huangpu_operator, True)
    assert response.json()["revoked_by"] == "huangpu-operator" and response.json()["revoked_at"] is not None
    event = AuditEvent.objects.get(event_type="staff.revoked", subject_id=str(grant.pk))
    assert (event.actor, event.channel, event.old) == (
        huangpu_operator,
        "api",
        {"user": "ruijin-station", "role": "station_staff"},
    )
    refused(client.get("/api/v1/people", **desk), 403)
    # a revoked grant is gone from the operator's reach: revoking it again finds nothing
    refused(send(client, path, {}, bearer(huangpu_operator, huangpu_operator)), 404, "grant_not_found")


def test_a_revoke_is_refused_outside_the_scope_above_ones_role_and_to_read_tokens(
    client: Client,
    admin_user: User,
    huangpu_operator: User,
    hongkou_operator: User,
    operator: User,
    station: User,
    hongkou_staff: User,
    helper: Member,
    tree: dict[str, Region],
) -> None:
    # given a platform administrator of 黄浦, granted by the root administrator
    chief = people.staff_user_create(actor=admin_user, username="huangpu-chief", password=PASSWORD)
    above = people.staff_grant_create(
        actor=admin_user, user=chief, role=Role.PLATFORM_ADMIN, region=tree[HUANGPU]
    )
    ours = StaffGrant.objects.get(user=station)
    theirs = StaffGrant.objects.get(user=hongkou_staff)
    city = StaffGrant.objects.get(user=operator)
    before = writes()
    headers = bearer(huangpu_operator, huangpu_operator)

    def revoke(grant_id: Any, as_: dict[str, Any]) -> Any:
        return send(client, f"/api/v1/staff/grants/{grant_id}/revoke", {}, as_)

    # when / then
    refused(revoke(theirs.pk, headers), 404, "grant_not_found")  # 虹口's
    refused(revoke(city.pk, headers), 404, "grant_not_found")  # the city's operator, above 黄浦
    refused(revoke(ours.pk, bearer(hongkou_operator, hongkou_operator)), 404, "grant_not_found")
    refused(revoke(above.pk, headers), 403)  # a role above the operator's own
    refused(revoke(ours.pk, bearer(station, station)), 403)
    volunteer = user_of(helper)
    refused(revoke(ours.pk, bearer(volunteer, volunteer)), 403)
    refused(revoke(ours.pk, bearer(huangpu_operator, huangpu_operator, ("read",))), 403, "api_scope_missing")
    for bad in ("abc", "0", str(2**70)):
        refused(revoke(bad, headers), 422)
    refused(revoke(999_999, headers), 404)
    assert writes() == before
    assert not StaffGrant.objects.filter(revoked_at__isnull=False).exists()
