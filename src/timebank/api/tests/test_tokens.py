"""Tokens through the API: signing in for one, issuing, listing and revoking them (by the user and by their
staff), scopes that never grow, rate limits, and the refusals every client meets (bad tokens, unknown paths,
huge bodies) — always in the one error format. Also the interactive docs, served without any CDN."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import time_machine
from django.contrib.staticfiles import finders
from django.test import Client, override_settings
from django.utils import timezone

from timebank.api.models import ApiToken
from timebank.api.tests.conftest import bearer, send
from timebank.audit.models import AuditEvent
from timebank.care.tests.conftest import user_of
from timebank.conftest import PASSWORD
from timebank.exchange.models import AccountMove
from timebank.ledger.models import Transaction
from timebank.people.models import Member, User


def sign_in(client: Client, username: str, password: str = PASSWORD, **extra: Any) -> Any:
    body = {"username": username, "password": password, "name": "王阿婆的手机", "scopes": ["read"]}
    return send(client, "/api/v1/auth/token", body, extra)


def error_shaped(response: Any) -> bool:
    return set(response.json()) == {"code", "message", "fields"}


def test_signing_in_gives_a_token_shown_once_that_works(client: Client, old_elder: Member) -> None:
    response = sign_in(client, "wang-apo")
    assert response.status_code == 201 and response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["scopes"] == ["read"] and body["kind"] == "personal"
    assert body["token"].startswith("tb_")
    me = client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {body['token']}").json()
    assert me["member_id"] == old_elder.pk
    stored = ApiToken.objects.get(pk=body["id"])
    assert body["token"].split("_", 2)[2] not in stored.secret_hash  # only a hash is kept
    listed = client.get("/api/v1/tokens", HTTP_AUTHORIZATION=f"Bearer {body['token']}").json()
    assert "token" not in listed["tokens"][0]


def test_a_wrong_password_is_a_401_and_repeated_ones_lock_the_account(
    client: Client, old_elder: Member
) -> None:
    wrong = sign_in(client, "wang-apo", "not-her-password")
    assert wrong.status_code == 401 and error_shaped(wrong)
    assert wrong.json()["code"] == "authentication_failed"
    for _ in range(4):
        last = sign_in(client, "wang-apo", "not-her-password")
    assert last.status_code == 429 and last.json()["code"] == "account_locked"
    assert sign_in(client, "wang-apo").status_code == 429  # even with the right password, for a while
    assert not ApiToken.objects.exists()


@override_settings(API_RATE_LIMITS={"sign_in": (3, 60), "token_create": (20, 3600)})
def test_sign_in_is_rate_limited_per_client_address(client: Client, old_elder: Member) -> None:
    answers = [sign_in(client, "nobody-at-all", REMOTE_ADDR="10.0.0.7").status_code for _ in range(4)]
    assert answers == [401, 401, 401, 429]
    limited = sign_in(client, "wang-apo", REMOTE_ADDR="10.0.0.7")
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited" and error_shaped(limited)
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert sign_in(client, "wang-apo", REMOTE_ADDR="10.0.0.8").status_code == 201  # another address


@override_settings(API_RATE_LIMITS={"sign_in": (10, 60), "token_create": (2, 3600)})
def test_token_creation_is_rate_limited_per_user(client: Client, old_elder: Member) -> None:
    me = user_of(old_elder)
    headers = bearer(me, me)
    body = {"name": "平板", "scopes": ["read"]}
    codes = [send(client, "/api/v1/tokens", body, headers).status_code for _ in range(3)]
    assert codes == [201, 201, 429]
    assert ApiToken.objects.filter(user=me).count() == 3  # the bearer's own and two issued
    with time_machine.travel(timezone.now() + dt.timedelta(hours=1, minutes=1)):
        assert send(client, "/api/v1/tokens", body, headers).status_code == 201


def test_a_token_never_issues_one_with_more_scopes_than_its_own(client: Client, old_elder: Member) -> None:
    me = user_of(old_elder)
    read_only = send(client, "/api/v1/tokens", {"name": "x", "scopes": ["read"]}, bearer(me, me, ("read",)))
    assert read_only.status_code == 403 and read_only.json()["code"] == "api_scope_missing"
    writer = bearer(me, me, ("write",))
    grows = send(client, "/api/v1/tokens", {"name": "x", "scopes": ["read", "write"]}, writer)
    assert grows.status_code == 403 and grows.json()["code"] == "api_scope_escalation"
    assert send(client, "/api/v1/tokens", {"name": "x", "scopes": ["write"]}, writer).status_code == 201


def test_bad_token_requests_name_the_field(client: Client, old_elder: Member) -> None:
    me = user_of(old_elder)
    headers = bearer(me, me)
    before = ApiToken.objects.count()
    for body, field in [
        ({"name": "", "scopes": ["read"]}, "name"),
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "x", "scopes": ["admin"]}, "scopes.0"),
        ({"name": "x", "scopes": ["read"], "days": 400}, "days"),
        ({"name": "x", "scopes": ["read"], "kind": "root"}, "kind"),
        ({"name": "x", "scopes": ["read"], "owner": 1}, "owner"),
    ]:
        response = send(client, "/api/v1/tokens", body, headers)
        assert response.status_code == 422 and error_shaped(response), body
        assert field in response.json()["fields"], (body, response.json())
    assert ApiToken.objects.count() == before


def test_staff_issue_a_device_token_for_a_member_of_their_communities_only(
    client: Client, station: User, hongkou_staff: User, old_elder: Member, helper: Member
) -> None:
    body = {"name": "床边信标网关", "scopes": ["write"], "kind": "device", "member_id": old_elder.pk}
    issued = send(client, "/api/v1/tokens", body, bearer(station, station))
    assert issued.status_code == 201 and issued.json()["kind"] == "device"
    token = ApiToken.objects.get(pk=issued.json()["id"])
    assert (token.user, token.created_by) == (user_of(old_elder), station)
    assert AuditEvent.objects.filter(
        event_type="api.token.created", subject_id=user_of(old_elder).pk
    ).exists()
    elsewhere = send(client, "/api/v1/tokens", body, bearer(hongkou_staff, hongkou_staff))
    assert elsewhere.status_code == 404 and error_shaped(elsewhere)
    neighbour = send(client, "/api/v1/tokens", body, bearer(user_of(helper), user_of(helper)))
    assert neighbour.status_code in (403, 404) and error_shaped(neighbour)
    assert ApiToken.objects.filter(user=user_of(old_elder), kind="device").count() == 1


def test_tokens_are_listed_page_by_page_and_only_to_their_holder_or_staff(
    client: Client, station: User, hongkou_staff: User, old_elder: Member, helper: Member
) -> None:
    me = user_of(old_elder)
    headers: dict[str, Any] = bearer(me, me)
    for n in range(4):
        send(client, "/api/v1/tokens", {"name": f"设备{n}", "scopes": ["read"]}, headers)
    seen: list[int] = []
    cursor = ""
    while True:
        found = client.get(f"/api/v1/tokens?limit=2&cursor={cursor}", **headers).json()
        seen += [t["id"] for t in found["tokens"]]
        if not found["next_cursor"]:
            break
        cursor = found["next_cursor"]
    assert sorted(seen) == sorted(ApiToken.objects.filter(user=me).values_list("pk", flat=True))
    assert len(seen) == len(set(seen)) == 5
    staff_view = client.get(f"/api/v1/tokens?member_id={old_elder.pk}", **bearer(station, station)).json()
    assert len(staff_view["tokens"]) == 5
    for outsider in (hongkou_staff, user_of(helper)):
        response = client.get(f"/api/v1/tokens?member_id={old_elder.pk}", **bearer(outsider, outsider))
        assert response.status_code in (403, 404) and error_shaped(response)
    mine = client.get("/api/v1/tokens", **bearer(user_of(helper), user_of(helper))).json()["tokens"]
    assert {t["id"] for t in mine} == set(
        ApiToken.objects.filter(user__member=helper).values_list("pk", flat=True)
    )


def test_revoking_a_token_stops_it_at_once(
    client: Client, station: User, hongkou_staff: User, old_elder: Member, helper: Member
) -> None:
    me = user_of(old_elder)
    phone = bearer(me, me)
    tablet = send(client, "/api/v1/tokens", {"name": "平板", "scopes": ["read"]}, phone).json()
    tablet_headers: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {tablet['token']}"}
    assert client.get("/api/v1/me", **tablet_headers).status_code == 200
    path = f"/api/v1/tokens/{tablet['id']}/revoke"
    for outsider in (hongkou_staff, user_of(helper)):
        response = send(client, path, {}, bearer(outsider, outsider))
        assert response.status_code == 404 and error_shaped(response)
    assert client.get("/api/v1/me", **tablet_headers).status_code == 200
    revoked = send(client, path, {}, phone)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert client.get("/api/v1/me", **tablet_headers).status_code == 401
    assert send(client, path, {}, phone).status_code == 200  # twice changes nothing
    # the station revokes the phone's token for her (a lost phone)
    phone_id = ApiToken.objects.filter(user=me, revoked_at__isnull=True).get().pk
    assert send(client, f"/api/v1/tokens/{phone_id}/revoke", {}, bearer(station, station)).status_code == 200
    assert client.get("/api/v1/me", **phone).status_code == 401
    assert AuditEvent.objects.filter(event_type="api.token.revoked").count() == 3


def test_an_expired_token_is_refused(client: Client, old_elder: Member) -> None:
    me = user_of(old_elder)
    headers = bearer(me, me)
    with time_machine.travel(timezone.now() + dt.timedelta(days=91)):
        response = client.get("/api/v1/me", **headers)
    assert response.status_code == 401 and response.json()["code"] == "api_bad_token"


def test_unknown_paths_and_methods_answer_in_the_error_format(client: Client, old_elder: Member) -> None:
    headers = bearer(user_of(old_elder), user_of(old_elder))
    missing = client.get("/api/v1/no-such-thing", **headers)
    assert missing.status_code == 404 and error_shaped(missing)
    wrong_method = client.delete("/api/v1/me", **headers)
    assert wrong_method.status_code == 405


def test_a_huge_body_is_a_413_and_writes_nothing(client: Client, son: Member, old_elder: Member) -> None:
    headers = bearer(user_of(son), user_of(son)) | {"HTTP_IDEMPOTENCY_KEY": "huge"}
    body = json.dumps({"receiver_id": old_elder.pk, "minutes": 30, "note": "很" * (3 * 1024 * 1024)})
    before = Transaction.objects.count(), AccountMove.objects.count()
    response = client.post(
        "/api/v1/exchange/transfers", data=body, content_type="application/json", **headers
    )
    assert response.status_code == 413 and response.json()["code"] == "api_payload_too_large"
    assert (Transaction.objects.count(), AccountMove.objects.count()) == before


def test_a_huge_number_is_refused_not_a_server_error(client: Client, son: Member) -> None:
    headers = bearer(user_of(son), user_of(son))
    for path in (
        "/api/v1/care/orders/99999999999999999999999",
        "/api/v1/tokens?member_id=99999999999999999999",
    ):
        response = client.get(path, **headers)
        assert 400 <= response.status_code < 500 and error_shaped(response), path
    body = {"receiver_id": 10**30, "minutes": 30}
    response = send(client, "/api/v1/exchange/transfers", body, headers, key="big")
    assert response.status_code == 422 and "receiver_id" in response.json()["fields"]


def test_the_interactive_docs_load_everything_from_this_server(client: Client) -> None:
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(s.endswith("swagger-ui-bundle.js") for s in sources)
    assert all(s.startswith("/") for s in sources), sources  # nothing from another host
    for source in sources:
        if source.startswith("/static/"):
            assert finders.find(source.removeprefix("/static/")), source
    settings_json = json.loads(re.search(r'id="swagger-settings">(.*?)</script>', html, re.S).group(1))  # type: ignore[union-attr]
    assert settings_json["url"] == "/api/v1/openapi.json" and settings_json["validatorUrl"] is None


def test_a_kept_answer_does_not_give_away_the_body_it_answered(
    client: Client, son: Member, old_elder: Member
) -> None:
    """The kept hash of a request's body is keyed: a body of a few digits (a PIN) cannot be found from it."""
    import hashlib

    from timebank.api.models import IdempotentResponse

    body = {"receiver_id": old_elder.pk, "minutes": 30}
    assert (
        send(
            client, "/api/v1/exchange/transfers", body, bearer(user_of(son), user_of(son)), key="k"
        ).status_code
        == 201
    )
    kept = IdempotentResponse.objects.get(key="k")
    plain = json.dumps({"payload": body}, sort_keys=True, default=str)
    assert kept.body_hash != hashlib.sha256(plain.encode()).hexdigest()


def test_a_program_asks_for_its_language(client: Client, old_elder: Member) -> None:
    chinese = client.get("/api/v1/me")
    english = client.get("/api/v1/me", HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.8")
    assert chinese.json()["code"] == english.json()["code"] == "api_bad_token"
    assert chinese["Content-Language"] == "zh-hans" and english["Content-Language"] == "en"
    assert english.json()["message"] == "Sign in with a valid bearer token."
    assert chinese.json()["message"] != english.json()["message"]
    assert "Accept-Language" in english["Vary"]
    # the web keeps to its cookie: a relative's English phone does not turn an elder's pages English
    assert client.get("/sign-in/", HTTP_ACCEPT_LANGUAGE="en")["Content-Language"] == "zh-hans"


def test_a_token_without_the_read_scope_reads_nothing(
    client: Client, station: User, old_elder: Member
) -> None:
    """A write-only token (a device's) may act, not read."""
    headers = bearer(station, user_of(old_elder), ("write",))
    response = client.get("/api/v1/me", **headers)
    assert response.status_code == 403 and response.json()["code"] == "api_scope_missing"
    assert client.get("/api/v1/me", **bearer(station, user_of(old_elder), ("read",))).status_code == 200


def test_an_instant_with_any_offset_is_taken_as_the_same_instant_in_utc(
    client: Client, station: User
) -> None:
    """PostgreSQL holds no offset beyond ±15:59 (and a refusal there would end the transaction): the API turns
    every instant it is sent into UTC first."""
    headers = bearer(station, station)
    odd = client.get("/api/v1/audit/events?since=2026-11-19T03%3A31%3A48-16%3A26", **headers)
    assert odd.status_code == 200
    ancient = client.get("/api/v1/audit/events?until=0001-01-01T00%3A00%3A00%2B14%3A00", **headers)
    assert ancient.status_code == 422 and "until" in ancient.json()["fields"]
    assert client.get("/api/v1/me", **headers).status_code == 200  # the connection still answers
