"""``/api/v1`` people, family bonds and the audit log, as an app or a station's system would use them:
staff of 瑞金二路 (雁荡 and 茂名) keep their members, staff of 北外滩 (虹口) see none of them, members see
themselves."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.test import Client

from timebank.api.tests.conftest import bearer, send
from timebank.audit.models import AuditEvent
from timebank.care.tests.conftest import member, user_of
from timebank.conftest import make_id_number, staff
from timebank.people.models import BondStatus, FamilyBond, Member, PriorityStatus, Role, User
from timebank.regions.models import Region

YANDANG = "310101023001"


def walk(client: Client, path: str, headers: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """Every row of a cursor-paged list, following ``next_cursor`` to the end."""
    rows: list[dict[str, Any]] = []
    url = path
    for _ in range(100):
        response = client.get(url, **headers)
        assert response.status_code == 200, response.json()
        body = response.json()
        rows.extend(body[key])
        if body["next_cursor"] is None:
            return rows
        url = f"{path}{'&' if '?' in path else '?'}cursor={body['next_cursor']}"
    raise AssertionError("the pages never end")


def patch(client: Client, path: str, body: Any, headers: dict[str, Any]) -> Any:
    return client.patch(path, data=json.dumps(body), content_type="application/json", **headers)


def refused(response: Any, status: int, code: str | None = None) -> None:
    """A refusal in the one error format."""
    assert response.status_code == status, response.json()
    body = response.json()
    assert set(body) == {"code", "message", "fields"}
    if code is not None:
        assert body["code"] == code


def ids(rows: list[dict[str, Any]]) -> list[int]:
    return [r["id"] for r in rows]


@pytest.fixture
def auditor(admin_user: User, tree: dict[str, Region]) -> User:
    """An auditor of 黄浦: sees people and the audit log, unmasks nothing."""
    return staff(admin_user, "huangpu-auditor", Role.AUDITOR, tree["310101"])


@pytest.fixture
def patient(station: User, tree: dict[str, Region]) -> Member:
    """朱德林 of 雁荡, with an ID number and health notes on record, and no sign-in."""
    from timebank.people import services

    return services.member_register(
        actor=station,
        name="朱德林",
        home_region=tree[YANDANG],
        mobile="13901000008",
        id_number=make_id_number(dt.date(1940, 3, 5), "M", serial=8),
        is_elder=True,
        health_notes="高血压",
    )


def registration(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "孙秀英",
        "home_region": YANDANG,
        "mobile": "13911112222",
        "id_number": make_id_number(dt.date(1950, 6, 1), "F", serial=61),
        "address": "雁荡路 10 号",
        "languages": ["上海话"],
        "is_elder": True,
        "health_notes": "糖尿病",
    }
    body.update(changes)
    return body


# --- the people list ----------------------------------------------------------------------------------------


def test_staff_list_their_members_filtered_and_page_by_page(
    client: Client, station: User, hongkou_staff: User, old_elder: Member, helper: Member, son: Member
) -> None:
    # given
    headers = bearer(station, station, ("read",))

    # when every page is read one member at a time
    rows = walk(client, "/api/v1/people?limit=1", headers, "people")

    # then each member appears once, newest first
    assert ids(rows) == [son.pk, helper.pk, old_elder.pk]
    assert rows[-1] == {
        "id": old_elder.pk,
        "name": "王阿婆",
        "home_region": YANDANG,
        "is_elder": True,
        "is_volunteer": False,
        "is_group": False,
        "is_active": True,
    }
    assert ids(walk(client, "/api/v1/people?role=elder", headers, "people")) == [old_elder.pk]
    assert ids(walk(client, "/api/v1/people?role=volunteer", headers, "people")) == [helper.pk]
    assert ids(walk(client, "/api/v1/people?search=王", headers, "people")) == [son.pk, old_elder.pk]
    assert walk(client, "/api/v1/people?region=310101023002", headers, "people") == []  # 茂名
    assert len(walk(client, "/api/v1/people?region=310101", headers, "people")) == 3


def test_other_districts_staff_and_members_see_none_of_our_people(
    client: Client, hongkou_staff: User, old_elder: Member, helper: Member
) -> None:
    theirs = walk(client, "/api/v1/people", bearer(hongkou_staff, hongkou_staff), "people")
    assert theirs == []
    assert (
        walk(client, f"/api/v1/people?region={YANDANG}", bearer(hongkou_staff, hongkou_staff), "people") == []
    )
    me = user_of(old_elder)
    refused(client.get("/api/v1/people", **bearer(me, me)), 403)


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("role=nurse", 422),
        ("limit=0", 422),
        ("limit=201", 422),
        ("limit=many", 422),
        ("cursor=%%%", 422),
        ("region=999999", 404),
        (f"search={'x' * 51}", 422),
    ],
)
def test_bad_list_filters_are_4xx_in_the_error_format(
    client: Client, station: User, query: str, status: int
) -> None:
    refused(client.get(f"/api/v1/people?{query}", **bearer(station, station)), status)


# --- one person ---------------------------------------------------------------------------------------------


def test_a_person_shows_the_id_number_masked_and_never_the_health_notes(
    client: Client, station: User, patient: Member
) -> None:
    # when
    response = client.get(f"/api/v1/people/{patient.pk}", **bearer(station, station, ("read",)))

    # then
    assert response.status_code == 200
    body = response.json()
    number = make_id_number(dt.date(1940, 3, 5), "M", serial=8)
    assert body["id_number_masked"] == number[:4] + "*" * 10 + number[-4:]
    assert (body["birth_date"], body["sex"], body["has_health_notes"]) == ("1940-03-05", "M", True)
    assert body["account_id"] == patient.account_id and body["priority_groups"] == []
    assert number not in response.content.decode() and "高血压" not in response.content.decode()


def test_a_person_is_not_found_by_other_districts_staff_or_other_members(
    client: Client, hongkou_staff: User, patient: Member, old_elder: Member
) -> None:
    refused(client.get(f"/api/v1/people/{patient.pk}", **bearer(hongkou_staff, hongkou_staff)), 404)
    me = user_of(old_elder)
    refused(client.get(f"/api/v1/people/{patient.pk}", **bearer(me, me)), 404, "member_not_found")
    assert client.get(f"/api/v1/people/{old_elder.pk}", **bearer(me, me)).json()["name"] == "王阿婆"


@pytest.mark.parametrize("bad", ["abc", "0", "-3", str(2**70), "1.5"])
def test_a_bad_person_id_is_a_422_not_a_server_error(client: Client, station: User, bad: str) -> None:
    refused(client.get(f"/api/v1/people/{bad}", **bearer(station, station)), 422)


# --- registering and changing -------------------------------------------------------------------------------


def test_staff_register_a_member_with_a_time_account_and_the_register_is_logged(
    client: Client, station: User
) -> None:
    # given
    headers = bearer(station, station)

    # when
    response = send(client, "/api/v1/people", registration(), headers)

    # then
    assert response.status_code == 201
    body = response.json()
    created = Member.objects.get(pk=body["id"])
    assert (created.name, created.home_region.code, created.is_elder) == ("孙秀英", YANDANG, True)
    assert created.account_id is not None and body["account_id"] == created.account_id
    assert (body["birth_date"], body["sex"], body["has_health_notes"]) == ("1950-06-01", "F", True)
    assert "糖尿病" not in response.content.decode()
    assert registration()["id_number"] not in response.content.decode()
    event = AuditEvent.objects.get(event_type="member.registered", subject_id=str(created.pk))
    assert (event.actor, event.channel) == (station, "api")


def test_a_registration_retried_with_its_key_registers_once(client: Client, station: User) -> None:
    headers = bearer(station, station)
    first = send(client, "/api/v1/people", registration(), headers, key="reg-1")
    again = send(client, "/api/v1/people", registration(), headers, key="reg-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Member.objects.filter(name="孙秀英").count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (registration(id_number="310101195006010000"), "id_number"),
        (registration(id_number="12345"), "id_number"),
        (registration(home_region="999999"), "home_region"),
        (registration(home_region="310101023"), "home_region"),  # a street, not a community
        (registration(mobile="12345"), "mobile"),
        (registration(name=""), "name"),
        (registration(is_elder="maybe"), "is_elder"),
        (registration(languages="上海话"), "languages"),
        (registration(sex="X"), "sex"),
        (registration(birth_date="1950-02-30"), "birth_date"),
        (registration(nickname="阿英"), "nickname"),
        ({k: v for k, v in registration().items() if k != "name"}, "name"),
    ],
)
def test_a_bad_registration_names_the_field_and_writes_nothing(
    client: Client, station: User, body: dict[str, Any], field: str
) -> None:
    # given
    before = Member.objects.count()

    # when
    response = send(client, "/api/v1/people", body, bearer(station, station))

    # then
    refused(response, 422)
    assert field in response.json()["fields"]
    assert Member.objects.count() == before


def test_only_staff_of_the_community_register_there(
    client: Client, station: User, hongkou_staff: User, old_elder: Member
) -> None:
    before = Member.objects.count()
    refused(send(client, "/api/v1/people", registration(), bearer(hongkou_staff, hongkou_staff)), 403)
    me = user_of(old_elder)
    refused(send(client, "/api/v1/people", registration(), bearer(me, me)), 403)
    refused(send(client, "/api/v1/people", registration(), bearer(station, station, ("read",))), 403)
    assert Member.objects.count() == before


def test_staff_change_a_member_and_a_member_changes_only_their_contact_details(
    client: Client, station: User, old_elder: Member
) -> None:
    # when staff change the name and address
    response = patch(
        client,
        f"/api/v1/people/{old_elder.pk}",
        {"name": "王秀兰", "address": "茂名路 1 号"},
        bearer(station, station),
    )

    # then only those change, and the change is logged
    assert response.status_code == 200
    old_elder.refresh_from_db()
    assert (old_elder.name, old_elder.address, old_elder.is_elder) == ("王秀兰", "茂名路 1 号", True)
    event = AuditEvent.objects.get(event_type="member.updated")
    assert event.new == {"name": "王秀兰", "address": "茂名路 1 号"}

    # and the member changes her mobile number, but not her name
    me = user_of(old_elder)
    mine = patch(client, f"/api/v1/people/{old_elder.pk}", {"mobile": "13988887777"}, bearer(me, me))
    assert mine.status_code == 200 and mine.json()["mobile"] == "13988887777"
    refused(patch(client, f"/api/v1/people/{old_elder.pk}", {"name": "王"}, bearer(me, me)), 403)
    old_elder.refresh_from_db()
    assert old_elder.name == "王秀兰"


def test_a_change_is_refused_to_strangers_read_tokens_and_bad_values(
    client: Client, station: User, hongkou_staff: User, old_elder: Member, helper: Member
) -> None:
    path = f"/api/v1/people/{old_elder.pk}"
    mobile = old_elder.mobile
    refused(patch(client, path, {"name": "X"}, bearer(hongkou_staff, hongkou_staff)), 404)
    other = user_of(helper)
    refused(patch(client, path, {"mobile": "13988887777"}, bearer(other, other)), 404)
    refused(patch(client, path, {"name": "X"}, bearer(station, station, ("read",))), 403, "api_scope_missing")
    bad = patch(client, path, {"mobile": "123", "home_region": "nowhere"}, bearer(station, station))
    refused(bad, 422)
    assert set(bad.json()["fields"]) == {"mobile", "home_region"}
    refused(patch(client, path, {"id_number": "110101190001011234"}, bearer(station, station)), 422)
    old_elder.refresh_from_db()
    assert (old_elder.name, old_elder.mobile) == ("王阿婆", mobile)
    assert not AuditEvent.objects.filter(event_type="member.updated").exists()


# --- reveals ------------------------------------------------------------------------------------------------


def test_staff_reveal_the_id_number_and_health_notes_and_each_read_is_logged(
    client: Client, station: User, patient: Member
) -> None:
    headers = bearer(station, station, ("read",))

    number = client.get(f"/api/v1/people/{patient.pk}/id-number", **headers)
    notes = client.get(f"/api/v1/people/{patient.pk}/health-notes", **headers)

    assert number.json() == {"id_number": make_id_number(dt.date(1940, 3, 5), "M", serial=8)}
    assert notes.json() == {"health_notes": "高血压"}
    assert number["Cache-Control"] == "no-store" and notes["Cache-Control"] == "no-store"
    events = AuditEvent.objects.filter(subject_id=str(patient.pk), event_type__endswith=".viewed")
    assert sorted((e.event_type, e.actor_id, e.channel) for e in events) == [
        ("member.health_notes.viewed", station.pk, "api"),
        ("member.id_number.viewed", station.pk, "api"),
    ]


def test_a_member_reads_their_own_id_number(client: Client, old_elder: Member) -> None:
    me = user_of(old_elder)
    body = client.get(f"/api/v1/people/{old_elder.pk}/id-number", **bearer(me, me)).json()
    assert len(body["id_number"]) == 18
    assert AuditEvent.objects.filter(event_type="member.id_number.viewed", actor=me).count() == 1


@pytest.mark.parametrize("what", ["id-number", "health-notes"])
def test_reveals_are_refused_to_strangers_auditors_and_other_members_and_log_nothing(
    client: Client, hongkou_staff: User, auditor: User, patient: Member, old_elder: Member, what: str
) -> None:
    path = f"/api/v1/people/{patient.pk}/{what}"
    refused(client.get(path, **bearer(hongkou_staff, hongkou_staff)), 404)
    refused(client.get(path, **bearer(auditor, auditor)), 403)  # sees the person, may not unmask
    me = user_of(old_elder)
    refused(client.get(path, **bearer(me, me)), 404)
    assert not AuditEvent.objects.filter(event_type__endswith=".viewed").exists()


# --- priority groups ----------------------------------------------------------------------------------------


def test_station_staff_verify_and_revoke_a_priority_group(
    client: Client, station: User, old_elder: Member
) -> None:
    # given
    headers = bearer(station, station)
    path = f"/api/v1/people/{old_elder.pk}/priority-groups"

    # when
    verified = send(client, path, {"group": "living_alone", "note": "独居"}, headers)

    # then
    assert verified.status_code == 201
    assert verified.json()["group"] == "living_alone" and verified.json()["verified"] is True
    status = PriorityStatus.objects.get(member=old_elder)
    assert (status.verified_by, status.note) == (station, "独居")
    shown = client.get(f"/api/v1/people/{old_elder.pk}", **headers).json()["priority_groups"]
    assert [g["group"] for g in shown] == ["living_alone"]
    refused(send(client, path, {"group": "living_alone"}, headers), 409, "already_verified")

    # and when it is revoked, saying why
    refused(send(client, f"{path}/living_alone/revoke", {"reason": " "}, headers), 422)
    revoked = send(client, f"{path}/living_alone/revoke", {"reason": "女儿搬回同住"}, headers)
    assert revoked.status_code == 200 and revoked.json() == {"priority_groups": []}
    assert not PriorityStatus.objects.filter(member=old_elder).exists()
    refused(send(client, f"{path}/living_alone/revoke", {"reason": "again"}, headers), 409, "not_in_group")
    assert AuditEvent.objects.filter(event_type__startswith="member.priority_").count() == 2


def test_priority_groups_are_refused_to_strangers_members_read_tokens_and_bad_groups(
    client: Client, station: User, hongkou_staff: User, old_elder: Member, helper: Member
) -> None:
    path = f"/api/v1/people/{old_elder.pk}/priority-groups"
    body = {"group": "living_alone"}
    refused(send(client, path, body, bearer(hongkou_staff, hongkou_staff)), 404)
    me = user_of(old_elder)
    refused(send(client, path, body, bearer(me, me)), 403)
    refused(send(client, path, body, bearer(station, station, ("read",))), 403, "api_scope_missing")
    refused(send(client, path, {"group": "rich"}, bearer(station, station)), 422)
    refused(send(client, path, {"group": "living_alone", "why": "x"}, bearer(station, station)), 422)
    helper_path = f"/api/v1/people/{helper.pk}/priority-groups"
    refused(send(client, helper_path, body, bearer(station, station)), 422, "not_elder")
    assert not PriorityStatus.objects.exists()


# --- family bonds -------------------------------------------------------------------------------------------


def test_a_members_family_is_described_from_their_side(
    client: Client, station: User, hongkou_staff: User, old_elder: Member, son: Member
) -> None:
    family = client.get(f"/api/v1/people/{old_elder.pk}/bonds", **bearer(station, station)).json()["bonds"]
    assert [(b["other_id"], b["other_name"], b["other_relation"], b["status"]) for b in family] == [
        (son.pk, "王建国", "child", "verified")
    ]
    me = user_of(son)
    mine = client.get("/api/v1/bonds", **bearer(me, me)).json()
    assert [(b["other_id"], b["other_relation"]) for b in mine["mine"]] == [(old_elder.pk, "parent")]
    assert mine["pending"] == []
    refused(client.get(f"/api/v1/people/{old_elder.pk}/bonds", **bearer(hongkou_staff, hongkou_staff)), 404)
    refused(
        client.get(f"/api/v1/people/{son.pk}/bonds", **bearer(user_of(old_elder), user_of(old_elder))), 404
    )


def test_a_member_proposes_a_bond_and_staff_of_the_other_side_verify_it(
    client: Client, station: User, hongkou_staff: User, old_elder: Member, helper: Member
) -> None:
    # given
    volunteer = user_of(helper)
    body = {"relative_name": "王阿婆", "relative_mobile": old_elder.mobile, "relation": "friend"}

    # when the volunteer proposes the elder as his friend
    proposed = send(client, "/api/v1/bonds", body, bearer(volunteer, volunteer))

    # then it waits for the elder's community
    assert proposed.status_code == 201
    bond = FamilyBond.objects.get(pk=proposed.json()["id"])
    assert (bond.member, bond.relative, bond.status) == (helper, old_elder, BondStatus.PROPOSED)
    assert ids(client.get("/api/v1/bonds", **bearer(station, station)).json()["pending"]) == [bond.pk]
    assert client.get("/api/v1/bonds", **bearer(hongkou_staff, hongkou_staff)).json()["pending"] == []
    refused(send(client, "/api/v1/bonds", body, bearer(volunteer, volunteer)), 409, "bond_exists")

    # and strangers, the proposer and a read token may not decide it
    decide = f"/api/v1/bonds/{bond.pk}/decide"
    refused(send(client, decide, {"decision": "approve"}, bearer(hongkou_staff, hongkou_staff)), 404)
    refused(send(client, decide, {"decision": "approve"}, bearer(volunteer, volunteer)), 403)
    refused(send(client, decide, {"decision": "approve"}, bearer(station, station, ("read",))), 403)
    refused(send(client, decide, {"decision": "maybe"}, bearer(station, station)), 422)
    refused(send(client, decide, {"decision": "reject", "reason": ""}, bearer(station, station)), 422)
    bond.refresh_from_db()
    assert bond.status == BondStatus.PROPOSED

    # when the station verifies it
    decided = send(client, decide, {"decision": "approve"}, bearer(station, station))

    # then
    assert decided.status_code == 200 and decided.json()["status"] == "verified"
    bond.refresh_from_db()
    assert (bond.status, bond.decided_by) == (BondStatus.VERIFIED, station)
    assert AuditEvent.objects.filter(event_type="bond.verified", subject_id=str(bond.pk)).exists()
    refused(send(client, decide, {"decision": "reject", "reason": "晚了"}, bearer(station, station)), 409)


def test_staff_propose_for_a_member_of_their_regions_only(
    client: Client, station: User, hongkou_staff: User, reviewer: User, old_elder: Member, helper: Member
) -> None:
    body = {
        "member_id": old_elder.pk,
        "relative_name": "李志强",
        "relative_mobile": helper.mobile,
        "relation": "friend",
    }
    refused(send(client, "/api/v1/bonds", body, bearer(hongkou_staff, hongkou_staff)), 404)
    proposed = send(client, "/api/v1/bonds", body, bearer(station, station))
    assert proposed.status_code == 201 and proposed.json()["member_id"] == old_elder.pk
    rejected = send(
        client,
        f"/api/v1/bonds/{proposed.json()['id']}/decide",
        {"decision": "reject", "reason": "并不认识"},
        bearer(reviewer, reviewer),
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"relative_mobile": "13000000000"}, 422, "relative_not_found"),
        ({"relative_mobile": "not a phone"}, 422, None),
        ({"relation": "cousin"}, 422, None),
        ({"relation": 3}, 422, None),
        ({"member_id": 0}, 422, None),
        ({"member_id": 2**70}, 422, None),
        ({"pet": "cat"}, 422, None),
    ],
)
def test_a_bad_bond_proposal_is_refused_and_writes_nothing(
    client: Client, old_elder: Member, helper: Member, changes: dict[str, Any], status: int, code: str | None
) -> None:
    me = user_of(helper)
    body = {"relative_name": "王阿婆", "relative_mobile": old_elder.mobile, "relation": "friend", **changes}
    refused(send(client, "/api/v1/bonds", body, bearer(me, me)), status, code)
    assert not FamilyBond.objects.exists()


def test_a_read_token_cannot_propose_a_bond(client: Client, old_elder: Member, helper: Member) -> None:
    me = user_of(helper)
    body = {"relative_name": "王阿婆", "relative_mobile": old_elder.mobile, "relation": "friend"}
    refused(send(client, "/api/v1/bonds", body, bearer(me, me, ("read",))), 403, "api_scope_missing")
    refused(send(client, "/api/v1/bonds/0/decide", {"decision": "approve"}, bearer(me, me)), 422)
    assert not FamilyBond.objects.exists()


def test_pending_bonds_page_without_duplicates(
    client: Client, station: User, tree: dict[str, Region]
) -> None:
    # given four bonds waiting, proposed by members of 雁荡
    people = [
        member(station, tree[YANDANG], f"居民{i}", birth=dt.date(1950, 1, 1 + i), login=f"resident-{i}")
        for i in range(8)
    ]
    for proposer, relative in zip(people[::2], people[1::2], strict=True):
        me = user_of(proposer)
        body = {"relative_name": relative.name, "relative_mobile": relative.mobile, "relation": "sibling"}
        assert send(client, "/api/v1/bonds", body, bearer(me, me)).status_code == 201

    # when / then
    pending = walk(client, "/api/v1/bonds?limit=1", bearer(station, station), "pending")
    assert ids(pending) == sorted(FamilyBond.objects.values_list("pk", flat=True), reverse=True)


# --- the audit log ------------------------------------------------------------------------------------------


def test_the_audit_log_shows_staff_their_regions_page_by_page(
    client: Client, station: User, hongkou_staff: User, auditor: User, old_elder: Member, helper: Member
) -> None:
    # when
    events = walk(
        client, "/api/v1/audit/events?limit=2&event_type=member.", bearer(auditor, auditor), "events"
    )

    # then
    assert sorted(int(e["subject_id"]) for e in events if e["event_type"] == "member.registered") == sorted(
        [old_elder.pk, helper.pk]
    )
    assert len(ids(events)) == len(set(ids(events)))
    assert {e["region"] for e in events} == {YANDANG}
    theirs = walk(client, "/api/v1/audit/events", bearer(hongkou_staff, hongkou_staff), "events")
    assert not any(e["region"] == YANDANG for e in theirs)
    me = user_of(old_elder)
    refused(client.get("/api/v1/audit/events", **bearer(me, me)), 403)
    refused(client.get("/api/v1/audit/events?since=yesterday", **bearer(auditor, auditor)), 422)
