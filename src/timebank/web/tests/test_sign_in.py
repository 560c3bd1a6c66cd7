from __future__ import annotations

import pytest
from django.contrib.auth import get_user
from django.test import Client

from timebank.audit.models import AuditEvent
from timebank.common.errors import AccountLocked, AuthenticationFailed
from timebank.conftest import PASSWORD
from timebank.people import services as people
from timebank.people.models import Role
from timebank.web.tests.pages import alerts, form_with, html_of, page_lang, zh


def _signed_in_user_id(client) -> int | None:
    user = get_user(client)
    return user.pk if user.is_authenticated else None


@pytest.mark.django_db
def test_sign_in_page_is_chinese_by_default(client):
    # given a browser that states no language preference
    # when it opens the sign-in page
    response = client.get("/sign-in/")
    # then the page is served in Simplified Chinese with a sign-in form
    assert response.status_code == 200
    assert page_lang(response) == "zh-Hans"
    assert 'name="identifier"' in html_of(response)
    assert 'name="password"' in html_of(response)


def test_staff_signs_in_with_username_and_lands_on_the_console(client, yandang_staff):
    # given a community staff member
    # when they sign in with their username
    response = client.post("/sign-in/", {"identifier": "yandang-staff", "password": PASSWORD}, follow=True)
    # then they are signed in and end up on the people list of the console
    assert response.redirect_chain[-1] == ("/console/people/", 302)
    assert response.status_code == 200
    assert _signed_in_user_id(client) == yandang_staff.pk


def test_staff_signs_in_with_mobile_number(client, admin_user, tree):
    # given a station staff member whose sign-in has a mobile number
    user = people.staff_user_create(
        actor=admin_user, username="wang", password=PASSWORD, mobile="13816000001"
    )
    people.staff_grant_create(actor=admin_user, user=user, role=Role.STATION_STAFF, region=tree["310101023"])
    # when they sign in with the number, written the way people write it
    response = client.post(
        "/sign-in/", {"identifier": "+86 138-1600-0001", "password": PASSWORD}, follow=True
    )
    # then they land on the console
    assert response.redirect_chain[-1] == ("/console/people/", 302)
    assert _signed_in_user_id(client) == user.pk


@pytest.mark.parametrize("identifier", ["zhu-delin", "13901000008"])
def test_member_signs_in_and_lands_on_their_own_page(client, member_user, elder, identifier):
    # given an elder with a sign-in of their own (username zhu-delin, mobile 13901000008)
    # when they sign in with the username or the mobile number
    response = client.post("/sign-in/", {"identifier": identifier, "password": PASSWORD}, follow=True)
    # then they land on their page, not in the console
    assert [url for url, _status in response.redirect_chain] == ["/"]
    assert response.status_code == 200
    assert _signed_in_user_id(client) == member_user.pk
    page = html_of(response)
    assert elder.name in page
    assert elder.id_number_masked in page
    assert "/console/people/" not in page


def test_wrong_password_shows_an_error_and_does_not_sign_in(client, yandang_staff):
    # given a staff member
    # when someone signs in with a wrong password
    response = client.post("/sign-in/", {"identifier": "yandang-staff", "password": "not-the-password"})
    # then the page says so with status 401 and nobody is signed in
    assert response.status_code == 401
    assert zh(AuthenticationFailed.default_message) in alerts(response)
    assert _signed_in_user_id(client) is None
    assert client.get("/console/people/").status_code == 302


def test_unknown_account_gets_the_same_answer_as_a_wrong_password(client, yandang_staff):
    # given no account called "nobody"
    # when someone signs in as nobody
    response = client.post("/sign-in/", {"identifier": "nobody", "password": PASSWORD})
    # then the answer does not tell whether the account exists
    assert response.status_code == 401
    assert alerts(response) == [zh(AuthenticationFailed.default_message)]


def test_empty_sign_in_form_is_422_with_field_errors(client, db):
    # given nothing typed
    # when the form is sent
    response = client.post("/sign-in/", {"identifier": "", "password": ""})
    # then both fields are marked
    assert response.status_code == 422
    assert 'id="id_identifier_error"' in html_of(response)
    assert 'id="id_password_error"' in html_of(response)


def test_five_failures_lock_the_account_even_against_the_right_password(client, yandang_staff, settings):
    # given the default lockout of 5 failures
    settings.SIGN_IN_MAX_FAILURES = 5
    wrong = {"identifier": "yandang-staff", "password": "wrong-password"}
    # when the password is wrong four times
    statuses = [client.post("/sign-in/", wrong).status_code for _ in range(4)]
    # and a fifth time
    fifth = client.post("/sign-in/", wrong)
    # then the first four are plain failures, the fifth says the account is locked
    assert statuses == [401] * 4
    assert fifth.status_code == 429
    assert zh(AccountLocked.default_message) in alerts(fifth)
    assert AuditEvent.objects.filter(event_type="user.locked", subject_id=str(yandang_staff.pk)).count() == 1
    # and the right password is refused too while the lock lasts
    right = client.post("/sign-in/", {"identifier": "yandang-staff", "password": PASSWORD})
    assert right.status_code == 429
    assert zh(AccountLocked.default_message) in alerts(right)
    assert _signed_in_user_id(client) is None


@pytest.mark.parametrize(
    ("next_url", "expected"),
    [
        ("/console/bonds/", "/console/bonds/"),
        ("http://testserver/console/audit/", "http://testserver/console/audit/"),
        ("http://evil.example/steal", "/"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_next_is_followed_only_within_the_site(client, yandang_staff, next_url, expected):
    # given a sign-in link carrying a next parameter
    # when the staff member signs in through it
    response = client.post(
        "/sign-in/", {"identifier": "yandang-staff", "password": PASSWORD}, query_params={"next": next_url}
    )
    # then they go there only if it is on this site; otherwise to the start page
    assert response.status_code == 302
    assert response["Location"] == expected


def test_sign_in_form_posts_back_with_the_next_parameter(client, yandang_staff):
    # given an anonymous visitor sent to sign in from the audit log
    redirect = client.get("/console/audit/")
    assert redirect.status_code == 302
    sign_in_url = redirect["Location"]
    assert sign_in_url.startswith("/sign-in/?next=")
    # when they sign in on that page
    response = client.post(sign_in_url, {"identifier": "yandang-staff", "password": PASSWORD}, follow=True)
    # then they are back on the audit log
    assert response.redirect_chain == [("/console/audit/", 302)]
    assert response.status_code == 200


def test_sign_out_ends_the_session(staff_client):
    # given a signed-in staff member
    # when they sign out
    response = staff_client.post("/sign-out/")
    # then they are back on the sign-in page and the console is closed to them
    assert response.status_code == 302
    assert response["Location"] == "/sign-in/"
    assert staff_client.get("/console/people/").status_code == 302


def test_sign_out_needs_post(staff_client, yandang_staff):
    # given a signed-in staff member
    # when a link (GET) points at sign-out
    response = staff_client.get("/sign-out/")
    # then nothing happens: a page cannot sign people out behind their back
    assert response.status_code == 405
    assert _signed_in_user_id(staff_client) == yandang_staff.pk


@pytest.mark.django_db
def test_switching_to_english_renders_pages_in_english(client):
    # given a visitor on the Chinese sign-in page
    assert page_lang(client.get("/sign-in/")) == "zh-Hans"
    # when they choose English
    switched = client.post("/i18n/setlang/", {"language": "en", "next": "/sign-in/"})
    # then they are sent back and the page is now English
    assert switched.status_code == 302
    assert switched["Location"] == "/sign-in/"
    response = client.get("/sign-in/")
    assert response.status_code == 200
    assert page_lang(response) == "en"


@pytest.mark.django_db
@pytest.mark.parametrize("accept", ["en-US,en;q=0.9", "zh-CN,zh;q=0.9", "fr"])
def test_chinese_is_the_default_whatever_the_browser_asks(client, accept):
    # given a browser asking for some language, and no choice made on the site
    # when it opens the sign-in page
    response = client.get("/sign-in/", headers={"accept-language": accept})
    # then the page is Chinese: only the language switch changes it
    assert page_lang(response) == "zh-Hans"


def test_sign_in_is_protected_against_cross_site_posts(yandang_staff):
    # given a browser that enforces CSRF like a real one
    browser = Client(enforce_csrf_checks=True)
    form = form_with(browser.get("/sign-in/"), "identifier")
    credentials = {"identifier": "yandang-staff", "password": PASSWORD}
    # when another site posts the credentials without the page's token
    forged = browser.post("/sign-in/", credentials)
    # then it is refused, while the page's own form works
    assert forged.status_code == 403
    assert _signed_in_user_id(browser) is None
    genuine = browser.post("/sign-in/", {**credentials, "csrfmiddlewaretoken": form["csrfmiddlewaretoken"]})
    assert genuine.status_code == 302
    assert _signed_in_user_id(browser) == yandang_staff.pk
