from __future__ import annotations

import datetime as dt
from html import escape

import pytest
from django.utils import translation

from timebank.audit.models import AuditEvent
from timebank.conftest import make_id_number
from timebank.people.crypto import decrypt_text
from timebank.people.models import Member
from timebank.people.validators import InvalidValue, normalize_mobile, parse_id_number
from timebank.web.tests.pages import field_errors, form_with, html_of, submittable

BAD_ID = "110105194912310021"


def _rule_broken(check, value: str) -> str:
    """The message a validator gives for ``value``, in the default language."""
    with pytest.raises(InvalidValue) as caught, translation.override("zh-hans"):
        check(value)
    return str(caught.value)


def _counts() -> tuple[int, int]:
    return Member.objects.count(), AuditEvent.objects.count()


def test_register_form_offers_only_communities_in_scope(staff_client, tree):
    # given 雁荡's staff
    # when they open the registration form
    response = staff_client.get("/console/people/new/")
    # then the only home community on offer is 雁荡
    assert response.status_code == 200
    offered = [v for v in form_with(response, "name")["_options"]["home_region"] if v]
    assert offered == [str(tree["310101023001"].pk)]


def test_registering_a_person_creates_the_member_and_opens_their_page(staff_client, yandang_staff, tree):
    # given the registration form filled in
    number = make_id_number(dt.date(1950, 1, 2), "F", serial=21)
    form = form_with(staff_client.get("/console/people/new/"), "name")
    data = submittable(
        form,
        name="  高凤英 ",
        home_region=str(tree["310101023001"].pk),
        mobile="139 0100 0013",
        id_number=number,
        languages="普通话， 上海话",
        is_elder="on",
    )
    # when it is sent
    response = staff_client.post("/console/people/new/", data)
    # then the member exists with cleaned values, and the browser is sent to their page
    member = Member.objects.get(name="高凤英")
    assert response.status_code == 302
    assert response["Location"] == f"/console/people/{member.pk}/"
    assert member.mobile == "13901000013"
    assert member.birth_date == dt.date(1950, 1, 2)
    assert member.sex == "F"
    assert member.is_elder and not member.is_volunteer
    assert member.languages == ["普通话", "上海话"]
    assert decrypt_text(member.id_number_cipher) == number
    event = AuditEvent.objects.get(event_type="member.registered", subject_id=str(member.pk))
    assert event.actor == yandang_staff
    assert number not in str(event.new)


def test_an_invalid_registration_marks_every_bad_field_at_once(staff_client, tree):
    # given a form with an empty name, a short mobile number and an ID number with a wrong check digit
    before = _counts()
    data = {"name": "", "home_region": str(tree["310101023001"].pk), "mobile": "123", "id_number": BAD_ID}
    # when it is sent
    response = staff_client.post("/console/people/new/", data)
    # then the page comes back 422 with each reason next to its field, and nothing is written
    assert response.status_code == 422
    errors = field_errors(response)
    assert set(errors) >= {"name", "mobile", "id_number"}
    assert errors["mobile"] == [_rule_broken(normalize_mobile, "123")]
    assert errors["id_number"] == [_rule_broken(parse_id_number, BAD_ID)]
    assert _counts() == before


def test_an_invalid_mobile_and_id_number_are_each_explained(staff_client, tree):
    # given a named person with a short mobile number and an ID number with a wrong check digit
    before = _counts()
    data = {
        "name": "王小明",
        "home_region": str(tree["310101023001"].pk),
        "mobile": "123",
        "id_number": BAD_ID,
    }
    # when the form is sent
    response = staff_client.post("/console/people/new/", data)
    # then both fields carry their reason (in the page's HTML), and nothing is written
    assert response.status_code == 422
    errors = field_errors(response)
    assert errors["mobile"] == [_rule_broken(normalize_mobile, "123")]
    assert errors["id_number"] == [_rule_broken(parse_id_number, BAD_ID)]
    assert escape(errors["id_number"][0]) in html_of(response)
    assert "name" not in errors
    assert _counts() == before


def test_an_empty_name_is_marked_on_the_name_field(staff_client, tree):
    # given a form without a name
    before = _counts()
    # when it is sent
    response = staff_client.post(
        "/console/people/new/", {"name": "", "home_region": str(tree["310101023001"].pk)}
    )
    # then the name field says it is needed
    assert response.status_code == 422
    assert list(field_errors(response)) == ["name"]
    assert _counts() == before


def test_an_invalid_registration_keeps_what_was_typed(staff_client, tree):
    # given a form with a bad mobile number
    data = {
        "name": "王小明",
        "home_region": str(tree["310101023001"].pk),
        "mobile": "123",
        "address": "雁荡路 12 弄",
        "skills": "理发, 读报",
        "is_volunteer": "on",
    }
    # when it is sent
    response = staff_client.post("/console/people/new/", data)
    # then the form comes back with everything as it was typed
    assert response.status_code == 422
    form = form_with(response, "name")
    assert form["name"] == "王小明"
    assert form["mobile"] == "123"
    assert form["address"] == "雁荡路 12 弄"
    assert form["skills"] == "理发, 读报"
    assert form["is_volunteer"] == "on"
    assert form["home_region"] == str(tree["310101023001"].pk)


def test_a_community_outside_scope_cannot_be_posted(staff_client, tree):
    # given 雁荡's staff, who cannot choose 晋阳
    before = _counts()
    data = {"name": "王小明", "home_region": str(tree["310109018021"].pk), "mobile": "13900000001"}
    # when they post 晋阳 anyway
    response = staff_client.post("/console/people/new/", data)
    # then the home community is refused and nobody is registered
    assert response.status_code == 422
    assert "home_region" in field_errors(response)
    assert _counts() == before


def test_a_duplicate_id_number_is_refused_on_the_field(staff_client, tree, elder):
    # given the elder registered with their ID number
    before = _counts()
    number = make_id_number(dt.date(1940, 3, 5), "M", serial=8)
    # when someone registers another person with the same number
    response = staff_client.post(
        "/console/people/new/",
        {"name": "冒名", "home_region": str(tree["310101023001"].pk), "id_number": number},
    )
    # then the ID number field says it is taken
    assert response.status_code == 422
    assert "id_number" in field_errors(response)
    assert _counts() == before


def _edit_form(client, member: Member) -> dict:
    response = client.get(f"/console/people/{member.pk}/edit/")
    assert response.status_code == 200
    return form_with(response, "name")


def test_editing_the_mobile_number_saves_it_and_logs_the_change(staff_client, yandang_staff, elder):
    # given the elder's edit form as the browser shows it
    form = _edit_form(staff_client, elder)
    assert form["name"] == "朱德林"
    assert form["mobile"] == "13901000008"
    # when staff change the mobile number and save
    response = staff_client.post(f"/console/people/{elder.pk}/edit/", submittable(form, mobile="13901000099"))
    # then the member has the new number, and the change is in the audit log with old and new values
    assert response.status_code == 302
    assert response["Location"] == f"/console/people/{elder.pk}/"
    elder.refresh_from_db()
    assert elder.mobile == "13901000099"
    event = AuditEvent.objects.get(event_type="member.updated", subject_id=str(elder.pk))
    assert event.actor == yandang_staff
    assert (event.old["mobile"], event.new["mobile"]) == ("13901000008", "13901000099")


def test_leaving_the_id_number_blank_keeps_it(staff_client, elder):
    # given the elder's edit form, whose ID number field is always shown empty
    form = _edit_form(staff_client, elder)
    assert form["id_number"] == ""
    assert form["health_notes"] == ""
    masked = elder.id_number_masked
    # when staff save a change with the ID number and health notes left blank
    response = staff_client.post(
        f"/console/people/{elder.pk}/edit/",
        submittable(form, address="雁荡路 5 号", id_number="", health_notes=""),
    )
    # then the ID number and health notes on file are untouched
    assert response.status_code == 302
    elder.refresh_from_db()
    assert elder.address == "雁荡路 5 号"
    assert elder.id_number_masked == masked
    assert decrypt_text(elder.id_number_cipher) == make_id_number(dt.date(1940, 3, 5), "M", serial=8)
    assert decrypt_text(elder.health_notes_cipher) == "高血压"
    event = AuditEvent.objects.get(event_type="member.updated")
    assert event.new["address"] == "雁荡路 5 号"
    assert "id_number" not in event.new
    assert "health_notes" not in event.new


def test_the_edit_form_shows_the_birth_date_in_a_form_a_date_input_accepts(staff_client, elder):
    # given an elder born on 1940-03-05
    # when staff open the edit form (in Chinese, the default)
    page = html_of(staff_client.get(f"/console/people/{elder.pk}/edit/"))
    # then the date input carries the ISO date: <input type="date"> shows nothing else
    assert 'type="date" name="birth_date" value="1940-03-05"' in page


def test_saving_the_edit_form_as_a_browser_sends_it_keeps_the_birth_date(staff_client, elder):
    # given the elder's edit form, with the values a browser would send back
    form = _edit_form(staff_client, elder)
    # when staff change only the mobile number and save
    response = staff_client.post(f"/console/people/{elder.pk}/edit/", submittable(form, mobile="13901000099"))
    # then the birth date (taken from the ID number) is still there
    assert response.status_code == 302
    elder.refresh_from_db()
    assert elder.mobile == "13901000099"
    assert elder.birth_date == dt.date(1940, 3, 5)


def test_an_invalid_edit_is_422_and_changes_nothing(staff_client, elder):
    # given the elder's edit form
    form = _edit_form(staff_client, elder)
    before = AuditEvent.objects.count()
    # when staff enter a bad mobile number
    response = staff_client.post(f"/console/people/{elder.pk}/edit/", submittable(form, mobile="99999"))
    # then the field is marked, the typed value kept, and nothing saved
    assert response.status_code == 422
    assert "mobile" in field_errors(response)
    assert form_with(response, "name")["mobile"] == "99999"
    elder.refresh_from_db()
    assert elder.mobile == "13901000008"
    assert AuditEvent.objects.count() == before
