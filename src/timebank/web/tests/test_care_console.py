"""Care services in the staff console: the list, posting and assigning, paper cards, review, complaints,
budgets and the care parts of a person's page."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from timebank.audit.models import AuditEvent
from timebank.care import cards
from timebank.care import services as care
from timebank.care.models import Certification, Dispute, FundBudget, ServiceCard, ServiceOrder, Status
from timebank.care.tests.conftest import at, balance, member, user_of
from timebank.web.tests.care_fixtures import *  # noqa: F403
from timebank.web.tests.care_fixtures import at_time, done, zh_minutes
from timebank.web.tests.pages import alerts, field_errors, form_with, html_of, submittable, zh

# --- the list and one service -------------------------------------------------------------------------------


def test_the_services_list_shows_the_subtree_and_filters(browser, post, station, jinyang_staff, helper):
    open_one = post()
    taken = care.order_accept(actor=user_of(helper), order=post(window_start=at(2, 10), window_end=at(2, 11)))
    desk = browser(station)
    # when station staff open the list, then filter on assigned services
    everything = html_of(desk.get("/console/care/"))
    assigned = html_of(desk.get("/console/care/?status=assigned"))
    # then
    assert open_one.number in everything and taken.number in everything
    assert taken.number in assigned and open_one.number not in assigned
    # and another community's staff see neither
    elsewhere = html_of(browser(jinyang_staff).get("/console/care/"))
    assert open_one.number not in elsewhere and taken.number not in elsewhere


def test_staff_of_another_community_get_404_for_a_service(browser, post, jinyang_staff):
    order = post()
    desk = browser(jinyang_staff)
    assert desk.get(f"/console/care/{order.pk}/").status_code == 404
    assert desk.get(f"/care/services/{order.pk}/").status_code == 404
    assert desk.post(f"/console/care/{order.pk}/cancel/", {"reason": "x"}).status_code == 404
    order.refresh_from_db()
    assert order.status == Status.OPEN


def test_a_member_without_a_staff_role_cannot_open_the_console(browser, helper):
    assert browser(user_of(helper)).get("/console/care/").status_code == 403


def test_the_service_page_shows_its_history(browser, post, station, helper):
    order = care.order_accept(actor=user_of(helper), order=post())
    page = html_of(browser(station).get(f"/console/care/{order.pk}/"))
    assert page.index("care.order.posted") < page.index("care.order.assigned")


def test_staff_post_a_request_for_an_elder_without_a_phone(browser, station, old_elder):
    desk = browser(station)
    form = form_with(desk.get(f"/console/care/new/?elder={old_elder.pk}"), "category")
    assert form["elder"] == str(old_elder.pk)
    data = submittable(
        form, category="assistance", date=at(1).date().isoformat(), start="14:00", end="15:30", funding="own"
    )
    response = desk.post("/console/care/new/", data)
    order = ServiceOrder.objects.get()
    assert response["Location"] == f"/console/care/{order.pk}/"
    assert (order.source, order.elder_id, order.requested_by_id) == ("staff", old_elder.pk, station.pk)
    assert order.window_end - order.window_start == dt.timedelta(minutes=90)


def test_staff_see_why_a_request_cannot_be_posted(browser, station, old_elder):
    desk = browser(station)
    form = form_with(desk.get("/console/care/new/"), "category")
    data = submittable(
        form,
        elder=str(old_elder.pk),
        category="assistance",
        date=at(1).date().isoformat(),
        start="14:00",
        end="13:00",
        funding="family",
        payer="999999",
    )
    response = desk.post("/console/care/new/", data)
    assert response.status_code == 422
    assert field_errors(response) == {"payer": [zh("No member with this number in your regions.")]}
    response = desk.post("/console/care/new/", data | {"payer": ""})
    assert response.status_code == 422
    assert field_errors(response)["end"] == [zh("The end is before the start.")]
    assert not ServiceOrder.objects.exists()


def test_assigning_a_volunteer_from_the_list_or_by_number(browser, post, station, helper, neighbour_helper):
    desk = browser(station)
    first, second = post(), post(window_start=at(2, 10), window_end=at(2, 11))
    # the select offers volunteers of the street
    form = form_with(desk.get(f"/console/care/{first.pk}/"), "member_number")
    assert {str(helper.pk), str(neighbour_helper.pk)} <= set(form["_options"]["volunteer"])
    # when staff pick one from the list, and the other by member number
    assert desk.post(f"/console/care/{first.pk}/assign/", {"volunteer": helper.pk}).status_code == 302
    by_number = desk.post(f"/console/care/{second.pk}/assign/", {"member_number": neighbour_helper.pk})
    assert by_number.status_code == 302
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.volunteer_id) == (Status.ASSIGNED, helper.pk)
    assert (second.volunteer_id, second.assigned_by_id) == (neighbour_helper.pk, station.pk)


def test_assigning_nobody_or_someone_unsuitable_is_explained(browser, post, station, son):
    desk = browser(station)
    order = post()
    nobody = desk.post(f"/console/care/{order.pk}/assign/", {})
    assert field_errors(nobody) == {"volunteer": [zh("Choose a volunteer.")]}
    unsuitable = desk.post(f"/console/care/{order.pk}/assign/", {"member_number": son.pk})
    assert unsuitable.status_code == 422
    assert field_errors(unsuitable)["volunteer"] == [
        zh("%(name)s is not a registered, active volunteer.") % {"name": son.name}
    ]
    order.refresh_from_db()
    assert order.status == Status.OPEN


def test_times_from_the_paper_card_and_a_phone_confirmation(browser, post, station, reviewer, helper):
    order = care.order_accept(actor=user_of(helper), order=post())
    desk = browser(station)
    day = at(1).date().isoformat()
    with at_time(desk, station, at(1, 13)):
        wrong = desk.post(
            f"/console/care/{order.pk}/times/",
            {"date": day, "start": "11:00", "end": "10:00", "travel_minutes": 0},
        )
        assert wrong.status_code == 422
        assert field_errors(wrong) == {"end": [zh("The end is before the start.")]}
        right = desk.post(
            f"/console/care/{order.pk}/times/",
            {"date": day, "start": "10:00", "end": "11:30", "travel_minutes": 20, "card_ref": "P-17"},
        )
        assert right.status_code == 302
    order.refresh_from_db()
    assert (order.status, order.service_minutes, order.paper_card_ref) == (Status.COMPLETED, 70, "P-17")
    # when staff confirm without saying whom they phoned, then saying it
    blank = desk.post(f"/console/care/{order.pk}/confirm/", {"note": ""})
    assert field_errors(blank) == {"note": [zh("Say why.")]}
    assert (
        desk.post(f"/console/care/{order.pk}/confirm/", {"note": "电话确认，王阿婆本人"}).status_code == 302
    )
    order.refresh_from_db()
    assert (order.status, order.confirmation_method) == (Status.CONFIRMED, "staff")
    # then whoever entered the times and confirmed cannot also approve: a second person does, from its page
    assert desk.post(f"/console/care/{order.pk}/approve/").status_code == 403
    assert browser(reviewer).post(f"/console/care/{order.pk}/approve/").status_code == 302
    order.refresh_from_db()
    assert (order.status, order.credited_minutes) == (Status.CREDITED, 70)
    assert zh_minutes(70) in html_of(desk.get(f"/console/care/{order.pk}/"))


def test_rejecting_from_the_service_page_releases_the_hold(browser, confirmed, station, old_elder):
    order = confirmed()
    desk = browser(station)
    blank = desk.post(f"/console/care/{order.pk}/reject/", {"reason": ""})
    assert field_errors(blank) == {"reject_reason": [zh("Say why.")]}
    response = desk.post(f"/console/care/{order.pk}/reject/", {"reason": "服务时间不符"})
    assert response.status_code == 302
    order.refresh_from_db()
    assert (order.status, order.review_note) == (Status.REJECTED, "服务时间不符")
    assert balance(old_elder) == (600, 0)


# --- paper cards --------------------------------------------------------------------------------------------


def test_entering_a_paper_card(browser, station, old_elder, helper):
    desk = browser(station)
    form = form_with(desk.get("/console/care/paper/"), "card_ref")
    yesterday = at(-1).date().isoformat()
    data = submittable(
        form,
        elder=str(old_elder.pk),
        volunteer=str(helper.pk),
        category="emotional_support",
        date=yesterday,
        start="09:00",
        end="10:15",
        travel_minutes="15",
        card_ref="纸卡-0031",
        funding="own",
    )
    # when the end comes before the start, then when the times are right
    wrong = desk.post("/console/care/paper/", data | {"end": "08:00"})
    assert wrong.status_code == 422
    assert field_errors(wrong) == {"end": [zh("The end is before the start.")]}
    response = desk.post("/console/care/paper/", data)
    # then the service is confirmed from paper and waits for review
    order = ServiceOrder.objects.get()
    assert response["Location"] == f"/console/care/{order.pk}/"
    assert (order.status, order.source, order.service_minutes) == (Status.CONFIRMED, "paper", 60)
    assert order.number in html_of(desk.get("/console/care/review/"))
    # and the same card cannot be entered twice
    twice = desk.post("/console/care/paper/", data)
    assert twice.status_code == 422
    assert field_errors(twice) == {
        "start": [zh("This service was already entered as %(number)s.") % {"number": order.number}]
    }


# --- the review queue ---------------------------------------------------------------------------------------


def test_batch_approval_says_which_failed_and_why(browser, confirmed, station, poor_elder, helper):
    # given two confirmed services: one of 王阿婆 and one of 赵阿公, whose 2 hours exceed his savings
    fine = confirmed()
    short = confirmed(hour=14, minutes=120, actor=user_of(poor_elder), elder=poor_elder)
    desk = browser(station)
    # when the station approves both at once
    response = desk.post("/console/care/review/", {"action": "approve", "orders": [fine.pk, short.pk]})
    # then the first is credited, and the page names the second and the reason
    assert response.status_code == 200
    fine.refresh_from_db()
    short.refresh_from_db()
    assert (fine.status, short.status) == (Status.CREDITED, Status.CONFIRMED)
    failed = re.search(
        r'<div class="error-box" role="alert" id="failed">(.*?)</div>', html_of(response), re.S
    )
    assert failed is not None
    assert short.number in failed.group(1) and fine.number not in failed.group(1)
    # (its "available" figure is stale in care.services, so only the payer and the need are checked)
    assert "赵阿公" in failed.group(1) and zh_minutes(120) in failed.group(1)
    assert balance(helper) == (60, 0)


def test_approving_nothing_or_something_not_waiting_is_explained(browser, confirmed, post, station):
    desk = browser(station)
    waiting = confirmed()
    not_waiting = post(window_start=at(3, 10), window_end=at(3, 11))
    nothing = desk.post("/console/care/review/", {"action": "approve"})
    assert nothing.status_code == 422
    assert alerts(nothing) == [zh("Tick the services to approve.")]
    foreign = desk.post("/console/care/review/", {"action": "approve", "orders": [not_waiting.pk]})
    assert foreign.status_code == 422
    waiting.refresh_from_db()
    assert waiting.status == Status.CONFIRMED


def test_rejecting_a_row_of_the_queue_needs_a_reason(browser, confirmed, station):
    order = confirmed()
    desk = browser(station)
    blank = desk.post("/console/care/review/", {"action": "reject", "order": order.pk, "reason": ""})
    assert blank.status_code == 422
    assert field_errors(blank) == {f"r{order.pk}_reason": [zh("Say why.")]}
    done = desk.post("/console/care/review/", {"action": "reject", "order": order.pk, "reason": "无人确认"})
    assert done.status_code == 302
    order.refresh_from_db()
    assert order.status == Status.REJECTED


def test_the_queue_filters_and_escalated_services_are_phoned_not_ticked(
    browser, confirmed, post, helper, station
):
    order = confirmed()
    quiet = care.order_accept(actor=user_of(helper), order=post(window_start=at(2, 10), window_end=at(2, 11)))
    quiet = done(quiet, helper, at(2, 10), at(2, 11))
    care.orders_escalate(now=at(5))
    desk = browser(station)
    page = html_of(desk.get("/console/care/review/"))
    assert f'name="orders" value="{order.pk}"' in page
    assert quiet.number in page and f'name="orders" value="{quiet.pk}"' not in page
    assert order.number not in html_of(desk.get("/console/care/review/?category=assistance"))


# --- complaints ---------------------------------------------------------------------------------------------


def test_resolving_a_complaint_by_correcting_the_time(browser, confirmed, station, old_elder, helper):
    order = care.order_approve(actor=station, order=confirmed(minutes=60))
    dispute = care.order_dispute(actor=user_of(old_elder), order=order, reason="只服务了四十分钟")
    desk = browser(station)
    page = desk.get("/console/care/disputes/")
    assert "只服务了四十分钟" in html_of(page)
    # when staff choose "corrected" but forget the minutes
    forgot = desk.post(
        f"/console/care/disputes/{dispute.pk}/", {"outcome": "corrected", "resolution": "核实"}
    )
    assert forgot.status_code == 422
    assert field_errors(forgot) == {
        f"d{dispute.pk}_corrected_minutes": [zh("Give the right service time in minutes.")]
    }
    # then give them
    fixed = desk.post(
        f"/console/care/disputes/{dispute.pk}/",
        {"outcome": "corrected", "corrected_minutes": "40", "resolution": "核实为四十分钟"},
    )
    assert fixed.status_code == 302
    dispute = Dispute.objects.get()
    assert (dispute.outcome, dispute.corrected_minutes) == ("corrected", 40)
    assert balance(helper) == (40, 0)
    assert "只服务了四十分钟" not in html_of(desk.get("/console/care/disputes/"))


# --- budgets ------------------------------------------------------------------------------------------------


def test_an_operator_sets_a_budget_and_station_staff_only_read_it(browser, operator, station, tree):
    desk = browser(operator)
    wrong = desk.post("/console/care/budgets/", {"region": "999999", "year": "2027", "limit_minutes": "600"})
    assert wrong.status_code == 422
    assert list(field_errors(wrong)) == ["region"]
    response = desk.post(
        "/console/care/budgets/", {"region": "310101", "year": "2027", "limit_minutes": "6000"}
    )
    assert response.status_code == 302
    budget = FundBudget.objects.get()
    assert (budget.region.code, budget.year, budget.limit_minutes) == ("310101", 2027, 6000)
    assert zh_minutes(6000) in html_of(desk.get("/console/care/budgets/"))
    station_desk = browser(station)
    assert 'name="limit_minutes"' not in html_of(station_desk.get("/console/care/budgets/"))
    assert (
        station_desk.post("/console/care/budgets/", {"region": "310101", "year": "2027"}).status_code == 403
    )


# --- a person's page ----------------------------------------------------------------------------------------


def test_certifications_are_granted_and_revoked_on_the_volunteers_page(browser, station, helper):
    desk = browser(station)
    until = (at(0).date() + dt.timedelta(days=365)).isoformat()
    expired = desk.post(
        f"/console/people/{helper.pk}/certifications/", {"code": "care_worker", "valid_until": "2020-01-01"}
    )
    assert expired.status_code == 422
    assert field_errors(expired) == {"valid_until": [zh("This certification has already expired.")]}
    granted = desk.post(
        f"/console/people/{helper.pk}/certifications/", {"code": "care_worker", "valid_until": until}
    )
    assert granted.status_code == 302
    cert = Certification.objects.get()
    assert "care_worker" in html_of(desk.get(f"/console/people/{helper.pk}/"))
    assert desk.post(f"/console/people/{helper.pk}/certifications/{cert.pk}/revoke/").status_code == 302
    cert.refresh_from_db()
    assert cert.revoked_at is not None


def test_the_volunteers_page_shows_the_star_level(browser, confirmed, station, helper):
    care.order_approve(actor=station, order=confirmed(minutes=90))
    page = html_of(browser(station).get(f"/console/people/{helper.pk}/"))
    assert zh_minutes(90) in page
    assert "☆☆☆☆☆" in page


def test_a_weak_pin_is_marked_and_a_good_one_is_set(browser, station, old_elder):
    desk = browser(station)
    weak = desk.post(f"/console/people/{old_elder.pk}/pin/", {"pin": "1234"})
    assert weak.status_code == 422
    assert field_errors(weak) == {"pin": [zh("Too easy to guess (like 1111 or 1234).")]}
    assert desk.post(f"/console/people/{old_elder.pk}/pin/", {"pin": "2580"}).status_code == 302
    assert zh("A PIN is set.") in html_of(desk.get(f"/console/people/{old_elder.pk}/"))


def test_the_printed_service_card(browser, station, old_elder):
    desk = browser(station)
    assert desk.get(f"/console/people/{old_elder.pk}/card/").status_code == 404
    issued = desk.post(f"/console/people/{old_elder.pk}/card/issue/")
    assert issued["Location"] == f"/console/people/{old_elder.pk}/card/"
    page = html_of(desk.get(issued["Location"]))
    card = ServiceCard.objects.get()
    # the QR code for the card's page, the elder's name and her 20 codes
    assert "<svg" in page and "王阿婆" in page
    assert f"http://testserver/care/card/{cards.card_token(card.serial)}/" in page
    assert all(code in page for _n, code in cards.card_codes(card.serial))
    assert AuditEvent.objects.filter(event_type="care.card.printed", subject_id=str(old_elder.pk)).exists()


def test_another_communitys_elder_has_no_card_for_these_staff(browser, station, jinyang_elder):
    desk = browser(station)
    assert desk.post(f"/console/people/{jinyang_elder.pk}/card/issue/").status_code == 404
    assert desk.get(f"/console/people/{jinyang_elder.pk}/card/").status_code == 404
    assert not ServiceCard.objects.exists()


def test_the_console_nav_shows_the_care_pages_by_role(browser, station, operator, tree, admin_user):
    from timebank.conftest import staff
    from timebank.people.models import Role

    auditor = staff(admin_user, "auditor", Role.AUDITOR, tree["310101"])
    station_nav = html_of(browser(station).get("/console/people/"))
    auditor_nav = html_of(browser(auditor).get("/console/people/"))
    assert all(f'href="/console/care/{p}"' in station_nav for p in ("", "review/", "disputes/", "budgets/"))
    assert 'href="/console/care/"' in auditor_nav and 'href="/console/care/review/"' not in auditor_nav


@pytest.mark.parametrize(
    ("method", "url", "data"),
    [
        ("get", "/console/care/?page=abc&status=x&community=%00&category=" + "长" * 500, {}),
        ("get", "/console/care/?flagged=yes&page=99999", {}),
        ("get", "/console/care/new/?elder=99999999999999999999", {}),
        ("get", "/console/care/999999999999999999999/", {}),
        ("post", "/console/care/new/", {"elder": "abc", "date": "0000-00-00", "repeat_weeks": "99"}),
        ("post", "/console/care/paper/", {"volunteer": "\x00", "travel_minutes": "-5", "payer": "1" * 30}),
        ("post", "/console/care/review/", {"action": "approve", "orders": ["abc", "9" * 30]}),
        ("post", "/console/care/review/", {"action": "reject", "order": "9" * 30, "reason": "x"}),
        ("post", "/console/care/review/", {"action": "reject", "order": "<b>", "reason": "x"}),
        ("post", "/console/care/disputes/99999/", {"outcome": "x"}),
        ("post", "/console/care/budgets/", {"region": "\x00", "year": "abc", "limit_minutes": "1e9"}),
        ("post", "/console/care/{order}/assign/", {"volunteer": "abc", "member_number": "9" * 30}),
        ("post", "/console/care/{order}/times/", {"date": "9999-12-31", "start": "25:00", "end": "x"}),
        ("post", "/console/care/{order}/approve/", {}),
        ("post", "/console/care/{order}/confirm/", {"note": "长" * 5000}),
        ("post", "/console/people/{elder}/certifications/", {"code": "../../", "valid_until": "0001-01-01"}),
        ("post", "/console/people/{elder}/certifications/999/revoke/", {}),
        ("post", "/console/people/{elder}/pin/", {"pin": "\x00" * 6}),
    ],
)
def test_junk_in_the_care_console_never_causes_a_server_error(
    browser, post, station, old_elder, method, url, data
):
    order = post()
    desk = browser(station)
    desk.raise_request_exception = False
    url = url.replace("{order}", str(order.pk)).replace("{elder}", str(old_elder.pk))
    response = getattr(desk, method)(url, data)
    assert response.status_code < 500, html_of(response)[:500]


def test_a_payer_elsewhere_is_not_found_by_number(browser, station, old_elder, jinyang_staff, tree):
    stranger = member(jinyang_staff, tree["310109018021"], "卫长根", birth=dt.date(1960, 1, 1))
    desk = browser(station)
    form = form_with(desk.get("/console/care/new/"), "category")
    data = submittable(
        form,
        elder=str(old_elder.pk),
        category="assistance",
        date=at(1).date().isoformat(),
        start="10:00",
        end="11:00",
        funding="family",
        payer=str(stranger.pk),
    )
    response = desk.post("/console/care/new/", data)
    assert field_errors(response) == {"payer": [zh("No member with this number in your regions.")]}
