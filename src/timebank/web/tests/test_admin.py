"""The Django admin is for platform administrators; records that services audit are read-only there."""

from __future__ import annotations

import datetime as dt

from timebank.conftest import PASSWORD, make_id_number
from timebank.people.models import Member
from timebank.web.tests.pages import html_of


def test_a_superuser_can_open_the_admin(client, admin_user):
    # given a platform administrator
    client.force_login(admin_user)
    # when they open the admin
    response = client.get("/admin/")
    # then it opens, listing the members
    assert response.status_code == 200
    assert "/admin/people/member/" in html_of(response)


def test_a_superuser_signs_in_to_the_admin_through_its_own_form(client, admin_user):
    # given the admin's sign-in form / when the administrator signs in there
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "root-admin", "password": PASSWORD, "next": "/admin/"}
    )
    # then they are in
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_a_staff_grant_alone_does_not_open_the_admin(client, yandang_staff):
    # given community staff, signed in
    client.force_login(yandang_staff)
    # when they open the admin
    response = client.get("/admin/")
    # then they are sent to the admin's sign-in, not let in
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert client.get("/admin/people/member/").status_code == 302


def test_staff_credentials_are_refused_by_the_admin_sign_in(client, yandang_staff):
    # given community staff / when they sign in on the admin's form
    response = client.post(
        "/admin/login/", {"username": "yandang-staff", "password": PASSWORD, "next": "/admin/"}
    )
    # then the admin does not let them in
    assert response.status_code == 200
    assert client.get("/admin/").status_code == 302


def test_the_member_admin_is_read_only(client, admin_user, elder):
    # given a platform administrator and a registered elder
    client.force_login(admin_user)
    # when they look at members and try to add or change one
    listing = client.get("/admin/people/member/")
    add = client.get("/admin/people/member/add/")
    change = client.get(f"/admin/people/member/{elder.pk}/change/")
    posted = client.post(f"/admin/people/member/{elder.pk}/change/", {"name": "改名"})
    deleted = client.post(f"/admin/people/member/{elder.pk}/delete/", {"post": "yes"})
    # then they may look but not add, change or delete
    assert listing.status_code == 200
    assert listing.context["has_add_permission"] is False
    assert "/admin/people/member/add/" not in html_of(listing)
    assert add.status_code == 403
    assert change.status_code == 200
    assert change.context["has_change_permission"] is False
    assert 'name="_save"' not in html_of(change)
    assert posted.status_code == 403
    assert deleted.status_code == 403
    assert Member.objects.get(pk=elder.pk).name == "朱德林"


def test_the_member_admin_does_not_show_the_full_id_number(client, admin_user, elder):
    # given a platform administrator
    client.force_login(admin_user)
    number = make_id_number(dt.date(1940, 3, 5), "M", serial=8)
    # when they list members and open the elder
    listing = html_of(client.get("/admin/people/member/"))
    detail = html_of(client.get(f"/admin/people/member/{elder.pk}/change/"))
    # then the list shows the masked number, and neither page the number, its cipher or its hash
    assert elder.id_number_masked in listing
    for page in (listing, detail):
        assert number not in page
        assert elder.id_number_cipher not in page
        assert elder.id_number_hash not in page
        assert elder.health_notes_cipher not in page


def test_admin_writes_are_audited_with_old_and_new_values(client, admin_user, yandang_staff):
    from django.utils import timezone

    from timebank.audit.models import AuditEvent

    # given
    client.force_login(admin_user)
    url = f"/admin/people/user/{yandang_staff.pk}/change/"
    joined = timezone.localtime(yandang_staff.date_joined)
    form = {
        "username": yandang_staff.username,
        "first_name": "新名字",
        "last_name": "",
        "email": "",
        "is_active": "on",
        "date_joined_0": joined.strftime("%Y-%m-%d"),
        "date_joined_1": joined.strftime("%H:%M:%S"),
        "mobile": "",
        "member": "",
    }
    # when the admin changes a user, then changes the user's password, then deletes another user
    assert client.post(url, form).status_code == 302
    password_url = f"/admin/people/user/{yandang_staff.pk}/password/"
    response = client.post(
        password_url,
        {"password1": "Another-Pass-91", "password2": "Another-Pass-91", "usable_password": "true"},
    )
    assert response.status_code == 302

    # then each write is in the audit log, the change with its old and new value, the password masked
    changed = AuditEvent.objects.filter(event_type="admin.changed", subject_id=str(yandang_staff.pk))
    assert any(
        e.old and e.old.get("first_name") == "" and e.new and e.new.get("first_name") == "新名字"
        for e in changed
    )
    assert any("password" in str(e.new).lower() for e in changed)
    assert not any("Another-Pass-91" in str(e.new) for e in changed)
