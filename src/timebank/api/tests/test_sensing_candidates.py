"""``/api/v1/sensing/candidates`` and ``/api/v1/care/orders/{id}/sessions``: unplanned help the sensors
measured, recorded as a service or dismissed by the elder or her station as an app would do it; who sees and
decides what; refusals in the one error shape with nothing written; an idempotent record; cursors; and the
time the sensors measured for a service."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from timebank.api.tests.conftest import bearer, send
from timebank.audit.models import AuditEvent
from timebank.care import services as care
from timebank.care.models import ServiceOrder
from timebank.care.tests.conftest import _english, at, balance, user_of  # noqa: F401
from timebank.care.tests.flows import World, world
from timebank.people.models import Member, User
from timebank.sensing.models import Candidate, PresenceSession
from timebank.sensing.presence import candidate_dismiss, sessions_derive
from timebank.sensing.tests.presence_kit import *  # noqa: F403
from timebank.sensing.tests.presence_kit import Events
from timebank.web.tests.care_fixtures import *  # noqa: F403 (赵阿公, another elder of 雁荡)

API = "/api/v1"


def me(member: Member, scopes: tuple[str, ...] = ("read", "write")) -> dict[str, Any]:
    return bearer(user_of(member), user_of(member), scopes)


def staff(user: User, scopes: tuple[str, ...] = ("read", "write")) -> dict[str, Any]:
    return bearer(user, user, scopes)


def get(client: Client, path: str, headers: dict[str, Any]) -> Any:
    return client.get(f"{API}{path}", **headers)


def act(client: Client, path: str, body: Any, headers: dict[str, Any], key: str | None = None) -> Any:
    return send(client, f"{API}{path}", body, headers, key)


def refusal(response: Any, status: int, code: str) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert response.status_code == status, body
    assert set(body) == {"code", "message", "fields"} and body["code"] == code, body
    return body


def state() -> tuple[World, int, tuple[tuple[Any, ...], ...]]:
    """Everything a refused request must leave as it was: the care world, the audit log (tokens aside) and
    every candidate's decision."""
    decisions = tuple(
        PresenceSession.objects.order_by("pk").values_list(
            "pk", "candidate", "order_id", "decided_by_id", "dismiss_reason"
        )
    )
    audit = AuditEvent.objects.exclude(event_type__startswith="api.").count()
    return world(), audit, decisions


def together(events: Events, *visits: tuple[Member, Member, int, int]) -> list[PresenceSession]:
    """Each (volunteer, elder, days from today, hour): the two together for 40 minutes from then, no service
    planned — one candidate each. Every candidate waiting, oldest first."""
    sightings = []
    for volunteer, elder, days, hour in visits:
        sightings += events.together(volunteer, elder, at(days, hour), at(days, hour, 40))
    last_day = max(days for _v, _e, days, _h in visits)
    sessions_derive(sightings=sightings + events.later(at(last_day, 23)), auto_approve=False)
    return list(PresenceSession.objects.filter(candidate=Candidate.PENDING).order_by("started_at"))


@pytest.fixture
def candidate(events: Events, helper: Member, old_elder: Member) -> PresenceSession:
    """李志强 with 王阿婆 yesterday 15:00–15:40, no service planned."""
    (session,) = together(events, (helper, old_elder, -1, 15))
    return session


RECORD = {"category": "emotional_support", "funding": "own"}


def test_the_elder_sees_her_candidate_and_records_it_once_however_often_the_app_retries(
    client: Client, candidate: PresenceSession, old_elder: Member, helper: Member
) -> None:
    phone = me(old_elder)
    # when her app lists what waits for her
    listed = get(client, "/sensing/candidates?status=pending", phone).json()
    # then it is the visit, who was with her, when and how long
    assert listed["next_cursor"] is None
    (row,) = listed["candidates"]
    assert row == get(client, f"/sensing/candidates/{candidate.pk}", phone).json()
    assert {k: row[k] for k in ("id", "number", "status", "community", "elder_id", "volunteer_id")} == {
        "id": candidate.pk,
        "number": candidate.number,
        "status": "pending",
        "community": "310101023001",
        "elder_id": old_elder.pk,
        "volunteer_id": helper.pk,
    }
    assert (row["volunteer_name"], row["measured_minutes"], row["order_id"]) == (helper.name, 40, None)

    # when she records it without an Idempotency-Key, nothing happens
    before = state()
    path = f"/sensing/candidates/{candidate.pk}/record"
    refusal(act(client, path, RECORD, phone), 422, "api_key_required")
    assert state() == before

    # when she records it as company paid from her savings, and the app sends it again
    first = act(client, path, RECORD, phone, key="rec-1")
    again = act(client, path, RECORD, phone, key="rec-1")

    # then one service is made, confirmed by her and held on her savings; the retry gets the same answer
    assert first.status_code == 201 and again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    body = first.json()
    order = ServiceOrder.objects.get()
    assert body["candidate"]["status"] == "recorded" and body["candidate"]["order_id"] == order.pk
    assert body["candidate"]["decided_by_id"] == user_of(old_elder).pk
    assert (body["order"]["id"], body["order"]["status"], body["order"]["source"]) == (
        order.pk,
        "confirmed",
        "sensors",
    )
    assert (body["order"]["service_minutes"], body["order"]["confirmation_method"]) == (40, "device")
    assert balance(old_elder) == (600, order.reserved_minutes) and order.reserved_minutes > 0
    assert get(client, "/sensing/candidates?status=pending", phone).json()["candidates"] == []
    assert [
        c["id"] for c in get(client, "/sensing/candidates?status=recorded", phone).json()["candidates"]
    ] == [candidate.pk]
    # and the same key for another request is a conflict
    refusal(act(client, path, {**RECORD, "notes": "x"}, phone, key="rec-1"), 409, "api_idempotency_conflict")


def test_the_station_records_it_and_everyone_on_the_service_sees_the_time_the_sensors_measured(
    client: Client,
    candidate: PresenceSession,
    station: User,
    old_elder: Member,
    helper: Member,
    son: Member,
    hongkou_staff: User,
) -> None:
    desk = staff(station)
    assert [c["id"] for c in get(client, "/sensing/candidates", desk).json()["candidates"]] == [candidate.pk]
    recorded = act(client, f"/sensing/candidates/{candidate.pk}/record", RECORD, desk, key="s-1")
    assert recorded.status_code == 201, recorded.json()
    order = recorded.json()["order"]
    assert order["status"] == "completed"  # she confirms it next, like any service given

    for who in (desk, me(old_elder), me(helper), me(son)):
        measured = get(client, f"/care/orders/{order['id']}/sessions", who).json()
        assert (measured["order_id"], measured["measured_minutes"], measured["claimed_minutes"]) == (
            order["id"],
            40,
            40,
        )
        assert (measured["difference_minutes"], measured["agrees"]) == (0, True)
        assert measured["tolerance_minutes"] == 10
        (session,) = measured["sessions"]
        assert (session["id"], session["number"], session["status"], session["measured_minutes"]) == (
            candidate.pk,
            candidate.number,
            "closed",
            40,
        )
        assert session["volunteer_sightings"] > 0 and session["elder_sightings"] > 0
    refusal(
        get(client, f"/care/orders/{order['id']}/sessions", staff(hongkou_staff)), 404, "care_order_not_found"
    )


def test_a_service_without_a_volunteer_has_nothing_measured(
    client: Client, post: Any, old_elder: Member
) -> None:
    order = post()
    measured = get(client, f"/care/orders/{order.pk}/sessions", me(old_elder)).json()
    assert measured == {
        "order_id": order.pk,
        "measured_minutes": None,
        "claimed_minutes": None,
        "difference_minutes": None,
        "tolerance_minutes": None,
        "agrees": False,
        "sessions": [],
    }


def test_the_elder_or_her_station_dismisses_it_saying_why(
    client: Client, candidate: PresenceSession, old_elder: Member
) -> None:
    phone = me(old_elder)
    before = state()
    body = refusal(
        act(client, f"/sensing/candidates/{candidate.pk}/dismiss", {"reason": " "}, phone),
        422,
        "sensing_reason_required",
    )
    assert list(body["fields"]) == ["reason"]
    assert state() == before

    dismissed = act(client, f"/sensing/candidates/{candidate.pk}/dismiss", {"reason": "邻居来聊天"}, phone)

    assert dismissed.status_code == 200
    assert {k: dismissed.json()[k] for k in ("id", "status", "reason", "order_id")} == {
        "id": candidate.pk,
        "status": "dismissed",
        "reason": "邻居来聊天",
        "order_id": None,
    }
    assert AuditEvent.objects.get(event_type="sensing.candidate.dismissed").actor_id == user_of(old_elder).pk
    # and once decided, it is not decided again
    before = state()
    refusal(
        act(client, f"/sensing/candidates/{candidate.pk}/record", RECORD, phone, key="late"),
        409,
        "sensing_candidate_decided",
    )
    assert state() == before


@pytest.mark.parametrize("who", ["hongkou_staff", "helper", "son", "poor_elder"])
def test_anyone_else_is_told_it_does_not_exist(
    client: Client, candidate: PresenceSession, who: str, request: pytest.FixtureRequest
) -> None:
    # another district's staff, the volunteer himself, her son (a relative decides nothing on it) and another
    # elder of her community
    person = request.getfixturevalue(who)
    headers = staff(person) if isinstance(person, User) else me(person)
    before = state()
    assert get(client, "/sensing/candidates", headers).json() == {"candidates": [], "next_cursor": None}
    refusal(get(client, f"/sensing/candidates/{candidate.pk}", headers), 404, "sensing_candidate_not_found")
    refusal(
        act(client, f"/sensing/candidates/{candidate.pk}/record", RECORD, headers, key="k"),
        404,
        "sensing_candidate_not_found",
    )
    refusal(
        act(client, f"/sensing/candidates/{candidate.pk}/dismiss", {"reason": "不是"}, headers),
        404,
        "sensing_candidate_not_found",
    )
    assert state() == before


def test_a_read_only_token_decides_nothing(
    client: Client, candidate: PresenceSession, old_elder: Member, station: User
) -> None:
    tokens = (me(old_elder, ("read",)), staff(station, ("read",)))
    before = state()
    for headers in tokens:
        assert get(client, f"/sensing/candidates/{candidate.pk}", headers).status_code == 200
        refusal(
            act(client, f"/sensing/candidates/{candidate.pk}/record", RECORD, headers, key="r"),
            403,
            "api_scope_missing",
        )
        refusal(
            act(client, f"/sensing/candidates/{candidate.pk}/dismiss", {"reason": "不是"}, headers),
            403,
            "api_scope_missing",
        )
    assert state() == before


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({**RECORD, "by_the_way": 1}, 422, "validation_failed", "by_the_way"),
        ({"funding": "own"}, 422, "validation_failed", "category"),
        ({**RECORD, "funding": "cash"}, 422, "validation_failed", "funding"),
        ({**RECORD, "category": "juggling"}, 422, "care_unknown_category", "category"),
        ({**RECORD, "funding": "pool"}, 422, "care_not_priority", "funding"),  # she is no priority elder
        ({**RECORD, "funding": "family"}, 422, "care_payer_missing", "payer_id"),
        ({**RECORD, "funding": "family", "payer_id": 99999999}, 422, "member_not_found", "payer_id"),
        ({**RECORD, "notes": "长" * 401}, 422, "validation_failed", "notes"),
    ],
)
def test_a_bad_record_is_refused_by_field_and_writes_nothing(
    client: Client,
    candidate: PresenceSession,
    old_elder: Member,
    body: dict[str, Any],
    status: int,
    code: str,
    field: str,
) -> None:
    phone = me(old_elder)
    before = state()
    response = act(client, f"/sensing/candidates/{candidate.pk}/record", body, phone, key="bad")
    assert field in refusal(response, status, code)["fields"]
    assert state() == before
    assert not ServiceOrder.objects.exists()


@pytest.mark.parametrize(
    ("candidate_id", "status", "code"),
    [
        ("abc", 422, "validation_failed"),
        ("0", 422, "validation_failed"),
        ("99999999", 404, "sensing_candidate_not_found"),
        (str(10**30), 422, "validation_failed"),
    ],
)
def test_bad_candidate_numbers_are_4xx(
    client: Client, candidate: PresenceSession, old_elder: Member, candidate_id: str, status: int, code: str
) -> None:
    phone = me(old_elder)
    before = state()
    refusal(get(client, f"/sensing/candidates/{candidate_id}", phone), status, code)
    refusal(act(client, f"/sensing/candidates/{candidate_id}/record", RECORD, phone, key="n"), status, code)
    refusal(act(client, f"/sensing/candidates/{candidate_id}/dismiss", {"reason": "x"}, phone), status, code)
    order_code = "care_order_not_found" if code == "sensing_candidate_not_found" else code
    refusal(get(client, f"/care/orders/{candidate_id}/sessions", phone), status, order_code)
    assert state() == before


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("status=maybe", 422, "validation_failed"),
        ("cursor=!!", 422, "api_bad_cursor"),
        ("limit=0", 422, "api_bad_limit"),
        ("limit=201", 422, "api_bad_limit"),
        ("region=999999", 404, "region_not_found"),
    ],
)
def test_bad_filters_are_4xx(
    client: Client, candidate: PresenceSession, station: User, query: str, status: int, code: str
) -> None:
    refusal(get(client, f"/sensing/candidates?{query}", staff(station)), status, code)


def test_a_cursor_walks_every_candidate_once_newest_first_and_filters_keep_to_a_region(
    client: Client,
    events: Events,
    helper: Member,
    old_elder: Member,
    neighbour_helper: Member,
    station: User,
    hongkou_staff: User,
) -> None:
    # given five visits over two days, and one of them dismissed
    made = together(
        events,
        *((helper, old_elder, days, hour) for days, hour in [(-2, 9), (-2, 14), (-1, 9), (-1, 11)]),
        (neighbour_helper, old_elder, -1, 16),
    )
    assert len(made) == 5
    candidate_dismiss(actor=station, session=made[0], reason="邻居")
    desk = staff(station)

    # when the station walks the list two at a time
    seen: list[int] = []
    cursor = ""
    while True:
        body = get(client, f"/sensing/candidates?limit=2{cursor}", desk).json()
        assert len(body["candidates"]) <= 2
        seen += [c["id"] for c in body["candidates"]]
        if body["next_cursor"] is None:
            break
        cursor = f"&cursor={body['next_cursor']}"

    # then each comes once, newest first
    assert seen == sorted((s.pk for s in made), reverse=True)
    # and the filters keep to a state and a region's subtree
    pending = get(client, "/sensing/candidates?status=pending&region=310101023", desk).json()["candidates"]
    assert [c["id"] for c in pending] == sorted((s.pk for s in made[1:]), reverse=True)
    dismissed = get(client, "/sensing/candidates?status=dismissed", desk).json()["candidates"]
    assert [c["id"] for c in dismissed] == [made[0].pk]
    assert get(client, "/sensing/candidates?region=310109", desk).json()["candidates"] == []
    assert (
        get(client, "/sensing/candidates?region=310101023001", staff(hongkou_staff)).json()["candidates"]
        == []
    )


def test_the_elder_sees_only_her_own(
    client: Client, events: Events, helper: Member, old_elder: Member, poor_elder: Member
) -> None:
    made = together(events, (helper, old_elder, -1, 9), (helper, poor_elder, -1, 13))
    assert [s.elder_id for s in made] == [old_elder.pk, poor_elder.pk]
    listed = get(client, "/sensing/candidates", me(old_elder)).json()["candidates"]
    assert [c["id"] for c in listed] == [made[0].pk]


def test_the_station_confirms_nothing_it_recorded_itself(
    client: Client, candidate: PresenceSession, station: User, reviewer: User, old_elder: Member
) -> None:
    """Recorded by the station, the service still needs her confirmation and another staff member's review."""
    order_id = act(
        client, f"/sensing/candidates/{candidate.pk}/record", RECORD, staff(station), key="a"
    ).json()["order"]["id"]
    order = ServiceOrder.objects.get(pk=order_id)
    care.order_confirm(actor=user_of(old_elder), order=order, method="device")
    refusal(
        act(client, f"/care/orders/{order_id}/approve", {}, staff(station), key="b"), 403, "care_own_entry"
    )
    assert (
        act(client, f"/care/orders/{order_id}/approve", {}, staff(reviewer), key="c").json()["status"]
        == "credited"
    )
