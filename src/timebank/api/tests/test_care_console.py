"""``/api/v1/care``, the station's console: paper records, public fund budgets, the dispatch board, and an
elder's service card (issued, printed as a PDF) and PIN. Who may do what, refusals in the one error shape with
nothing written, the audit trail, and secrets that are neither cached nor kept for a replay."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable
from typing import Any

import pypdf
import pytest
import time_machine
from django.test import Client

from timebank.api.models import IdempotentResponse
from timebank.api.tests.conftest import bearer, send
from timebank.audit.models import AuditEvent
from timebank.care import cards
from timebank.care import services as care
from timebank.care.models import ElderSecret, FundBudget, ServiceCard, ServiceOrder
from timebank.care.tests.conftest import _english, at, balance, user_of  # noqa: F401
from timebank.care.tests.flows import World, world
from timebank.people import services as people
from timebank.people.models import Member, PriorityGroup, Role, User
from timebank.regions.models import Region

Post = Callable[..., ServiceOrder]
API = "/api/v1"


def me(member: Member, scopes: tuple[str, ...] = ("read", "write")) -> dict[str, Any]:
    return bearer(user_of(member), user_of(member), scopes)


def staff(user: User, scopes: tuple[str, ...] = ("read", "write")) -> dict[str, Any]:
    return bearer(user, user, scopes)


def get(client: Client, path: str, headers: dict[str, Any]) -> Any:
    return client.get(f"{API}{path}", **headers)


def act(client: Client, path: str, body: Any, headers: dict[str, Any], key: str | None = None) -> Any:
    return send(client, f"{API}{path}", body, headers, key)


def put(client: Client, path: str, body: Any, headers: dict[str, Any], key: str | None = None) -> Any:
    extra = dict(headers) | ({"HTTP_IDEMPOTENCY_KEY": key} if key else {})
    return client.put(f"{API}{path}", data=body, content_type="application/json", **extra)


def refusal(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is the one error shape with this status and code."""
    body: dict[str, Any] = response.json()
    assert response.status_code == status, body
    assert set(body) == {"code", "message", "fields"} and body["code"] == code, body
    return body


@dataclasses.dataclass(frozen=True)
class State:
    world: World
    secrets: tuple[tuple[Any, ...], ...]
    budgets: tuple[tuple[Any, ...], ...]
    replays: int


def state() -> State:
    """Everything a refused request must leave as it was (the tokens the test issues aside)."""
    return State(
        world=dataclasses.replace(
            world(), audit_events=AuditEvent.objects.exclude(event_type__startswith="api.").count()
        ),
        secrets=tuple(ElderSecret.objects.order_by("pk").values_list("pk", "pin_hash", "failed_attempts")),
        budgets=tuple(FundBudget.objects.order_by("pk").values_list("pk", "year", "limit_minutes")),
        replays=IdempotentResponse.objects.count(),
    )


def events(event_type: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type=event_type).order_by("pk"))


@pytest.fixture
def serving_staff(post: Post, admin_user: User, helper: Member, tree: dict[str, Region]) -> User:
    """李志强 also works at the 雁荡 desk, and has taken a service of 王阿婆."""
    user = user_of(helper)
    people.staff_grant_create(
        actor=admin_user, user=user, role=Role.STATION_STAFF, region=tree["310101023001"]
    )
    care.order_accept(actor=user, order=post())
    return User.objects.get(pk=user.pk)


# --- paper records ------------------------------------------------------------------------------------------


def paper(elder: Member, volunteer: Member, **change: Any) -> dict[str, Any]:
    """Yesterday 09:00–10:15 with 15 minutes' travel, from 王阿婆's savings."""
    return {
        "elder_id": elder.pk,
        "volunteer_id": volunteer.pk,
        "category": "emotional_support",
        "started_at": at(-1, 9).isoformat(),
        "ended_at": at(-1, 10, 15).isoformat(),
        "travel_minutes": 15,
        "card_ref": "纸卡-0031",
        "funding": "own",
        **change,
    }


def test_staff_enter_a_paper_card_and_a_retry_enters_it_once(
    client: Client, station: User, old_elder: Member, helper: Member
) -> None:
    # given
    headers = staff(station)
    body = paper(old_elder, helper, notes="买菜")
    # when
    first = act(client, "/care/paper-records", body, headers, key="paper-1")
    again = act(client, "/care/paper-records", body, headers, key="paper-1")
    # then the service waits for review, confirmed by the card, and its hour is held on her savings
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    out = first.json()
    order = ServiceOrder.objects.get()
    assert out["id"] == order.pk and out["address"] == order.address
    assert (out["status"], out["source"], out["confirmation_method"]) == ("confirmed", "paper", "paper")
    assert (out["service_minutes"], out["travel_minutes"], out["reserved_minutes"]) == (60, 15, 60)
    assert (out["elder_id"], out["volunteer_id"], out["notes"]) == (old_elder.pk, helper.pk, "买菜")
    assert (order.status, order.source, order.paper_card_ref, order.times_entered_by) == (
        "confirmed",
        "paper",
        "纸卡-0031",
        station,
    )
    assert balance(old_elder) == (600, 60)
    [entered] = events("care.order.paper_entered")
    assert (entered.actor, entered.subject_id, entered.new["card"]) == (station, str(order.pk), "纸卡-0031")
    # it is in the review queue of another staff member
    assert [o["id"] for o in get(client, "/care/review", headers).json()["orders"]] == [order.pk]
    # the same visit under another key is refused by its start
    twice = refusal(
        act(client, "/care/paper-records", body, headers, key="paper-2"), 422, "care_duplicate_record"
    )
    assert "started_at" in twice["fields"]
    assert ServiceOrder.objects.count() == 1


def test_a_paper_card_is_paid_from_the_public_fund_within_its_budget(
    client: Client, station: User, operator: User, old_elder: Member, helper: Member, tree: dict[str, Region]
) -> None:
    people.priority_group_verify(actor=station, member=old_elder, group=PriorityGroup.LIVING_ALONE)
    year = at(-1).year
    budget = {"region": "310101", "year": year, "limit_minutes": 600}
    assert put(client, "/care/budgets", budget, staff(operator)).status_code == 200
    entered = act(
        client, "/care/paper-records", paper(old_elder, helper, funding="public"), staff(station), "p"
    )
    assert entered.status_code == 201 and entered.json()["payer_id"] is None
    [budget] = get(client, "/care/budgets", staff(station)).json()["budgets"]
    assert (budget["limit_minutes"], budget["committed_minutes"], budget["remaining_minutes"]) == (
        600,
        60,
        540,
    )
    assert balance(old_elder) == (600, 0)


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        ({"by_the_way": 1}, 422, "validation_failed", "by_the_way"),
        ({"volunteer_id": "him"}, 422, "validation_failed", "volunteer_id"),
        ({"elder_id": 0}, 422, "validation_failed", "elder_id"),
        ({"started_at": "yesterday"}, 422, "validation_failed", "started_at"),
        ({"funding": "bank"}, 422, "validation_failed", "funding"),
        ({"travel_minutes": "a while"}, 422, "validation_failed", "travel_minutes"),
        ({"card_ref": "x" * 201}, 422, "validation_failed", "card_ref"),
        ({"card_ref": "x" * 41}, 422, "care_too_long_text", "card_ref"),
        ({"ended_at": "before the start"}, 422, "care_impossible_time", "ended_at"),
        ({"category": "skydiving"}, 422, "care_unknown_category", "category"),
        ({"elder_id": 10**12}, 422, "member_not_found", "elder_id"),
        ({"volunteer_id": 10**12}, 422, "member_not_found", "volunteer_id"),
        ({"payer_id": 10**12, "funding": "family"}, 422, "member_not_found", "payer_id"),
        ({"funding": "family"}, 422, "care_payer_missing", "payer_id"),
        ({"funding": "public"}, 422, "care_not_priority", "funding"),
    ],
)
def test_a_bad_paper_card_is_refused_by_field_and_enters_nothing(
    client: Client,
    station: User,
    old_elder: Member,
    helper: Member,
    change: dict[str, Any],
    status: int,
    code: str,
    field: str,
) -> None:
    body = paper(old_elder, helper, **change)
    if change.get("ended_at") == "before the start":
        body["ended_at"] = at(-1, 8).isoformat()
    headers = staff(station)
    before = state()
    response = act(client, "/care/paper-records", body, headers, key="bad")
    assert field in refusal(response, status, code)["fields"]
    assert state() == before


def test_the_elder_is_no_volunteer_of_her_own_paper_card(
    client: Client, station: User, old_elder: Member
) -> None:
    before = state()
    response = act(client, "/care/paper-records", paper(old_elder, old_elder), staff(station), key="self")
    assert "volunteer_id" in refusal(response, 422, "validation_failed")["fields"]
    assert state() == before


def test_who_may_enter_a_paper_card(
    client: Client,
    station: User,
    hongkou_staff: User,
    old_elder: Member,
    helper: Member,
    son: Member,
    serving_staff: User,
    neighbour_helper: Member,
    jinyang_holder: Member,
) -> None:
    body = paper(old_elder, neighbour_helper)
    path = "/care/paper-records"
    before = state()
    # members, even her family, do not; nor another district's staff, nor a read-only token
    refusal(act(client, path, body, me(son), key="1"), 403, "permission_denied")
    refusal(act(client, path, body, me(old_elder), key="2"), 403, "permission_denied")
    refusal(act(client, path, body, staff(hongkou_staff), key="3"), 403, "permission_denied")
    refusal(act(client, path, body, staff(station, ("read",)), key="4"), 403, "api_scope_missing")
    # a volunteer of another district is not found
    outsider = act(client, path, paper(old_elder, jinyang_holder), staff(station), key="5")
    refusal(outsider, 404, "member_not_found")
    # whoever gave the service does not enter it
    refusal(
        act(client, path, paper(old_elder, helper), staff(serving_staff), key="6"), 403, "care_own_service"
    )
    # and a key is required
    refusal(act(client, path, body, staff(station)), 422, "api_key_required")
    assert state() == before


# --- public fund budgets ------------------------------------------------------------------------------------


def test_an_operator_sets_a_budget_and_station_staff_read_what_is_left(
    client: Client, operator: User, station: User, hongkou_staff: User, old_elder: Member
) -> None:
    # when the city's operator sets the district's budget, then changes it
    body = {"region": "310101", "year": 2027, "limit_minutes": 6000}
    created = put(client, "/care/budgets", body, staff(operator))
    changed = put(client, "/care/budgets", body | {"limit_minutes": 9000}, staff(operator), key="b-1")
    replayed = put(client, "/care/budgets", body | {"limit_minutes": 9000}, staff(operator), key="b-1")
    # then one budget, changed once (the retry replays), each setting audit-logged with old and new
    assert created.status_code == changed.status_code == replayed.status_code == 200
    assert replayed.json() == changed.json() and replayed["Idempotent-Replayed"] == "true"
    budget = FundBudget.objects.get()
    assert (budget.region.code, budget.year, budget.limit_minutes, budget.set_by) == (
        "310101",
        2027,
        9000,
        operator,
    )
    out = changed.json()
    assert out | {"updated_at": None} == {
        "id": budget.pk,
        "region": "310101",
        "region_name": budget.region.name,
        "year": 2027,
        "limit_minutes": 9000,
        "committed_minutes": 0,
        "remaining_minutes": 9000,
        "set_by_id": operator.pk,
        "updated_at": None,
    }
    assert [(e.old, e.new) for e in events("care.budget.set")] == [
        ({"limit": None}, {"limit": 6000, "year": 2027}),
        ({"limit": 6000}, {"limit": 9000, "year": 2027}),
    ]
    # station staff of the district read it; another district's staff see nothing of it; members may not
    assert get(client, "/care/budgets", staff(station)).json() == {"budgets": [out], "next_cursor": None}
    assert get(client, "/care/budgets", staff(hongkou_staff)).json() == {"budgets": [], "next_cursor": None}
    refusal(get(client, "/care/budgets", me(old_elder)), 403, "permission_denied")
    refusal(get(client, "/care/budgets?limit=0", staff(station)), 422, "api_bad_limit")
    refusal(get(client, "/care/budgets?cursor=!!", staff(station)), 422, "api_bad_cursor")


def test_budgets_page_newest_first(client: Client, operator: User) -> None:
    made = [
        put(client, "/care/budgets", {"region": "310101", "year": y, "limit_minutes": 60}, staff(operator))
        for y in (2026, 2027, 2028)
    ]
    seen: list[int] = []
    cursor = ""
    for _page in range(5):
        body = get(client, f"/care/budgets?limit=2&cursor={cursor}", staff(operator)).json()
        seen += [b["year"] for b in body["budgets"]]
        if body["next_cursor"] is None:
            break
        cursor = body["next_cursor"]
    assert seen == [2028, 2027, 2026] and all(r.status_code == 200 for r in made)


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"region": "999999"}, 422, "region_not_found", "region"),
        ({"region": "x" * 13}, 422, "validation_failed", "region"),
        ({"year": "next"}, 422, "validation_failed", "year"),
        ({"year": 1990}, 422, "validation_failed", "year"),
        ({"limit_minutes": -1}, 422, "validation_failed", "limit_minutes"),
        ({"limit_minutes": 10**13}, 422, "validation_failed", "limit_minutes"),
        ({"limit_minutes": 1.5}, 422, "validation_failed", "limit_minutes"),
        ({"surprise": True}, 422, "validation_failed", "surprise"),
    ],
)
def test_a_bad_budget_is_refused_by_field_and_sets_nothing(
    client: Client, operator: User, body: dict[str, Any], status: int, code: str, field: str
) -> None:
    headers = staff(operator)
    before = state()
    response = put(
        client, "/care/budgets", {"region": "310101", "year": 2027, "limit_minutes": 60} | body, headers
    )
    assert field in refusal(response, status, code)["fields"]
    assert state() == before


def test_who_may_set_a_budget_and_never_below_what_is_committed(
    client: Client,
    operator: User,
    station: User,
    hongkou_operator: User,
    old_elder: Member,
    helper: Member,
) -> None:
    # given a budget of which an hour is committed to a paper record
    people.priority_group_verify(actor=station, member=old_elder, group=PriorityGroup.LIVING_ALONE)
    year = at(-1).year
    put(client, "/care/budgets", {"region": "310101", "year": year, "limit_minutes": 600}, staff(operator))
    act(client, "/care/paper-records", paper(old_elder, helper, funding="public"), staff(station), "p")
    body = {"region": "310101", "year": year, "limit_minutes": 30}
    before = state()
    # then it cannot drop below that hour, and nobody else sets it
    refusal(put(client, "/care/budgets", body, staff(operator)), 422, "care_budget_below_committed")
    refusal(put(client, "/care/budgets", body, staff(station)), 403, "permission_denied")
    refusal(put(client, "/care/budgets", body, staff(hongkou_operator)), 403, "permission_denied")
    refusal(put(client, "/care/budgets", body, me(old_elder)), 403, "permission_denied")
    refusal(put(client, "/care/budgets", body, staff(operator, ("read",))), 403, "api_scope_missing")
    assert state() == before
    assert put(client, "/care/budgets", body | {"limit_minutes": 60}, staff(operator)).status_code == 200


# --- the dispatch board -------------------------------------------------------------------------------------


def test_the_dispatch_board_suggests_volunteers_nearest_first_and_assigning_clears_it(
    client: Client,
    post: Post,
    station: User,
    hongkou_staff: User,
    old_elder: Member,
    helper: Member,
    neighbour_helper: Member,
    jinyang_holder: Member,
) -> None:
    # given two open requests of 王阿婆, the later one posted first
    later = post(window_start=at(3, 10), window_end=at(3, 11))
    sooner = post()
    headers = staff(station)
    # when the station reads the board
    board = get(client, "/care/dispatch", headers)
    # then soonest first, each with the 雁荡 volunteer before the 茂名 one (jinyang's is not the station's)
    assert board.status_code == 200
    body = board.json()
    assert [r["order"]["id"] for r in body["requests"]] == [sooner.pk, later.pk]
    assert body["next_cursor"] is None and "address" not in body["requests"][0]["order"]
    first = body["requests"][0]["suggestions"]
    assert [(s["volunteer_id"], s["nearness"]) for s in first] == [(helper.pk, 0), (neighbour_helper.pk, 1)]
    assert first[0] | {"volunteer_id": 0} == {
        "volunteer_id": 0,
        "name": "李志强",
        "community": "310101023001",
        "nearness": 0,
        "credited_this_month_minutes": 0,
    }
    # page by page
    one = get(client, "/care/dispatch?limit=1", headers).json()
    assert [r["order"]["id"] for r in one["requests"]] == [sooner.pk] and one["next_cursor"]
    two = get(client, f"/care/dispatch?limit=1&cursor={one['next_cursor']}", headers).json()
    assert [r["order"]["id"] for r in two["requests"]] == [later.pk] and two["next_cursor"] is None
    # when the first suggestion is assigned, the request leaves the board
    assigned = act(client, f"/care/orders/{sooner.pk}/assign", {"volunteer_id": helper.pk}, headers)
    assert assigned.status_code == 200
    after = get(client, "/care/dispatch", headers).json()["requests"]
    assert [r["order"]["id"] for r in after] == [later.pk]
    # another district's staff see nothing of it, members may not look, bad pages are 422
    assert get(client, "/care/dispatch", staff(hongkou_staff)).json() == {"requests": [], "next_cursor": None}
    refusal(get(client, "/care/dispatch", me(old_elder)), 403, "permission_denied")
    refusal(get(client, "/care/dispatch", me(helper)), 403, "permission_denied")
    refusal(get(client, "/care/dispatch?limit=201", headers), 422, "api_bad_limit")
    refusal(get(client, "/care/dispatch?cursor=%25%25", headers), 422, "api_bad_cursor")
    refusal(get(client, "/care/dispatch?limit=many", headers), 422, "validation_failed")


def test_a_busy_volunteer_is_not_suggested_and_past_requests_leave_the_board(
    client: Client, post: Post, station: User, helper: Member, neighbour_helper: Member
) -> None:
    taken = care.order_accept(actor=user_of(helper), order=post())
    clash = post(window_start=at(1, 10, 30), window_end=at(1, 11, 30))
    board = get(client, "/care/dispatch", staff(station)).json()["requests"]
    assert [r["order"]["id"] for r in board] == [clash.pk] and taken.pk not in [
        r["order"]["id"] for r in board
    ]
    assert [s["volunteer_id"] for s in board[0]["suggestions"]] == [neighbour_helper.pk]
    with time_machine.travel(at(2), tick=False):
        assert get(client, "/care/dispatch", staff(station)).json()["requests"] == []


# --- service cards ------------------------------------------------------------------------------------------


def test_the_station_issues_a_card_and_sees_its_codes_once(
    client: Client, station: User, old_elder: Member
) -> None:
    # when the station issues 王阿婆's card, sending a key
    path = f"/care/members/{old_elder.pk}/card"
    response = act(client, path, {}, staff(station), key="card-1")
    # then the answer is the card's secrets, kept out of caches and not kept for a replay
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    assert IdempotentResponse.objects.count() == 0
    card = ServiceCard.objects.get()
    out = response.json()
    assert (out["member_id"], out["serial"], card.revoked_at) == (old_elder.pk, card.serial, None)
    assert cards.card_serial_from_token(out["token"]) == card.serial
    assert out["url"] == f"http://testserver/care/card/{out['token']}/"
    assert [(c["number"], c["code"]) for c in out["codes"]] == cards.card_codes(card.serial)
    assert len(out["codes"]) == 20
    [issued] = events("care.card.issued")
    assert (issued.actor, issued.subject_id, issued.new["serial"]) == (
        station,
        str(old_elder.pk),
        card.serial,
    )
    # when issued again (the same key is a new request), the first card stops working
    second = act(client, path, {}, staff(station), key="card-1").json()
    assert second["serial"] != out["serial"]
    assert ServiceCard.objects.get(serial=out["serial"]).revoked_at is not None
    assert [e.new["replaced"] for e in events("care.card.issued")] == [0, 1]


def test_a_card_for_someone_who_is_not_an_elder_is_refused(
    client: Client, station: User, helper: Member
) -> None:
    before = state()
    refusal(act(client, f"/care/members/{helper.pk}/card", {}, staff(station)), 422, "validation_failed")
    assert state() == before


def test_the_card_as_a_pdf(client: Client, station: User, old_elder: Member) -> None:
    path = f"/care/members/{old_elder.pk}/card.pdf"
    # no card yet: nothing to print
    refusal(get(client, path, staff(station)), 404, "care_no_card")
    card = care.service_card_issue(actor=station, elder=old_elder)
    # a read-only token may print it
    response = get(client, path, staff(station, ("read",)))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f"inline; filename=service-card-{card.serial}.pdf"
    assert response["Cache-Control"] == "no-store"
    reader = pypdf.PdfReader(io.BytesIO(response.content))
    front, back = (page.extract_text() for page in reader.pages)
    assert "王阿婆" in front and card.serial in front
    assert all(code in back.splitlines() for _n, code in cards.card_codes(card.serial))
    [printed] = events("care.card.printed")
    assert (printed.actor, printed.subject_id, printed.new) == (
        station,
        str(old_elder.pk),
        {"serial": card.serial},
    )


def test_the_document_declares_the_pdf(client: Client) -> None:
    document = client.get(f"{API}/openapi.json").json()
    answers = document["paths"]["/api/v1/care/members/{member_id}/card.pdf"]["get"]["responses"]
    assert answers["200"]["content"] == {
        "application/pdf": {"schema": {"type": "string", "format": "binary"}}
    }
    assert answers["404"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    secret_writes = [
        document["paths"][f"/api/v1/care/members/{{member_id}}/{p}"]["post"] for p in ("card", "pin")
    ]
    assert all(p["name"] != "Idempotency-Key" for op in secret_writes for p in op.get("parameters", []))


# --- the elder's PIN ----------------------------------------------------------------------------------------


def test_the_station_sets_a_pin_that_then_confirms_a_service(
    client: Client, post: Post, station: User, old_elder: Member, neighbour_helper: Member
) -> None:
    # when the station sets 王阿婆's PIN, sending a key
    path = f"/care/members/{old_elder.pk}/pin"
    response = act(client, path, {"pin": "2580"}, staff(station), key="pin-1")
    # then it is set (hashed), audit-logged without the PIN, and nothing is kept for a replay
    assert response.status_code == 200
    assert response.json() == {"member_id": old_elder.pk, "has_pin": True}
    secret = ElderSecret.objects.get(elder=old_elder)
    assert secret.pin_hash and "2580" not in secret.pin_hash and secret.pin_set_by == station
    [logged] = events("care.pin.set")
    assert (logged.actor, logged.subject_id, logged.old, logged.new) == (
        station,
        str(old_elder.pk),
        None,
        None,
    )
    assert IdempotentResponse.objects.count() == 0
    # and the PIN confirms a service on the volunteer's phone
    order = care.order_accept(actor=user_of(neighbour_helper), order=post())
    with time_machine.travel(at(1, 10), tick=False):
        care.order_check_in(actor=user_of(neighbour_helper), order=order)
    with time_machine.travel(at(1, 11), tick=False):
        care.order_check_out(actor=user_of(neighbour_helper), order=order)
    confirmed = act(
        client, f"/care/orders/{order.pk}/confirm", {"method": "pin", "pin": "2580"}, me(neighbour_helper)
    )
    assert confirmed.json()["status"] == "confirmed"


def test_the_elder_sets_her_own_pin_and_a_new_pin_lifts_a_lock(
    client: Client, station: User, old_elder: Member
) -> None:
    path = f"/care/members/{old_elder.pk}/pin"
    assert act(client, path, {"pin": "4071"}, me(old_elder)).json()["has_pin"] is True
    ElderSecret.objects.filter(elder=old_elder).update(failed_attempts=3)
    assert act(client, path, {"pin": "５０８２"}, staff(station)).status_code == 200  # full-width digits
    secret = ElderSecret.objects.get(elder=old_elder)
    assert (secret.failed_attempts, secret.pin_set_by) == (0, station)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"pin": "1234"}, "care_weak_pin"),
        ({"pin": "12"}, "care_bad_pin"),
        ({"pin": "abcd"}, "care_bad_pin"),
        ({"pin": 2580}, "validation_failed"),
        ({"pin": "2" * 21}, "validation_failed"),
        ({}, "validation_failed"),
        ({"pin": "2580", "remember": True}, "validation_failed"),
    ],
)
def test_a_bad_pin_is_refused_and_sets_nothing(
    client: Client, station: User, old_elder: Member, body: dict[str, Any], code: str
) -> None:
    headers = staff(station)
    before = state()
    response = act(client, f"/care/members/{old_elder.pk}/pin", body, headers)
    fields = refusal(response, 422, code)["fields"]
    assert set(fields) <= {"pin", "remember"} and fields
    assert state() == before


def test_a_pin_for_someone_who_is_not_an_elder_is_refused(
    client: Client, station: User, helper: Member
) -> None:
    before = state()
    body = refusal(
        act(client, f"/care/members/{helper.pk}/pin", {"pin": "2580"}, me(helper)), 422, "care_not_elder"
    )
    assert "elder" in body["fields"]
    refusal(
        act(client, f"/care/members/{helper.pk}/pin", {"pin": "2580"}, staff(station)), 422, "care_not_elder"
    )
    assert state() == before


# --- who may touch an elder's card and PIN ------------------------------------------------------------------

CARD_AND_PIN = [
    ("post", "card", {}),
    ("get", "card.pdf", None),
    ("post", "pin", {"pin": "2580"}),
]


def call(client: Client, method: str, path: str, body: Any, headers: dict[str, Any]) -> Any:
    return get(client, path, headers) if method == "get" else act(client, path, body, headers, key="k")


@pytest.mark.parametrize(("method", "step", "body"), CARD_AND_PIN)
def test_another_districts_staff_are_told_the_elder_does_not_exist(
    client: Client,
    station: User,
    hongkou_staff: User,
    old_elder: Member,
    method: str,
    step: str,
    body: Any,
) -> None:
    care.service_card_issue(actor=station, elder=old_elder)
    headers = staff(hongkou_staff)
    before = state()
    refusal(
        call(client, method, f"/care/members/{old_elder.pk}/{step}", body, headers), 404, "member_not_found"
    )
    assert state() == before


@pytest.mark.parametrize(("method", "step", "body"), CARD_AND_PIN)
def test_members_may_not_touch_an_elders_card_or_pin(
    client: Client,
    station: User,
    old_elder: Member,
    son: Member,
    helper: Member,
    method: str,
    step: str,
    body: Any,
) -> None:
    care.service_card_issue(actor=station, elder=old_elder)
    path = f"/care/members/{old_elder.pk}/{step}"
    before = state()
    # neither a volunteer nor her son; her own card only through the station
    refusal(call(client, method, path, body, me(helper)), 403, "permission_denied")
    refusal(call(client, method, path, body, me(son)), 403, "permission_denied")
    if step != "pin":
        refusal(call(client, method, path, body, me(old_elder)), 403, "permission_denied")
    assert state() == before


@pytest.mark.parametrize(("method", "step", "body"), CARD_AND_PIN)
def test_staff_who_volunteer_for_the_elder_do_not_handle_her_secrets(
    client: Client,
    station: User,
    old_elder: Member,
    serving_staff: User,
    method: str,
    step: str,
    body: Any,
) -> None:
    care.service_card_issue(actor=station, elder=old_elder)
    before = state()
    response = call(client, method, f"/care/members/{old_elder.pk}/{step}", body, staff(serving_staff))
    refusal(response, 403, "care_own_service")
    assert state() == before
    assert events("care.card.printed") == []


@pytest.mark.parametrize(("method", "step", "body"), [s for s in CARD_AND_PIN if s[0] == "post"])
def test_a_read_only_token_changes_no_card_or_pin(
    client: Client, station: User, old_elder: Member, method: str, step: str, body: Any
) -> None:
    before = state()
    response = call(client, method, f"/care/members/{old_elder.pk}/{step}", body, staff(station, ("read",)))
    refusal(response, 403, "api_scope_missing")
    assert state() == before


@pytest.mark.parametrize(("method", "step", "body"), CARD_AND_PIN)
@pytest.mark.parametrize(
    ("member_id", "status", "code"),
    [
        ("abc", 422, "validation_failed"),
        ("0", 422, "validation_failed"),
        (str(10**30), 422, "validation_failed"),
        ("99999999", 404, "member_not_found"),
    ],
)
def test_bad_member_numbers_are_4xx(
    client: Client,
    station: User,
    method: str,
    step: str,
    body: Any,
    member_id: str,
    status: int,
    code: str,
) -> None:
    headers = staff(station)
    before = state()
    refusal(call(client, method, f"/care/members/{member_id}/{step}", body, headers), status, code)
    assert state() == before
