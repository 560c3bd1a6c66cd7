from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from timebank.audit.models import AuditEvent
from timebank.conftest import make_id_number, staff
from timebank.people import services as people
from timebank.people.crypto import decrypt_text
from timebank.people.models import FamilyBond, Member, PriorityStatus, Role
from timebank.web.tests.pages import html_of, person_ids

ELDER_ID = make_id_number(dt.date(1940, 3, 5), "M", serial=8)


def test_people_list_shows_the_staff_members_own_community_only(staff_client, elder, jinyang_elder):
    # given an elder in 雁荡 and one in 晋阳
    # when 雁荡's staff open the people list
    response = staff_client.get("/console/people/")
    # then they see their elder and not the other community's
    assert response.status_code == 200
    assert person_ids(response) == {elder.pk}
    assert jinyang_elder.name not in html_of(response)


def test_people_list_filters_by_community(client, admin_user, tree, elder):
    # given station staff of the street, with an elder in 雁荡 and a volunteer in 茂名
    station = staff(admin_user, "station", Role.STATION_STAFF, tree["310101023"])
    maoming = people.member_register(
        actor=station, name="吴建国", home_region=tree["310101023002"], is_volunteer=True
    )
    client.force_login(station)
    # when they pick each community
    everyone = client.get("/console/people/")
    only_maoming = client.get("/console/people/", {"community": "310101023002"})
    only_yandang = client.get("/console/people/", {"community": "310101023001"})
    # then the list narrows to it
    assert person_ids(everyone) == {elder.pk, maoming.pk}
    assert person_ids(only_maoming) == {maoming.pk}
    assert person_ids(only_yandang) == {elder.pk}


def test_people_list_ignores_a_community_outside_the_staff_scope(staff_client, elder, jinyang_elder):
    # given 雁荡's staff
    # when they ask for 晋阳's community by its code
    response = staff_client.get("/console/people/", {"community": "310109018021"})
    # then they still see only their own people
    assert response.status_code == 200
    assert person_ids(response) == {elder.pk}


def test_people_list_offers_only_communities_in_scope(staff_client, tree):
    # given 雁荡's staff / when they open the list / then the community filter lists 雁荡 only
    page = html_of(staff_client.get("/console/people/"))
    assert 'value="310101023001"' in page
    assert 'value="310101023002"' not in page
    assert 'value="310109018021"' not in page


@pytest.mark.parametrize(
    ("role", "expected"), [("elder", {"elder"}), ("volunteer", {"volunteer"}), ("", {"elder", "volunteer"})]
)
def test_people_list_filters_by_role(staff_client, elder, volunteer, role, expected):
    # given an elder and a volunteer in 雁荡
    members = {"elder": elder.pk, "volunteer": volunteer.pk}
    # when the list is filtered by role
    response = staff_client.get("/console/people/", {"role": role})
    # then only that role is listed
    assert person_ids(response) == {members[name] for name in expected}


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("朱", "elder"),
        ("秀英", "volunteer"),
        ("1390100000", "both"),
        ("139010000", "both"),
        ("13901000008", "elder"),
        ("王", "none"),
    ],
)
def test_people_list_searches_names_and_mobile_numbers(staff_client, elder, volunteer, search, expected):
    # given 朱德林 (13901000008) and 李秀英 (13901000001)
    wanted = {
        "elder": {elder.pk},
        "volunteer": {volunteer.pk},
        "both": {elder.pk, volunteer.pk},
        "none": set(),
    }
    # when staff search
    response = staff_client.get("/console/people/", {"q": search})
    # then the list matches part of a name or the start of a mobile number
    assert response.status_code == 200
    assert person_ids(response) == wanted[expected]


def _state() -> tuple[int, int, int, list[tuple]]:
    return (
        AuditEvent.objects.count(),
        PriorityStatus.objects.count(),
        FamilyBond.objects.count(),
        list(Member.objects.order_by("pk").values_list("pk", "name", "mobile", "updated_at")),
    )


@pytest.mark.parametrize(
    ("method", "suffix", "data"),
    [
        ("get", "", {}),
        ("get", "edit/", {}),
        ("post", "edit/", {"name": "改名", "mobile": "13900000000"}),
        ("post", "reveal/id-number/", {}),
        ("post", "reveal/health-notes/", {}),
        ("post", "priority/", {"group": "living_alone", "note": "x"}),
        (
            "post",
            "bonds/",
            {"relation": "child", "relative_name": "朱德林", "relative_mobile": "13901000008"},
        ),
    ],
)
def test_another_communitys_member_is_not_found_and_nothing_is_written(
    staff_client, elder, jinyang_elder, method, suffix, data
):
    # given 雁荡's staff, and 晋阳's elder whom they may not see
    if suffix == "edit/" and data:
        data = {**data, "home_region": jinyang_elder.home_region_id}
    before = _state()
    # when they reach for the 晋阳 elder by id
    response = getattr(staff_client, method)(f"/console/people/{jinyang_elder.pk}/{suffix}", data)
    # then the member does not exist for them, and nothing changed
    assert response.status_code == 404
    assert jinyang_elder.name not in html_of(response)
    assert _state() == before


def test_detail_page_shows_the_masked_id_number_only(staff_client, elder):
    # given an elder registered with an ID number
    # when staff open the elder's page
    response = staff_client.get(f"/console/people/{elder.pk}/")
    # then the number is masked and the full number is nowhere on the page
    assert response.status_code == 200
    page = html_of(response)
    assert elder.name in page
    assert elder.id_number_masked == ELDER_ID[:4] + "*" * 10 + ELDER_ID[-4:]
    assert elder.id_number_masked in page
    assert ELDER_ID not in page
    assert "高血压" not in page
    assert f"/console/people/{elder.pk}/reveal/id-number/" in page


def test_revealing_the_id_number_shows_it_and_logs_who_and_from_where(staff_client, yandang_staff, elder):
    # given staff on the elder's page
    # when they ask for the full ID number from 203.0.113.7
    response = staff_client.post(f"/console/people/{elder.pk}/reveal/id-number/", REMOTE_ADDR="203.0.113.7")
    # then the full number is shown and the reading is in the audit log with the address
    assert response.status_code == 200
    assert ELDER_ID in html_of(response)
    event = AuditEvent.objects.get(event_type="member.id_number.viewed")
    assert event.actor == yandang_staff
    assert (event.subject_type, event.subject_id) == ("people.member", str(elder.pk))
    assert event.ip == "203.0.113.7"
    assert event.channel == "web"


def test_revealing_health_notes_shows_them_and_logs_the_reading(staff_client, yandang_staff, elder):
    # given an elder with health notes on file
    # when staff ask to see them
    response = staff_client.post(
        f"/console/people/{elder.pk}/reveal/health-notes/", REMOTE_ADDR="198.51.100.4"
    )
    # then the notes are shown and the reading is logged
    assert response.status_code == 200
    assert "高血压" in html_of(response)
    event = AuditEvent.objects.get(event_type="member.health_notes.viewed")
    assert event.actor == yandang_staff
    assert event.subject_id == str(elder.pk)
    assert event.ip == "198.51.100.4"


@pytest.mark.parametrize("what", ["password", "id_number", "mobile", "notes"])
def test_an_unknown_reveal_is_refused(staff_client, elder, what):
    # given staff on the elder's page
    before = AuditEvent.objects.count()
    # when they ask to reveal something that is not revealable
    response = staff_client.post(f"/console/people/{elder.pk}/reveal/{what}/")
    # then it is refused and nothing is logged as read
    assert 400 <= response.status_code < 500
    assert ELDER_ID not in html_of(response)
    assert "高血压" not in html_of(response)
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize("what", ["id-number", "health-notes"])
def test_reveal_needs_post(staff_client, elder, what):
    # given staff / when a plain link (GET) asks for the reveal
    before = AuditEvent.objects.count()
    response = staff_client.get(f"/console/people/{elder.pk}/reveal/{what}/")
    # then it is refused as the wrong method and nothing is read
    assert response.status_code == 405
    assert AuditEvent.objects.count() == before


def test_a_member_without_an_id_number_reveals_nothing_and_logs_nothing(staff_client, relative):
    # given a member registered without an ID number
    before = AuditEvent.objects.count()
    # when staff ask to reveal it
    response = staff_client.post(f"/console/people/{relative.pk}/reveal/id-number/")
    # then there is nothing to show and no reading to log
    assert response.status_code == 200
    assert AuditEvent.objects.count() == before


def test_an_auditor_sees_people_but_cannot_unmask(client: Client, admin_user, tree, elder):
    # given an auditor of the district
    auditor = staff(admin_user, "auditor", Role.AUDITOR, tree["310101"])
    client.force_login(auditor)
    before = AuditEvent.objects.count()
    # when they open the elder's page and try to reveal the ID number anyway
    page = client.get(f"/console/people/{elder.pk}/")
    reveal = client.post(f"/console/people/{elder.pk}/reveal/id-number/")
    # then they see the masked page without a reveal button, and the reveal is forbidden
    assert page.status_code == 200
    assert "/reveal/" not in html_of(page)
    assert reveal.status_code == 403
    assert ELDER_ID not in html_of(reveal)
    assert AuditEvent.objects.count() == before
    # and the full number is still encrypted as before
    assert decrypt_text(Member.objects.get(pk=elder.pk).id_number_cipher) == ELDER_ID
