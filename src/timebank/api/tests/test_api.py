"""``/api/v1``, first endpoints: tokens, the error format, idempotent transfers, cursors and scope."""

from __future__ import annotations

from typing import Any

import pytest
import time_machine
from django.test import Client

from timebank.api.tests.conftest import bearer, send
from timebank.care.tests.conftest import _english, at, balance, user_of  # noqa: F401
from timebank.people.models import Member, User


def test_a_bad_or_missing_token_is_a_401_in_the_error_format(client: Client, old_elder: Member) -> None:
    tries: list[dict[str, Any]] = [
        {},
        {"HTTP_AUTHORIZATION": "Bearer tb_nothing_here"},
        {"HTTP_AUTHORIZATION": "Bearer x"},
    ]
    for headers in tries:
        response = client.get("/api/v1/me", **headers)
        assert response.status_code == 401
        assert set(response.json()) == {"code", "message", "fields"}


def test_me_and_my_statement_page_by_cursor(client: Client, old_elder: Member) -> None:
    me = user_of(old_elder)
    headers = bearer(me, me, ("read",))
    body = client.get("/api/v1/me", **headers).json()
    assert (body["member_id"], body["balance_minutes"]) == (old_elder.pk, 600)
    page = client.get("/api/v1/me/statement?limit=1", **headers).json()
    assert [e["amount_minutes"] for e in page["entries"]] == [600]
    assert page["next_cursor"] is None
    assert client.get("/api/v1/me/statement?cursor=%%%", **headers).status_code == 422


def test_a_transfer_is_idempotent_and_a_reused_key_with_another_body_is_a_409(
    client: Client, son: Member, old_elder: Member
) -> None:
    headers = bearer(user_of(son), user_of(son))
    body = {"receiver_id": old_elder.pk, "minutes": 30}
    missing = send(client, "/api/v1/exchange/transfers", body, headers)
    assert missing.status_code == 422 and missing.json()["code"] == "api_key_required"
    first = send(client, "/api/v1/exchange/transfers", body, headers, key="k-1")
    assert first.status_code == 201
    again = send(client, "/api/v1/exchange/transfers", body, headers, key="k-1")
    assert again.status_code == 201 and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert balance(son) == (270, 0)
    other = send(client, "/api/v1/exchange/transfers", {**body, "minutes": 31}, headers, key="k-1")
    assert other.status_code == 409 and other.json()["code"] == "api_idempotency_conflict"
    assert balance(son) == (270, 0)


@pytest.mark.parametrize(
    "raw",
    [
        '{"receiver_id": 1, "minutes": 30, "extra": true}',
        '{"receiver_id": "one", "minutes": 30}',
        "{not json",
        "[]",
    ],
)
def test_malformed_or_unexpected_bodies_are_4xx_and_write_nothing(
    client: Client, son: Member, raw: str
) -> None:
    headers = bearer(user_of(son), user_of(son)) | {"HTTP_IDEMPOTENCY_KEY": "k-2"}
    response = client.post("/api/v1/exchange/transfers", data=raw, content_type="application/json", **headers)
    assert 400 <= response.status_code < 500
    assert set(response.json()) == {"code", "message", "fields"}
    assert balance(son) == (300, 0)


def test_a_read_only_token_cannot_move_time(client: Client, son: Member, old_elder: Member) -> None:
    headers = bearer(user_of(son), user_of(son), ("read",))
    response = send(
        client, "/api/v1/exchange/transfers", {"receiver_id": old_elder.pk, "minutes": 5}, headers, "k"
    )
    assert response.status_code == 403 and response.json()["code"] == "api_scope_missing"


def test_staff_see_only_their_regions_services(
    client: Client, post: Any, station: User, hongkou_staff: User
) -> None:
    order = post()
    mine = client.get("/api/v1/care/orders", **bearer(station, station)).json()["orders"]
    assert [o["id"] for o in mine] == [order.pk]
    theirs = client.get("/api/v1/care/orders", **bearer(hongkou_staff, hongkou_staff)).json()["orders"]
    assert theirs == []


def test_the_openapi_document_is_served(client: Client) -> None:
    document = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/exchange/transfers" in document["paths"]
    assert document["components"]["securitySchemes"]


def test_a_volunteer_takes_checks_in_and_out_through_the_api(
    client: Client, post: Any, helper: Member, old_elder: Member, hongkou_staff: User
) -> None:
    order = post()
    headers = bearer(user_of(helper), user_of(helper))
    taken = send(client, f"/api/v1/care/orders/{order.pk}/accept", {}, headers)
    assert taken.status_code == 200 and taken.json()["status"] == "assigned"
    again = send(client, f"/api/v1/care/orders/{order.pk}/accept", {}, headers)
    assert again.status_code == 409 and again.json()["code"] == "care_illegal_transition"
    start, end = at(1, 10), at(1, 11, 5)
    with time_machine.travel(start, tick=False):
        assert (
            send(client, f"/api/v1/care/orders/{order.pk}/check-in", {}, headers).json()["status"]
            == "in_progress"
        )
    with time_machine.travel(end, tick=False):
        out = send(client, f"/api/v1/care/orders/{order.pk}/check-out", {"token": ""}, headers).json()
    assert (out["status"], out["service_minutes"]) == ("completed", 65)
    # and staff of another district are told it does not exist
    assert (
        client.get(f"/api/v1/care/orders/{order.pk}", **bearer(hongkou_staff, hongkou_staff)).status_code
        == 404
    )


def test_regions_are_read_by_code(client: Client, old_elder: Member) -> None:
    headers = bearer(user_of(old_elder), user_of(old_elder), ("read",))
    body = client.get("/api/v1/regions/310101023001", **headers).json()
    assert (body["name"], body["level"], body["parent"]) == ("雁荡居委会", "community", "310101023")
    assert client.get("/api/v1/regions/999999", **headers).status_code == 404
