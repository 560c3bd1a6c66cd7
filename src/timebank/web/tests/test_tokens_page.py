"""Apps and devices on the web: a member issues a token for their phone (shown once) and revokes it; staff do
the same for a member of their community, a device token included; staff of another district cannot."""

from __future__ import annotations

import re

from django.test import Client

from timebank.api.models import ApiToken
from timebank.conftest import staff
from timebank.people.models import Member, Role, User
from timebank.regions.models import Region


def issue(client: Client, path: str, **fields: str) -> tuple[int, str]:
    response = client.post(path, {"name": "女儿的手机", "days": "30", **fields})
    return response.status_code, response.content.decode()


def test_a_member_issues_a_token_sees_it_once_and_revokes_it(client: Client, member_user: User) -> None:
    client.force_login(member_user)
    assert "我的应用和设备" in client.get("/").content.decode()
    status, html = issue(client, "/me/tokens/", write="on")
    assert status == 200
    shown = re.search(r'<code id="issued-token">(tb_[^<]+)</code>', html)
    assert shown is not None
    secret = shown.group(1)
    token = ApiToken.objects.get(user=member_user)
    assert (token.name, token.scopes, token.kind) == ("女儿的手机", ["read", "write"], "personal")
    api = Client()
    assert api.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200
    listing = client.get("/me/tokens/").content.decode()
    assert "女儿的手机" in listing and secret not in listing  # never shown again
    response = client.post(f"/me/tokens/{token.pk}/revoke/")
    assert response.status_code == 302
    assert api.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 401
    assert "已撤销" in client.get("/me/tokens/").content.decode()


def test_a_bad_form_names_the_field_and_issues_nothing(client: Client, member_user: User) -> None:
    client.force_login(member_user)
    status, html = issue(client, "/me/tokens/", name="", days="999")
    assert status == 422
    assert 'id="id_name_error"' in html and 'id="id_days_error"' in html
    assert not ApiToken.objects.exists()


def test_a_member_cannot_make_a_device_token_for_themselves(client: Client, member_user: User) -> None:
    client.force_login(member_user)
    issue(client, "/me/tokens/", device="on")
    assert ApiToken.objects.get(user=member_user).kind == "personal"


def test_staff_issue_a_device_token_for_a_member_and_outsiders_cannot(
    client: Client,
    yandang_staff: User,
    admin_user: User,
    tree: dict[str, Region],
    member_user: User,
    elder: Member,
) -> None:
    client.force_login(yandang_staff)
    page = client.get(f"/console/people/{elder.pk}/").content.decode()
    assert f"/console/people/{elder.pk}/tokens/" in page
    status, html = issue(client, f"/console/people/{elder.pk}/tokens/", device="on", write="on")
    assert status == 200 and "tb_" in html
    token = ApiToken.objects.get(user=member_user)
    assert (token.kind, token.created_by) == ("device", yandang_staff)
    outsider = staff(admin_user, "hongkou-station", Role.STATION_STAFF, tree["310109018"])
    other = Client()
    other.force_login(outsider)
    assert other.get(f"/console/people/{elder.pk}/tokens/").status_code == 404
    assert other.post(f"/me/tokens/{token.pk}/revoke/").status_code == 404
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None
    assert client.post(f"/me/tokens/{token.pk}/revoke/").status_code == 302
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
