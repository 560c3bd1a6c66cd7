"""POST /api/v1/sensing/events through the test client, and the device endpoints."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from timebank.api import services as api_services
from timebank.audit.models import AuditEvent
from timebank.sensing.models import DeadLetter, Device, Event

pytestmark = pytest.mark.django_db
URL = "/api/v1/sensing/events"


def post(client: Client, token: str, body: bytes | dict):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(URL, data=data, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")


def bearer(actor: Any, user: Any = None) -> dict[str, str]:
    issued = api_services.token_create(actor=actor, user=user or actor, name="app", scopes=["read", "write"])
    return {"HTTP_AUTHORIZATION": f"Bearer {issued.secret}"}


def test_a_gateway_posts_a_batch_and_hears_what_became_of_it(client, hub, band_v, band_e):
    # given
    batch = {
        "gateway": "st-yandang-1",
        "events": [band_v.event(1, [(band_e.identifier, -58)]), band_v.event(1), {"device": "wb-00017"}],
    }
    # when
    response = post(client, hub.token, batch)
    # then
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 1, "rejected": {"replay": 1}, "dead_lettered": 1}
    assert Event.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [(b"{", "not_json"), (b'{"gateway": "st-yandang-1", "events": 5}', "not_a_batch"), (b"", "not_json")],
)
def test_an_unreadable_body_is_a_422_in_the_error_format_and_a_dead_letter(client, hub, body, reason):
    response = post(client, hub.token, body)
    assert response.status_code == 422
    assert response.json()["code"] == "sensing_malformed_batch"
    assert set(response.json()) == {"code", "message", "fields"}
    assert DeadLetter.objects.get().reason == reason


def test_a_batch_naming_another_gateway_is_refused(client, hub, jinyang_hub, band_v):
    response = post(client, jinyang_hub.token, {"gateway": "st-yandang-1", "events": [band_v.event(1)]})
    assert response.status_code == 403
    assert response.json()["code"] == "sensing_gateway_mismatch"
    assert not Event.objects.exists()


def test_a_gateway_of_another_region_cannot_post_for_our_devices(client, jinyang_hub, band_v):
    response = post(client, jinyang_hub.token, {"gateway": "st-jinyang-1", "events": [band_v.event(1)]})
    assert response.status_code == 200
    assert response.json()["rejected"] == {"not_allowed": 1}


def test_only_a_gateways_token_may_post(client, yandang_staff, hub, band_v):
    headers = bearer(yandang_staff)
    response = client.post(
        URL,
        data=orjson.dumps({"gateway": "st-yandang-1", "events": [band_v.event(1)]}),
        content_type="application/json",
        **headers,
    )
    assert response.status_code == 403
    assert response.json()["code"] == "sensing_not_a_gateway"
    assert post(client, "tb_nope_nope", {}).status_code == 401


def test_a_revoked_gateways_token_stops_at_once(client, yandang_staff, hub, band_v):
    from timebank.sensing import services

    services.gateway_revoke(actor=yandang_staff, gateway=hub.gateway)
    response = post(client, hub.token, {"gateway": "st-yandang-1", "events": [band_v.event(1)]})
    assert response.status_code == 401


def test_the_openapi_document_describes_the_batch(client):
    schema = client.get("/api/v1/openapi.json").json()
    body = schema["paths"]["/api/v1/sensing/events"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["properties"]["events"]["maxItems"] == 10_000
    assert "sig" in body["schema"]["properties"]["events"]["items"]["properties"]


def test_staff_register_list_and_revoke_devices(client, yandang_staff, elder):
    # given
    headers = bearer(yandang_staff)
    # when
    created = client.post(
        "/api/v1/sensing/devices",
        data=orjson.dumps({"member_id": elder.pk, "identifier": "wb-00100", "kind": "wristband"}),
        content_type="application/json",
        **headers,
    )
    # then
    assert created.status_code == 201, created.content
    assert len(created.json()["secret"]) == 64
    device_id = created.json()["id"]
    listed = client.get("/api/v1/sensing/devices", **headers).json()
    assert [d["identifier"] for d in listed["devices"]] == ["wb-00100"]
    assert "secret" not in listed["devices"][0]
    revoked = client.post(f"/api/v1/sensing/devices/{device_id}/revoke", **headers)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert AuditEvent.objects.filter(event_type__startswith="sensing.device.").count() == 2


def test_staff_of_another_district_neither_see_nor_revoke_our_devices(client, jinyang_staff, band_v, elder):
    headers = bearer(jinyang_staff)
    assert client.get("/api/v1/sensing/devices", **headers).json()["devices"] == []
    response = client.post(f"/api/v1/sensing/devices/{band_v.device.pk}/revoke", **headers)
    assert response.status_code == 404
    response = client.post(
        "/api/v1/sensing/devices",
        data=orjson.dumps({"member_id": elder.pk, "identifier": "wb-00101", "kind": "wristband"}),
        content_type="application/json",
        **headers,
    )
    assert response.status_code == 404
    assert Device.objects.get(pk=band_v.device.pk).revoked_at is None


# what JSON can carry (no NaN or infinity, no lone surrogates: a body with those is not JSON, refused whole)
text = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=20,
)
event_like = st.fixed_dictionaries(
    {},
    optional={
        "device": st.sampled_from(["wb-00017", "wb-00031", "x|y", ""]) | json_values,
        "seq": st.integers(min_value=-(2**70), max_value=2**70) | json_values,
        "ts": st.integers() | json_values,
        "peers": st.lists(st.tuples(text, st.integers(-300, 300)), max_size=3) | json_values,
        "battery": st.integers(-5, 105) | json_values,
        "sig": text | json_values,
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(event_like | json_values, max_size=5))
def test_no_event_whatever_its_shape_makes_the_endpoint_fail(client, hub, band_v, events):
    response = post(client, hub.token, {"gateway": "st-yandang-1", "events": events})
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["accepted"] + sum(answer["rejected"].values()) + answer["dead_lettered"] == len(events)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_no_body_whatever_it_holds_makes_the_endpoint_fail(client, hub, body):
    response = post(client, hub.token, body)
    assert response.status_code in (200, 403, 422), response.content


def test_a_batch_naming_a_gateway_with_a_nul_is_refused_and_kept_as_a_dead_letter(client, hub, band_v):
    # given: a gateway name PostgreSQL text cannot hold
    batch = {"gateway": "st-yandang-1\x00", "events": [band_v.event(1)]}
    # when
    response = post(client, hub.token, batch)
    # then
    assert response.status_code == 403
    assert response.json()["code"] == "sensing_gateway_mismatch"
    assert DeadLetter.objects.get().detail == "st-yandang-1\\u0000"


def test_an_unreadable_body_holding_a_nul_is_a_422_and_a_dead_letter(client, hub):
    response = post(client, hub.token, b"\x00{")
    assert response.status_code == 422
    letter = DeadLetter.objects.get()
    assert letter.reason == "not_json" and letter.payload == "\\u0000{"
