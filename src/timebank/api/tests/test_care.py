"""``/api/v1/care``: a service from request to credit as a phone app and the station's tools would drive it,
who may do what, refusals in the one error shape with nothing written, idempotent approvals and cursors."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from timebank.api.tests.conftest import bearer, send
from timebank.audit.models import AuditEvent
from timebank.care import cards
from timebank.care import services as care
from timebank.care.models import Certification, Dispute, ElderSecret, Rating, ServiceOrder
from timebank.care.tests.conftest import _english, at, balance, user_of  # noqa: F401
from timebank.care.tests.flows import World, jinyang_elder_with_savings, world
from timebank.ledger.models import Transaction
from timebank.people.models import Member, User
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


def refusal(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is the one error shape with this status and code."""
    body: dict[str, Any] = response.json()
    assert response.status_code == status, body
    assert set(body) == {"code", "message", "fields"} and body["code"] == code, body
    return body


def state() -> World:
    """Everything a refused request must leave as it was (the tokens the test issues aside)."""
    return dataclasses.replace(
        world(), audit_events=AuditEvent.objects.exclude(event_type__startswith="api.").count()
    )


def iso(moment: dt.datetime) -> str:
    return moment.isoformat()


def done(client: Client, order: ServiceOrder, helper: Member, start: Any = None, end: Any = None) -> None:
    """The helper takes the request, checks in and out (60 minutes by default) through the API."""
    assert act(client, f"/care/orders/{order.pk}/accept", {}, me(helper)).status_code == 200
    with time_machine.travel(start or order.window_start, tick=False):
        assert act(client, f"/care/orders/{order.pk}/check-in", {}, me(helper)).status_code == 200
    with time_machine.travel(end or order.window_end, tick=False):
        assert act(client, f"/care/orders/{order.pk}/check-out", {}, me(helper)).status_code == 200


def confirmed(client: Client, order: ServiceOrder, helper: Member) -> None:
    done(client, order, helper)
    response = act(client, f"/care/orders/{order.pk}/confirm", {"method": "device"}, me(order.elder))
    assert response.json()["status"] == "confirmed"


def credited(client: Client, order: ServiceOrder, helper: Member, reviewer: User) -> None:
    confirmed(client, order, helper)
    response = act(client, f"/care/orders/{order.pk}/approve", {}, staff(reviewer), key=f"approve-{order.pk}")
    assert response.json()["status"] == "credited"


# --- asking for care ----------------------------------------------------------------------------------------


def test_an_elder_asks_for_help_and_gets_the_service_back(client: Client, old_elder: Member) -> None:
    # given
    body = {
        "elder_id": old_elder.pk,
        "category": "emotional_support",
        "window_start": iso(at(1, 10)),
        "window_end": iso(at(1, 11)),
        "funding": "own",
        "notes": "陪聊天",
    }
    # when
    response = act(client, "/care/orders", body, me(old_elder))
    # then
    assert response.status_code == 201
    (out,) = response.json()["orders"]
    order = ServiceOrder.objects.get(pk=out["id"])
    assert (order.status, order.elder, order.payer, order.source) == ("open", old_elder, old_elder, "app")
    assert out["status"] == "open" and out["category"] == "emotional_support"
    assert out["community"] == "310101023001" and out["payer_id"] == old_elder.pk
    assert out["notes"] == "陪聊天" and out["number"] == order.number
    assert dt.datetime.fromisoformat(out["window_start"]) == at(1, 10)
    assert out["series"] is None and out["reserved_minutes"] == 0


def test_a_repeated_request_answers_every_weekly_service(client: Client, old_elder: Member) -> None:
    body = {
        "elder_id": old_elder.pk,
        "category": "emotional_support",
        "window_start": iso(at(1, 10)),
        "window_end": iso(at(1, 11)),
        "funding": "own",
        "repeat_weeks": 3,
    }
    orders = act(client, "/care/orders", body, me(old_elder)).json()["orders"]
    assert [o["occurrence"] for o in orders] == [1, 2, 3]
    assert len({o["series"] for o in orders}) == 1 and orders[0]["series"]
    starts = [dt.datetime.fromisoformat(o["window_start"]) for o in orders]
    assert starts == [at(1, 10), at(8, 10), at(15, 10)]
    assert ServiceOrder.objects.count() == 3


def test_a_son_pays_from_his_savings_and_the_station_posts_for_an_elder_without_a_phone(
    client: Client, old_elder: Member, son: Member, station: User, tree: dict[str, Region]
) -> None:
    base = {
        "elder_id": old_elder.pk,
        "category": "assistance",
        "window_start": iso(at(2, 9)),
        "window_end": iso(at(2, 10)),
    }
    by_son = act(client, "/care/orders", {**base, "funding": "family", "payer_id": son.pk}, me(son))
    assert by_son.status_code == 201
    assert (by_son.json()["orders"][0]["funding"], by_son.json()["orders"][0]["payer_id"]) == (
        "family",
        son.pk,
    )
    by_station = act(
        client, "/care/orders", {**base, "funding": "own", "place": "310101023002"}, staff(station)
    )
    assert by_station.status_code == 201
    order = ServiceOrder.objects.get(pk=by_station.json()["orders"][0]["id"])
    assert (order.source, order.region) == ("staff", tree["310101023002"])


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        ({"surprise": 1}, 422, "validation_failed", "surprise"),
        ({"elder_id": "her"}, 422, "validation_failed", "elder_id"),
        ({"funding": "bank"}, 422, "validation_failed", "funding"),
        ({"window_start": "tomorrow"}, 422, "validation_failed", "window_start"),
        ({"window_start": "2030-01-01T10:00:00"}, 422, "care_bad_time", "window_start"),
        ({"category": "skydiving"}, 422, "care_unknown_category", "category"),
        ({"place": "999999"}, 422, "region_not_found", "place"),
        ({"elder_id": 10**12}, 422, "member_not_found", "elder_id"),
        ({"payer_id": 10**12, "funding": "family"}, 422, "member_not_found", "payer_id"),
        ({"funding": "family"}, 422, "care_payer_missing", "payer_id"),
        ({"repeat_weeks": 27}, 422, "care_bad_repeat", "repeat_weeks"),
    ],
)
def test_a_bad_request_is_refused_by_field_and_posts_nothing(
    client: Client, old_elder: Member, change: dict[str, Any], status: int, code: str, field: str
) -> None:
    body = {
        "elder_id": old_elder.pk,
        "category": "emotional_support",
        "window_start": iso(at(1, 10)),
        "window_end": iso(at(1, 11)),
        "funding": "own",
        **change,
    }
    before = state()
    response = act(client, "/care/orders", body, me(old_elder))
    assert field in refusal(response, status, code)["fields"]
    assert state() == before


def test_the_end_before_the_start_is_refused_with_both_reasons(client: Client, old_elder: Member) -> None:
    body = {
        "elder_id": old_elder.pk,
        "category": "emotional_support",
        "window_start": iso(at(1, 11)),
        "window_end": iso(at(1, 10)),
        "funding": "own",
        "notes": "x" * 501,
    }
    fields = refusal(act(client, "/care/orders", body, me(old_elder)), 422, "validation_failed")["fields"]
    assert set(fields) == {"window_end", "notes"}
    assert not ServiceOrder.objects.exists()


def test_only_the_elders_side_or_her_station_posts_for_her(
    client: Client, old_elder: Member, helper: Member, hongkou_staff: User
) -> None:
    body = {
        "elder_id": old_elder.pk,
        "category": "emotional_support",
        "window_start": iso(at(1, 10)),
        "window_end": iso(at(1, 11)),
        "funding": "own",
    }
    refusal(act(client, "/care/orders", body, me(helper)), 403, "permission_denied")
    refusal(act(client, "/care/orders", body, staff(hongkou_staff)), 403, "permission_denied")
    refusal(act(client, "/care/orders", body, me(old_elder, ("read",))), 403, "api_scope_missing")
    assert not ServiceOrder.objects.exists()


# --- the life of a service ----------------------------------------------------------------------------------


def test_request_to_credit_through_the_api(
    client: Client, old_elder: Member, helper: Member, station: User, reviewer: User
) -> None:
    # given the elder's request, taken by the helper: the planned hour is held on her savings
    posted = act(
        client,
        "/care/orders",
        {
            "elder_id": old_elder.pk,
            "category": "emotional_support",
            "window_start": iso(at(1, 10)),
            "window_end": iso(at(1, 11)),
            "funding": "own",
        },
        me(old_elder),
    ).json()["orders"][0]
    path = f"/care/orders/{posted['id']}"
    taken = act(client, f"{path}/accept", {}, me(helper)).json()
    assert (taken["status"], taken["volunteer_id"], taken["reserved_minutes"]) == ("assigned", helper.pk, 60)
    assert balance(old_elder) == (600, 60)
    # when he checks in and out (70 minutes) and she types her PIN on his phone
    with time_machine.travel(at(1, 10, 2), tick=False):
        assert act(client, f"{path}/check-in", {}, me(helper)).json()["status"] == "in_progress"
    with time_machine.travel(at(1, 11, 12), tick=False):
        out = act(client, f"{path}/check-out", {}, me(helper)).json()
    assert (out["status"], out["service_minutes"]) == ("completed", 70)
    care.elder_pin_set(actor=station, elder=old_elder, pin="2580")
    confirmed_ = act(client, f"{path}/confirm", {"method": "pin", "pin": "2580"}, me(helper)).json()
    assert (confirmed_["status"], confirmed_["confirmation_method"]) == ("confirmed", "pin")
    # and the station approves
    approved = act(client, f"{path}/approve", {}, staff(reviewer), key="approve-1")
    # then 70 minutes moved, once
    assert approved.status_code == 200
    body = approved.json()
    assert (body["status"], body["credited_minutes"], body["coefficient_permille"]) == ("credited", 70, 1000)
    assert balance(old_elder) == (530, 0) and balance(helper) == (70, 0)
    order = ServiceOrder.objects.get(pk=posted["id"])
    assert order.status == "credited" and order.credit_transaction_id is not None
    # and both sides rate it, once each
    rated = act(client, f"{path}/rate", {"stars": 5, "comment": "很好"}, me(old_elder))
    assert rated.status_code == 201
    assert rated.json() | {"created_at": None} == {
        "order_id": order.pk,
        "side": "elder",
        "stars": 5,
        "comment": "很好",
        "created_at": None,
    }
    assert act(client, f"{path}/rate", {"stars": 4}, me(helper)).json()["side"] == "volunteer"
    refusal(act(client, f"{path}/rate", {"stars": 1}, me(old_elder)), 409, "care_already_rated")
    assert Rating.objects.filter(order=order).count() == 2


def test_approving_is_idempotent_and_needs_a_key(
    client: Client, post: Post, old_elder: Member, helper: Member, reviewer: User
) -> None:
    # given two confirmed services
    first, second = post(), post(window_start=at(1, 14), window_end=at(1, 15))
    confirmed(client, first, helper)
    confirmed(client, second, helper)
    headers = staff(reviewer)
    # a key is required
    refusal(act(client, f"/care/orders/{first.pk}/approve", {}, headers), 422, "api_key_required")
    assert Transaction.objects.filter(kind="service_credit").count() == 0
    # when approved, then retried with the same key
    once = act(client, f"/care/orders/{first.pk}/approve", {}, headers, key="k-approve")
    again = act(client, f"/care/orders/{first.pk}/approve", {}, headers, key="k-approve")
    # then the answer is replayed and the helper is credited once
    assert once.status_code == again.status_code == 200
    assert again.json() == once.json() and again["Idempotent-Replayed"] == "true"
    assert balance(helper) == (60, 0)
    # the same key for another service is a conflict, and changes nothing
    refusal(
        act(client, f"/care/orders/{second.pk}/approve", {}, headers, key="k-approve"),
        409,
        "api_idempotency_conflict",
    )
    assert ServiceOrder.objects.get(pk=second.pk).status == "confirmed"
    assert balance(helper) == (60, 0)


def test_the_station_assigns_and_a_volunteer_gives_a_service_back(
    client: Client, post: Post, old_elder: Member, helper: Member, station: User
) -> None:
    order = post()
    assigned = act(client, f"/care/orders/{order.pk}/assign", {"volunteer_id": helper.pk}, staff(station))
    assert (assigned.status_code, assigned.json()["volunteer_id"]) == (200, helper.pk)
    assert assigned.json()["address"] == ServiceOrder.objects.get(pk=order.pk).address
    assert balance(old_elder) == (600, 60)
    # giving it back needs a reason
    before = state()
    body = refusal(
        act(client, f"/care/orders/{order.pk}/withdraw", {}, me(helper)), 422, "care_reason_required"
    )
    assert "reason" in body["fields"] and state() == before
    back = act(client, f"/care/orders/{order.pk}/withdraw", {"reason": "生病了"}, me(helper)).json()
    assert (back["status"], back["volunteer_id"]) == ("open", None)
    assert balance(old_elder) == (600, 0)


def test_assigning_refuses_unknown_or_unseen_volunteers_and_members(
    client: Client,
    post: Post,
    old_elder: Member,
    helper: Member,
    station: User,
    jinyang_holder: Member,
) -> None:
    order = post()
    path = f"/care/orders/{order.pk}/assign"
    before = state()
    refusal(act(client, path, {"volunteer_id": 10**12}, staff(station)), 422, "member_not_found")
    refusal(act(client, path, {"volunteer_id": jinyang_holder.pk}, staff(station)), 404, "member_not_found")
    refusal(act(client, path, {"volunteer_id": helper.pk}, me(old_elder)), 403, "permission_denied")
    refusal(act(client, path, {"volunteer_id": "him"}, staff(station)), 422, "validation_failed")
    refusal(act(client, path, {}, staff(station)), 422, "validation_failed")
    # the elder herself is no volunteer of her own service: the reason names the API's field
    body = refusal(
        act(client, path, {"volunteer_id": old_elder.pk}, staff(station)), 422, "validation_failed"
    )
    assert "volunteer_id" in body["fields"]
    assert state() == before


def test_the_elder_cancels_and_a_cancelled_service_stays_cancelled(
    client: Client, post: Post, old_elder: Member, helper: Member
) -> None:
    order = post()
    act(client, f"/care/orders/{order.pk}/accept", {}, me(helper))
    cancelled = act(client, f"/care/orders/{order.pk}/cancel", {"reason": "住院了"}, me(old_elder))
    assert cancelled.json()["status"] == "cancelled"
    assert balance(old_elder) == (600, 0)
    before = state()
    again = act(client, f"/care/orders/{order.pk}/cancel", {"reason": "再次"}, me(old_elder))
    refusal(again, 409, "care_illegal_transition")
    refusal(act(client, f"/care/orders/{order.pk}/accept", {}, me(helper)), 409, "care_illegal_transition")
    assert state() == before


def test_a_volunteer_who_did_not_come_is_recorded_once_the_service_began(
    client: Client, post: Post, old_elder: Member, helper: Member
) -> None:
    order = post()
    act(client, f"/care/orders/{order.pk}/accept", {}, me(helper))
    early = act(client, f"/care/orders/{order.pk}/no-show", {"note": "没来"}, me(old_elder))
    assert "status" in refusal(early, 422, "care_not_started")["fields"]
    with time_machine.travel(at(1, 10, 30), tick=False):
        refusal(act(client, f"/care/orders/{order.pk}/no-show", {}, me(helper)), 403, "permission_denied")
        late = act(client, f"/care/orders/{order.pk}/no-show", {"note": "没来"}, me(old_elder))
    assert late.json()["status"] == "no_show"
    assert balance(old_elder) == (600, 0)


def test_times_from_the_paper_card_and_a_phone_call_are_approved_by_another_staff_member(
    client: Client, post: Post, old_elder: Member, helper: Member, station: User, reviewer: User
) -> None:
    order = post()
    act(client, f"/care/orders/{order.pk}/assign", {"volunteer_id": helper.pk}, staff(station))
    path = f"/care/orders/{order.pk}"
    times = {
        "started_at": iso(at(1, 10)),
        "ended_at": iso(at(1, 11, 15)),
        "travel_minutes": 15,
        "card_ref": "P-0001",
    }
    with time_machine.travel(at(1, 12), tick=False):
        refusal(act(client, f"{path}/times", times, me(helper)), 403, "permission_denied")
        refusal(
            act(client, f"{path}/times", {**times, "travel_minutes": 80}, staff(station)),
            422,
            "care_impossible_time",
        )
        recorded = act(client, f"{path}/times", times, staff(station)).json()
        assert (recorded["status"], recorded["service_minutes"], recorded["travel_minutes"]) == (
            "completed",
            60,
            15,
        )
        body = refusal(
            act(client, f"{path}/confirm", {"method": "staff"}, staff(station)), 422, "care_reason_required"
        )
        assert "note" in body["fields"]
        phoned = act(client, f"{path}/confirm", {"method": "staff", "note": "电话确认"}, staff(station))
        assert phoned.json()["confirmation_method"] == "staff"
    # whoever recorded the time does not also approve it
    refusal(act(client, f"{path}/approve", {}, staff(station), key="s-1"), 403, "care_own_entry")
    assert act(client, f"{path}/approve", {}, staff(reviewer), key="r-1").json()["credited_minutes"] == 60


def test_the_elder_confirms_with_her_card_a_wrong_pin_counts_and_her_son_confirms_as_proxy(
    client: Client,
    post: Post,
    old_elder: Member,
    son: Member,
    helper: Member,
    station: User,
) -> None:
    by_card, by_son = post(), post(window_start=at(1, 14), window_end=at(1, 15))
    done(client, by_card, helper)
    done(client, by_son, helper)
    care.elder_pin_set(actor=station, elder=old_elder, pin="2580")
    card = care.service_card_issue(actor=station, elder=old_elder)
    # a wrong PIN is refused, counted, and confirms nothing
    wrong = act(client, f"/care/orders/{by_card.pk}/confirm", {"method": "pin", "pin": "0000"}, me(helper))
    assert "pin" in refusal(wrong, 422, "care_wrong_code")["fields"]
    assert ElderSecret.objects.get(elder=old_elder).failed_attempts == 1
    assert ServiceOrder.objects.get(pk=by_card.pk).status == "completed"
    # a card code works once
    code = {"method": "card_code", "code": cards.card_code(card.serial, 3)}
    ok = act(client, f"/care/orders/{by_card.pk}/confirm", code, me(helper))
    assert ok.json()["confirmation_method"] == "card_code"
    refusal(act(client, f"/care/orders/{by_son.pk}/confirm", code, me(helper)), 422, "care_code_used")
    # the volunteer cannot say he is the elder, the son can confirm for her
    refusal(
        act(client, f"/care/orders/{by_son.pk}/confirm", {"method": "device"}, me(helper)),
        403,
        "care_not_the_elder",
    )
    refusal(
        act(client, f"/care/orders/{by_son.pk}/confirm", {"method": "paper"}, me(son)),
        422,
        "validation_failed",
    )
    proxy = act(client, f"/care/orders/{by_son.pk}/confirm", {"method": "proxy"}, me(son)).json()
    assert (proxy["status"], proxy["confirmation_method"]) == ("confirmed", "proxy")


def test_the_station_rejects_a_confirmed_service_with_a_reason(
    client: Client, post: Post, old_elder: Member, helper: Member, reviewer: User
) -> None:
    order = post()
    confirmed(client, order, helper)
    path = f"/care/orders/{order.pk}/reject"
    refusal(act(client, path, {"reason": "不对"}, me(old_elder)), 403, "permission_denied")
    refusal(act(client, path, {"reason": ""}, staff(reviewer)), 422, "care_reason_required")
    rejected = act(client, path, {"reason": "时间不符"}, staff(reviewer)).json()
    assert rejected["status"] == "rejected" and rejected["credited_minutes"] is None
    assert balance(old_elder) == (600, 0) and balance(helper) == (0, 0)


# --- complaints ---------------------------------------------------------------------------------------------


def test_a_complaint_voids_a_credit_once_and_only_the_services_station_sees_it(
    client: Client,
    post: Post,
    old_elder: Member,
    helper: Member,
    station: User,
    reviewer: User,
    hongkou_staff: User,
) -> None:
    # given a credited service the elder complains about
    order = post()
    credited(client, order, helper, reviewer)
    assert balance(helper) == (60, 0)
    raised = act(client, f"/care/orders/{order.pk}/dispute", {"reason": "他没来"}, me(old_elder))
    assert raised.status_code == 201
    dispute = raised.json()
    assert (dispute["order_status"], dispute["from_status"], dispute["outcome"]) == (
        "disputed",
        "credited",
        None,
    )
    # the station sees it; another district's staff and members do not
    listed = get(client, "/care/disputes", staff(station)).json()
    assert [d["id"] for d in listed["disputes"]] == [dispute["id"]] and listed["next_cursor"] is None
    assert get(client, "/care/disputes", staff(hongkou_staff)).json()["disputes"] == []
    refusal(get(client, "/care/disputes", me(old_elder)), 403, "permission_denied")
    assert get(client, f"/care/disputes/{dispute['id']}", staff(station)).json() == dispute
    refusal(
        get(client, f"/care/disputes/{dispute['id']}", staff(hongkou_staff)), 404, "care_dispute_not_found"
    )
    # when the station voids it, and retries
    path = f"/care/disputes/{dispute['id']}/resolve"
    body = {"outcome": "void", "resolution": "核实未服务"}
    refusal(act(client, path, body, staff(station)), 422, "api_key_required")
    refusal(act(client, path, body, staff(hongkou_staff), key="h-1"), 404, "care_dispute_not_found")
    refusal(
        act(client, path, {**body, "outcome": "maybe"}, staff(station), key="v-0"), 422, "validation_failed"
    )
    once = act(client, path, body, staff(station), key="v-1")
    again = act(client, path, body, staff(station), key="v-1")
    # then the credit is reversed once
    assert once.status_code == again.status_code == 200
    assert again.json() == once.json() and again["Idempotent-Replayed"] == "true"
    resolved = once.json()
    assert (resolved["outcome"], resolved["order_status"]) == ("void", "reversed")
    assert resolved["reversal_transaction_id"] is not None
    assert balance(helper) == (0, 0) and balance(old_elder) == (600, 0)
    refusal(
        act(client, path, {**body, "resolution": "另一个"}, staff(station), key="v-1"),
        409,
        "api_idempotency_conflict",
    )
    refusal(act(client, path, body, staff(station), key="v-2"), 409, "care_dispute_resolved")
    assert get(client, "/care/disputes", staff(station)).json()["disputes"] == []


def test_a_complaint_corrects_the_time_of_a_credited_service(
    client: Client, post: Post, helper: Member, station: User, reviewer: User
) -> None:
    order = post()
    credited(client, order, helper, reviewer)
    dispute = act(client, f"/care/orders/{order.pk}/dispute", {"reason": "只有半小时"}, staff(station)).json()
    path = f"/care/disputes/{dispute['id']}/resolve"
    # the station member who raised it does not decide it
    body = {"outcome": "corrected", "resolution": "改为30分钟", "corrected_minutes": 30}
    refusal(act(client, path, body, staff(station), key="c-1"), 403, "care_own_entry")
    missing = act(client, path, {**body, "corrected_minutes": None}, staff(reviewer), key="c-2")
    assert "corrected_minutes" in refusal(missing, 422, "care_bad_minutes")["fields"]
    resolved = act(client, path, body, staff(reviewer), key="c-3").json()
    assert (resolved["order_status"], resolved["corrected_minutes"]) == ("credited", 30)
    assert balance(helper) == (30, 0)
    detail = get(client, f"/care/orders/{order.pk}", staff(station)).json()
    assert (detail["service_minutes"], detail["credited_minutes"]) == (30, 30)


def test_only_those_involved_complain(
    client: Client, post: Post, helper: Member, neighbour_helper: Member
) -> None:
    order = post()
    done(client, order, helper)
    before = state()
    refusal(
        act(client, f"/care/orders/{order.pk}/dispute", {"reason": "x"}, me(neighbour_helper)),
        404,
        "care_order_not_found",
    )
    refusal(
        act(client, f"/care/orders/{order.pk}/dispute", {"reason": ""}, me(helper)),
        422,
        "care_reason_required",
    )
    assert state() == before
    assert act(client, f"/care/orders/{order.pk}/dispute", {"reason": "超时"}, me(helper)).status_code == 201
    assert Dispute.objects.filter(order=order).count() == 1


# --- the review queue and batch approval --------------------------------------------------------------------


def test_a_batch_approves_each_service_on_its_own_and_is_idempotent(
    client: Client,
    post: Post,
    old_elder: Member,
    helper: Member,
    station: User,
    reviewer: User,
    hongkou_staff: User,
) -> None:
    # given a confirmed service, and one whose paper times overlap it (flagged)
    plain = post()
    confirmed(client, plain, helper)
    overlapping = post(window_start=at(1, 13), window_end=at(1, 14))
    act(client, f"/care/orders/{overlapping.pk}/assign", {"volunteer_id": helper.pk}, staff(station))
    times = {"started_at": iso(at(1, 10, 30)), "ended_at": iso(at(1, 11, 30))}
    with time_machine.travel(at(1, 15), tick=False):
        assert act(client, f"/care/orders/{overlapping.pk}/times", times, staff(station)).json()["flagged"]
    act(client, f"/care/orders/{overlapping.pk}/confirm", {"method": "device"}, me(old_elder))
    # the queue: both, the flagged one on its own; nothing for another district; members may not look
    queue = get(client, "/care/review", staff(reviewer)).json()
    assert [o["id"] for o in queue["orders"]] == [overlapping.pk, plain.pk]
    assert [o["id"] for o in get(client, "/care/review?flagged=true", staff(reviewer)).json()["orders"]] == [
        overlapping.pk
    ]
    assert get(client, "/care/review", staff(hongkou_staff)).json() == {"orders": [], "next_cursor": None}
    refusal(get(client, "/care/review", me(helper)), 403, "permission_denied")
    # when the reviewer approves both and an unknown one, and retries
    body = {"order_ids": [plain.pk, overlapping.pk, 10**12, plain.pk]}
    refusal(act(client, "/care/review/approve", body, staff(reviewer)), 422, "api_key_required")
    once = act(client, "/care/review/approve", body, staff(reviewer), key="batch-1")
    again = act(client, "/care/review/approve", body, staff(reviewer), key="batch-1")
    # then each is decided on its own, once
    assert once.status_code == 200 and again.json() == once.json() and again["Idempotent-Replayed"] == "true"
    result = once.json()
    assert [o["id"] for o in result["approved"]] == [plain.pk]
    assert [(f["order_id"], f["code"]) for f in result["failed"]] == [
        (overlapping.pk, "care_flagged"),
        (10**12, "care_not_in_review_queue"),
    ]
    assert balance(helper) == (60, 0)
    refusal(
        act(client, "/care/review/approve", {"order_ids": [overlapping.pk]}, staff(reviewer), key="batch-1"),
        409,
        "api_idempotency_conflict",
    )
    # another district's staff approve nothing of it
    other = act(
        client, "/care/review/approve", {"order_ids": [overlapping.pk]}, staff(hongkou_staff), key="h"
    )
    assert other.json()["approved"] == [] and other.json()["failed"][0]["code"] == "care_not_in_review_queue"
    refusal(
        act(client, "/care/review/approve", {"order_ids": [plain.pk]}, me(helper), key="m"),
        403,
        "permission_denied",
    )
    bad: dict[str, Any]
    for bad in ({"order_ids": []}, {"order_ids": ["one"]}, {"order_ids": [1], "all": True}, {}):
        refusal(
            act(client, "/care/review/approve", bad, staff(reviewer), key="bad"), 422, "validation_failed"
        )
    assert ServiceOrder.objects.get(pk=overlapping.pk).status == "confirmed"


# --- lists --------------------------------------------------------------------------------------------------


def test_services_are_filtered_the_way_staff_need(
    client: Client, post: Post, old_elder: Member, helper: Member, station: User, tree: dict[str, Region]
) -> None:
    tomorrow = post()
    later = post(window_start=at(3, 10), window_end=at(3, 11), category="assistance")
    maoming = post(window_start=at(2, 10), window_end=at(2, 11), place=tree["310101023002"])
    act(client, f"/care/orders/{tomorrow.pk}/accept", {}, me(helper))
    headers = staff(station)

    def ids(query: str) -> list[int]:
        response = get(client, f"/care/orders{query}", headers)
        assert response.status_code == 200, response.json()
        return [o["id"] for o in response.json()["orders"]]

    assert ids("") == [maoming.pk, later.pk, tomorrow.pk]
    assert ids("?status=open") == [maoming.pk, later.pk]
    assert ids("?status=assigned") == [tomorrow.pk]
    assert ids("?category=assistance") == [later.pk]
    assert ids("?region=310101023002") == [maoming.pk]
    assert ids("?region=310101") == [maoming.pk, later.pk, tomorrow.pk]
    assert ids("?region=310109") == []
    day2, day3 = at(2).date().isoformat(), at(3).date().isoformat()
    assert ids(f"?starts_from={day2}") == [maoming.pk, later.pk]
    assert ids(f"?starts_from={day2}&starts_until={day2}") == [maoming.pk]
    assert ids(f"?starts_until={day3}&status=open&category=assistance") == [later.pk]
    assert ids("?flagged=true") == []
    refusal(get(client, "/care/orders?status=lost", headers), 422, "validation_failed")
    refusal(get(client, "/care/orders?starts_from=tomorrow", headers), 422, "validation_failed")
    refusal(get(client, "/care/orders?region=999", headers), 404, "region_not_found")
    refusal(get(client, "/care/orders?limit=0", headers), 422, "api_bad_limit")
    refusal(get(client, "/care/orders?cursor=%25%25", headers), 422, "api_bad_cursor")


def test_members_see_what_they_give_receive_or_their_family_receives(
    client: Client,
    post: Post,
    old_elder: Member,
    son: Member,
    helper: Member,
    neighbour_helper: Member,
    hongkou_staff: User,
) -> None:
    taken, open_ = post(), post(window_start=at(2, 10), window_end=at(2, 11))
    act(client, f"/care/orders/{taken.pk}/accept", {}, me(helper))

    def ids(headers: dict[str, Any]) -> list[int]:
        return [o["id"] for o in get(client, "/care/orders", headers).json()["orders"]]

    assert ids(me(old_elder)) == [open_.pk, taken.pk]
    assert ids(me(son)) == [open_.pk, taken.pk]
    assert ids(me(helper)) == [taken.pk]
    assert ids(me(neighbour_helper)) == []
    assert ids(staff(hongkou_staff)) == []
    assert "address" not in get(client, "/care/orders", me(helper)).json()["orders"][0]


def test_a_cursor_walks_every_service_once(client: Client, post: Post, station: User) -> None:
    made = [post(window_start=at(day, 10), window_end=at(day, 11)) for day in range(1, 6)]
    seen: list[int] = []
    cursor = ""
    for _page in range(10):
        body = get(client, f"/care/orders?limit=2&cursor={cursor}", staff(station)).json()
        seen += [o["id"] for o in body["orders"]]
        if body["next_cursor"] is None:
            break
        cursor = body["next_cursor"]
    assert seen == sorted((o.pk for o in made), reverse=True)


def test_a_list_costs_the_same_queries_however_many_services_and_admins_see_all(
    client: Client, post: Post, station: User, admin_user: User, jinyang_holder: Member, hongkou_staff: User
) -> None:
    headers = staff(station)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert get(client, "/care/orders", headers).status_code == 200
        return len(captured)

    post()
    few = queries()
    for day in range(2, 7):
        post(window_start=at(day, 10), window_end=at(day, 11))
    assert queries() == few
    # a platform administrator sees every district's services
    jinyang = jinyang_elder_with_savings(hongkou_staff, jinyang_holder.home_region)
    theirs = post(actor=hongkou_staff, elder=jinyang)
    everything = get(client, "/care/orders?limit=200", staff(admin_user)).json()["orders"]
    assert len(everything) == 7 and everything[0]["id"] == theirs.pk


def test_a_retried_request_posts_once(client: Client, old_elder: Member) -> None:
    body = {
        "elder_id": old_elder.pk,
        "category": "emotional_support",
        "window_start": iso(at(1, 10)),
        "window_end": iso(at(1, 11)),
        "funding": "own",
    }
    headers = me(old_elder)
    first = act(client, "/care/orders", body, headers, key="ask-1")
    again = act(client, "/care/orders", body, headers, key="ask-1")
    assert first.status_code == again.status_code == 201 and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert ServiceOrder.objects.count() == 1
    assert act(client, "/care/orders", body, headers).status_code == 201  # without a key: a second request
    assert ServiceOrder.objects.count() == 2


def test_requests_near_a_volunteer_nearest_first_page_by_page(
    client: Client,
    post: Post,
    old_elder: Member,
    neighbour_helper: Member,
    jinyang_holder: Member,
    tree: dict[str, Region],
) -> None:
    # given requests in 雁荡 and in 茂名 (the neighbour's own community)
    yandang = [post(window_start=at(d, 10), window_end=at(d, 11)) for d in (1, 2)]
    maoming = post(window_start=at(3, 10), window_end=at(3, 11), place=tree["310101023002"])
    # when the 茂名 volunteer reads them a page at a time
    seen: list[int] = []
    cursor = ""
    for _page in range(5):
        body = get(client, f"/care/orders/open?limit=2&cursor={cursor}", me(neighbour_helper)).json()
        seen += [o["id"] for o in body["orders"]]
        if body["next_cursor"] is None:
            break
        cursor = body["next_cursor"]
    # then her own community's comes first, then the neighbours' soonest first
    assert seen == [maoming.pk, yandang[0].pk, yandang[1].pk]
    assert get(client, "/care/orders/open", me(jinyang_holder)).json() == {"orders": [], "next_cursor": None}
    refusal(get(client, "/care/orders/open", me(old_elder)), 403, "care_not_volunteer")
    refusal(get(client, "/care/orders/open?cursor=!!", me(neighbour_helper)), 422, "api_bad_cursor")


# --- who may touch a service --------------------------------------------------------------------------------

LIFECYCLE = [
    ("accept", {}),
    ("assign", {"volunteer_id": 1}),
    ("withdraw", {"reason": "x"}),
    ("cancel", {"reason": "x"}),
    ("no-show", {"note": "x"}),
    ("check-in", {}),
    ("check-out", {}),
    ("times", {"started_at": "2030-01-01T10:00:00+08:00", "ended_at": "2030-01-01T11:00:00+08:00"}),
    ("confirm", {"method": "device"}),
    ("approve", {}),
    ("reject", {"reason": "x"}),
    ("rate", {"stars": 5}),
    ("dispute", {"reason": "x"}),
]


@pytest.mark.parametrize(("step", "body"), LIFECYCLE)
def test_another_districts_staff_are_told_a_service_does_not_exist(
    client: Client, post: Post, helper: Member, hongkou_staff: User, step: str, body: dict[str, Any]
) -> None:
    order = post()
    act(client, f"/care/orders/{order.pk}/accept", {}, me(helper))
    before = state()
    response = act(client, f"/care/orders/{order.pk}/{step}", body, staff(hongkou_staff), key="k")
    # a staff sign-in is no volunteer, so taking a request is refused without looking the service up
    expected = (403, "permission_denied") if step == "accept" else (404, "care_order_not_found")
    refusal(response, *expected)
    assert state() == before
    refusal(get(client, f"/care/orders/{order.pk}", staff(hongkou_staff)), 404, "care_order_not_found")


@pytest.mark.parametrize(("step", "body"), LIFECYCLE)
def test_a_read_only_token_changes_nothing(
    client: Client, post: Post, old_elder: Member, step: str, body: dict[str, Any]
) -> None:
    order = post()
    before = state()
    response = act(client, f"/care/orders/{order.pk}/{step}", body, me(old_elder, ("read",)), key="k")
    refusal(response, 403, "api_scope_missing")
    assert state() == before


@pytest.mark.parametrize(("step", "body"), [s for s in LIFECYCLE if s[0] not in {"accept", "approve"}])
def test_unknown_fields_are_refused_by_name(
    client: Client, post: Post, old_elder: Member, step: str, body: dict[str, Any]
) -> None:
    order = post()
    before = state()
    response = act(client, f"/care/orders/{order.pk}/{step}", {**body, "by_the_way": 1}, me(old_elder))
    assert "by_the_way" in refusal(response, 422, "validation_failed")["fields"]
    assert state() == before


@pytest.mark.parametrize(
    ("order_id", "status", "code"),
    [
        ("abc", 422, "validation_failed"),
        ("0", 422, "validation_failed"),
        ("99999999", 404, "care_order_not_found"),
        (str(10**30), 422, "validation_failed"),
    ],
)
def test_bad_service_numbers_are_4xx(
    client: Client, old_elder: Member, order_id: str, status: int, code: str
) -> None:
    refusal(get(client, f"/care/orders/{order_id}", me(old_elder)), status, code)
    refusal(act(client, f"/care/orders/{order_id}/cancel", {"reason": "x"}, me(old_elder)), status, code)


def test_a_member_cannot_do_what_the_station_does(
    client: Client, post: Post, old_elder: Member, helper: Member
) -> None:
    order = post()
    done(client, order, helper)
    act(client, f"/care/orders/{order.pk}/confirm", {"method": "device"}, me(old_elder))
    before = state()
    refusal(
        act(client, f"/care/orders/{order.pk}/approve", {}, me(old_elder), key="a"), 403, "permission_denied"
    )
    refusal(
        act(client, f"/care/orders/{order.pk}/approve", {}, me(helper), key="b"), 403, "permission_denied"
    )
    refusal(
        act(client, f"/care/orders/{order.pk}/reject", {"reason": "x"}, me(helper)), 403, "permission_denied"
    )
    assert state() == before


# --- the catalogue ------------------------------------------------------------------------------------------


def test_the_catalogue_in_force_where_and_when_asked(
    client: Client, old_elder: Member, station: User, hongkou_staff: User
) -> None:
    mine = get(client, "/care/catalogue", me(old_elder)).json()
    assert mine["region"] == "310101023001" and mine["policy"]["region"] == "310000"
    emotional = next(c for c in mine["categories"] if c["code"] == "emotional_support")
    assert (emotional["coefficient_permille"], emotional["hour_credits_minutes"]) == (1000, 60)
    tiered = get(client, "/care/catalogue?region=310109018021&day=2026-06-01", staff(station)).json()
    assert tiered["policy"]["region"] == "310109" and tiered["day"] == "2026-06-01"
    assert {c["tier"] for c in tiered["categories"]} > {1}
    for c in tiered["categories"]:
        assert c["hour_credits_minutes"] == 60 * c["coefficient_permille"] // 1000
    before_any = get(client, "/care/catalogue?region=310101&day=2019-01-01", staff(station)).json()
    assert before_any["policy"] is None and before_any["categories"] == []
    refusal(get(client, "/care/catalogue", staff(hongkou_staff)), 422, "api_region_required")
    refusal(get(client, "/care/catalogue?region=42", me(old_elder)), 404, "region_not_found")
    refusal(get(client, "/care/catalogue?day=someday", me(old_elder)), 422, "validation_failed")


# --- certifications -----------------------------------------------------------------------------------------


def test_the_station_grants_lists_and_revokes_a_certification(
    client: Client, helper: Member, station: User, hongkou_staff: User
) -> None:
    path = f"/care/members/{helper.pk}/certifications"
    until = (at(400).date()).isoformat()
    granted = act(client, path, {"code": "care_worker", "valid_until": until}, staff(station))
    assert granted.status_code == 201
    cert = granted.json()
    assert (cert["member_id"], cert["code"], cert["valid_until"], cert["revoked_at"]) == (
        helper.pk,
        "care_worker",
        until,
        None,
    )
    # the volunteer sees his own; another district's staff are told he does not exist
    assert [c["id"] for c in get(client, path, me(helper)).json()["certifications"]] == [cert["id"]]
    refusal(get(client, path, staff(hongkou_staff)), 404, "member_not_found")
    refusal(act(client, path, {"code": "lawyer"}, staff(hongkou_staff)), 404, "member_not_found")
    # nobody certifies themselves, nor with a bad code or a date past
    before = state()
    refusal(act(client, path, {"code": "lawyer"}, me(helper)), 403, "permission_denied")
    refusal(act(client, path, {"code": "a b"}, staff(station)), 422, "care_bad_cert")
    refusal(
        act(client, path, {"code": "lawyer", "valid_until": "2001-01-01"}, staff(station)),
        422,
        "care_cert_expired",
    )
    refusal(
        act(client, path, {"code": "lawyer", "valid_until": "soon"}, staff(station)), 422, "validation_failed"
    )
    assert state() == before and Certification.objects.count() == 1
    # revoked, it is gone from the list, and cannot be revoked twice
    revoke = f"{path}/{cert['id']}/revoke"
    refusal(act(client, revoke, {}, staff(hongkou_staff)), 404, "member_not_found")
    refusal(act(client, revoke, {}, me(helper, ("read",))), 403, "api_scope_missing")
    assert act(client, revoke, {}, staff(station)).json()["revoked_at"] is not None
    assert get(client, path, staff(station)).json() == {"certifications": [], "next_cursor": None}
    refusal(act(client, revoke, {}, staff(station)), 404, "care_certification_not_found")
