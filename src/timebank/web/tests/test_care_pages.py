"""Care services on the member pages, used the way elders, families and volunteers use them."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.utils import translation

from timebank.care import services as care
from timebank.care.models import ConfirmMethod, Dispute, Rating, ServiceOrder, Status
from timebank.care.tests.conftest import at, balance, user_of
from timebank.notifications.models import Notification
from timebank.notifications.services import render
from timebank.web.tests.care_fixtures import *  # noqa: F403
from timebank.web.tests.care_fixtures import at_time, done, zh_minutes
from timebank.web.tests.pages import alerts, field_errors, form_with, html_of, submittable, zh


def _ask(browser_: Client, **changes: str) -> Any:
    """Fill in the ask-for-help form as shown, with ``changes``, and send it."""
    form = form_with(browser_.get("/care/ask/"), "category")
    day = at(1).date().isoformat()
    values = {"category": "emotional_support", "date": day, "start": "10:00", "end": "11:00"} | changes
    return browser_.post("/care/ask/", submittable(form, **values))


def test_a_service_from_request_to_credit_through_the_pages(browser, old_elder, helper, station):
    elder_phone, volunteer_phone, station_desk = (
        browser(user_of(old_elder)),
        browser(user_of(helper)),
        browser(station),
    )
    # given 王阿婆 on her start page, which offers to ask for help
    assert 'href="/care/ask/"' in html_of(elder_phone.get("/"))

    # when she asks for an hour of company tomorrow at 10, paid from her savings
    asked = _ask(elder_phone)
    # then she lands on the service's page, open
    order = ServiceOrder.objects.get()
    assert asked.status_code == 302
    assert asked["Location"] == f"/care/services/{order.pk}/"
    assert zh(Status.OPEN.label) in html_of(elder_phone.get(asked["Location"]))

    # when 李志强 finds it among the requests near him and takes it
    listed = volunteer_phone.get("/care/open/")
    assert order.number in html_of(listed)
    accepted = volunteer_phone.post(f"/care/services/{order.pk}/accept/")
    assert accepted["Location"] == f"/care/services/{order.pk}/"
    # the planned hour is held on her savings
    assert balance(old_elder) == (600, 60)

    # when he checks in at 10:02 and out at 11:12 on his phone
    with at_time(volunteer_phone, user_of(helper), at(1, 10, 2)):
        page = volunteer_phone.get(f"/care/services/{order.pk}/")
        assert f'action="/care/services/{order.pk}/check-in/"' in html_of(page)
        assert volunteer_phone.post(f"/care/services/{order.pk}/check-in/").status_code == 302
    with at_time(volunteer_phone, user_of(helper), at(1, 11, 12)):
        assert volunteer_phone.post(f"/care/services/{order.pk}/check-out/").status_code == 302
    # then his page shows 70 minutes of service and asks her to confirm
    page = volunteer_phone.get(f"/care/services/{order.pk}/")
    assert zh_minutes(70) in html_of(page)
    form_with(page, "pin")

    # when the station has set her PIN, and she types it on his phone
    assert station_desk.post(f"/console/people/{old_elder.pk}/pin/", {"pin": "2580"}).status_code == 302
    confirmed = volunteer_phone.post(f"/care/services/{order.pk}/confirm/pin/", {"pin": "2580"})
    assert confirmed.status_code == 302
    order.refresh_from_db()
    assert (order.status, order.confirmation_method) == (Status.CONFIRMED, ConfirmMethod.PIN)

    # when the station ticks it in the review queue and approves the selection
    queue = station_desk.get("/console/care/review/")
    assert f'name="orders" value="{order.pk}"' in html_of(queue)
    approved = station_desk.post("/console/care/review/", {"action": "approve", "orders": [order.pk]})
    assert approved.status_code == 302
    assert order.number not in html_of(station_desk.get("/console/care/review/"))

    # then 70 minutes moved from her savings to his, as both statements show
    order.refresh_from_db()
    assert (order.status, order.credited_minutes) == (Status.CREDITED, 70)
    assert balance(old_elder) == (530, 0)
    assert balance(helper) == (70, 0)
    assert zh_minutes(70) in html_of(volunteer_phone.get("/me/statement/"))
    assert zh_minutes(530) in html_of(elder_phone.get("/me/statement/"))
    # and his start page counts the credited time towards his star level
    assert zh_minutes(70) in html_of(volunteer_phone.get("/"))


def test_ending_before_starting_is_marked_on_the_end_field(browser, old_elder):
    phone = browser(user_of(old_elder))
    # when she gives an end before the start
    response = _ask(phone, start="11:00", end="10:00")
    # then the end field says so, what she typed is kept, and nothing is posted
    assert response.status_code == 422
    assert field_errors(response) == {"end": [zh("The end is before the start.")]}
    form = form_with(response, "end")
    assert (form["start"], form["end"]) == ("11:00", "10:00")
    assert not ServiceOrder.objects.exists()


def test_a_time_that_has_passed_and_a_missing_date_are_marked(browser, old_elder):
    phone = browser(user_of(old_elder))
    passed = _ask(phone, date=at(-1).date().isoformat())
    assert passed.status_code == 422
    assert list(field_errors(passed)) == ["start"]
    missing = _ask(phone, date="", category="no-such-help")
    assert missing.status_code == 422
    assert set(field_errors(missing)) == {"date", "category"}
    assert not ServiceOrder.objects.exists()


def test_paying_beyond_the_savings_is_marked_on_who_pays(browser, old_elder):
    phone = browser(user_of(old_elder))
    # when she asks for one visit of 12 hours, more than her 10 hours of savings
    response = _ask(phone, start="08:00", end="20:00")
    assert response.status_code == 422
    assert list(field_errors(response)) == ["funding"]


def test_a_son_asks_for_his_mother_and_pays_from_his_savings(browser, son, old_elder):
    phone = browser(user_of(son))
    # given the son's start page offers to ask for help for his mother
    assert 'href="/care/ask/"' in html_of(phone.get("/"))
    assert f'name="elder" value="{old_elder.pk}"' in html_of(phone.get("/care/ask/"))
    # when he asks weekly for three weeks, from his own savings
    response = _ask(phone, elder=str(old_elder.pk), funding="family", repeat_weeks="3")
    # then three visits are posted for her, paid by him
    assert response.status_code == 302
    orders = list(ServiceOrder.objects.order_by("window_start"))
    assert len(orders) == 3
    assert {(o.elder_id, o.payer_id, o.funding) for o in orders} == {(old_elder.pk, son.pk, "family")}
    # and his services page lists them under his mother's name
    page = html_of(phone.get("/care/mine/"))
    assert all(f"/care/services/{o.pk}/" in page for o in orders)


def test_a_member_who_is_neither_elder_nor_family_cannot_ask(browser, helper):
    phone = browser(user_of(helper))
    assert 'href="/care/ask/"' not in html_of(phone.get("/"))
    assert phone.get("/care/ask/").status_code == 403


def test_the_elder_cancels_with_a_reason(browser, post, old_elder, helper):
    order = care.order_accept(actor=user_of(helper), order=post())
    phone = browser(user_of(old_elder))
    # when she cancels without a reason, then with one
    blank = phone.post(f"/care/services/{order.pk}/cancel/", {"reason": " "})
    assert blank.status_code == 422
    assert field_errors(blank) == {"reason": [zh("Say why.")]}
    done = phone.post(f"/care/services/{order.pk}/cancel/", {"reason": "身体不适"})
    # then it is cancelled and the hold on her savings released
    assert done.status_code == 302
    order.refresh_from_db()
    assert order.status == Status.CANCELLED
    assert balance(old_elder) == (600, 0)


def test_the_volunteer_gives_a_service_back(browser, post, helper):
    order = care.order_accept(actor=user_of(helper), order=post())
    phone = browser(user_of(helper))
    response = phone.post(f"/care/services/{order.pk}/withdraw/", {"reason": "临时有事"})
    assert response.status_code == 302
    order.refresh_from_db()
    assert (order.status, order.volunteer_id) == (Status.OPEN, None)


def test_a_wrong_pin_is_marked_and_counts_down(browser, post, helper, old_elder, station):
    care.elder_pin_set(actor=station, elder=old_elder, pin="2580")
    order = care.order_accept(actor=user_of(helper), order=post())
    done(order, helper, at(1, 10), at(1, 11))
    phone = browser(user_of(helper))
    response = phone.post(f"/care/services/{order.pk}/confirm/pin/", {"pin": "1357"})
    assert response.status_code == 422
    assert list(field_errors(response)) == ["pin"]
    order.refresh_from_db()
    assert order.status == Status.COMPLETED


def test_the_elder_confirms_on_her_phone_rates_and_complains(browser, post, helper, old_elder):
    order = care.order_accept(actor=user_of(helper), order=post())
    done(order, helper, at(1, 10), at(1, 10, 45))
    phone = browser(user_of(old_elder))
    page = phone.get(f"/care/services/{order.pk}/")
    assert f'action="/care/services/{order.pk}/confirm/device/"' in html_of(page)
    # when she confirms, gives four stars, then complains
    assert phone.post(f"/care/services/{order.pk}/confirm/device/").status_code == 302
    assert (
        phone.post(f"/care/services/{order.pk}/rate/", {"stars": "4", "comment": "很耐心"}).status_code == 302
    )
    assert phone.post(f"/care/services/{order.pk}/complain/", {"reason": "少记了时间"}).status_code == 302
    # then
    rating = Rating.objects.get()
    assert (rating.side, rating.stars, rating.comment) == ("elder", 4, "很耐心")
    assert Dispute.objects.get().reason == "少记了时间"
    order.refresh_from_db()
    assert order.status == Status.DISPUTED
    # and the page no longer offers to rate a second time
    assert f'action="/care/services/{order.pk}/rate/"' not in html_of(
        phone.get(f"/care/services/{order.pk}/")
    )


def test_a_refusal_about_the_service_itself_is_shown_at_the_top(browser, post, helper, old_elder):
    # given an assigned service that has not started yet
    order = care.order_accept(actor=user_of(helper), order=post())
    phone = browser(user_of(old_elder))
    # when she records that nobody came, before the time
    response = phone.post(f"/care/services/{order.pk}/no-show/", {"note": ""})
    # then the page says why not at the top, and nothing changed
    assert response.status_code == 422
    assert alerts(response) == [zh("The service has not started yet; cancel it instead.")]
    assert field_errors(response) == {}
    order.refresh_from_db()
    assert order.status == Status.ASSIGNED


def test_confirming_twice_is_explained(browser, confirmed, old_elder):
    order = confirmed()
    response = browser(user_of(old_elder)).post(f"/care/services/{order.pk}/confirm/device/")
    assert response.status_code == 409
    assert len(alerts(response)) == 1


def test_five_stars_at_most(browser, confirmed, old_elder):
    order = confirmed()
    response = browser(user_of(old_elder)).post(f"/care/services/{order.pk}/rate/", {"stars": "6"})
    assert response.status_code == 422
    assert "stars" in field_errors(response)
    assert not Rating.objects.exists()


def test_somebody_elses_service_is_not_found(browser, post, neighbour_helper):
    order = post()
    assert browser(user_of(neighbour_helper)).get(f"/care/services/{order.pk}/").status_code == 404


def test_a_volunteer_cannot_take_a_request_not_offered_to_them(browser, post, old_elder, son):
    # given a request of 王阿婆 / when her son, who is no volunteer, tries to take it
    order = post()
    response = browser(user_of(son)).post(f"/care/services/{order.pk}/accept/")
    assert response.status_code == 403
    order.refresh_from_db()
    assert order.status == Status.OPEN


# --- the service card ---------------------------------------------------------------------------------------


def _card_url(station_desk, elder) -> str:
    issued = station_desk.post(f"/console/people/{elder.pk}/card/issue/")
    assert issued.status_code == 302
    printed = html_of(station_desk.get(issued["Location"]))
    found = re.search(r"http://testserver(/care/card/[^/<\s]+/)", printed)
    assert found is not None
    return found.group(1)


def test_scanning_the_service_card_checks_the_volunteer_in_and_out(browser, post, helper, old_elder, station):
    order = care.order_accept(actor=user_of(helper), order=post())
    url = _card_url(browser(station), old_elder)
    phone = browser(user_of(helper))
    # when he scans her card on arrival
    with at_time(phone, user_of(helper), at(1, 9, 55)):
        page = phone.get(url)
        assert page.status_code == 200
        assert "王阿婆" in html_of(page)
        form = form_with(page, "token")
        assert phone.post(f"/care/services/{order.pk}/check-in/", {"token": form["token"]}).status_code == 302
    # and again when leaving
    with at_time(phone, user_of(helper), at(1, 10, 40)):
        form = form_with(phone.get(url), "token")
        assert (
            phone.post(f"/care/services/{order.pk}/check-out/", {"token": form["token"]}).status_code == 302
        )
    # then both times came from the card
    order.refresh_from_db()
    assert (order.check_in_method, order.check_out_method, order.service_minutes) == ("qr", "qr", 45)


def test_a_tampered_card_shows_a_clear_error(browser, helper, old_elder, station):
    url = _card_url(browser(station), old_elder)
    token = url.split("/")[3]
    tampered = f"/care/card/{token[:-2]}{'A' if token[-2] != 'A' else 'B'}{token[-1]}/"
    phone = browser(user_of(helper))
    phone.raise_request_exception = False
    response = phone.get(tampered)
    assert response.status_code == 422
    assert alerts(response) == [
        zh("This is not a valid service card: the code was altered or is not one of ours.")
    ]
    junk = phone.get("/care/card/not-a-card/")
    assert junk.status_code == 422


def test_an_overlong_card_token_is_refused_not_taken_as_an_app_check_in(browser, post, helper):
    order = care.order_accept(actor=user_of(helper), order=post())
    phone = browser(user_of(helper))
    phone.raise_request_exception = False
    with at_time(phone, user_of(helper), at(1, 10)):
        response = phone.post(f"/care/services/{order.pk}/check-in/", {"token": "x" * 1000})
    assert response.status_code == 422
    assert alerts(response) == [zh("This is not a valid service card.")]
    order.refresh_from_db()
    assert order.status == Status.ASSIGNED


def test_an_old_card_stops_working_when_a_new_one_is_issued(browser, helper, old_elder, station):
    desk = browser(station)
    old = _card_url(desk, old_elder)
    _card_url(desk, old_elder)
    response = browser(user_of(helper)).get(old)
    assert response.status_code == 422
    assert alerts(response) == [zh("This service card was replaced; use the elder's current card.")]


def test_the_card_from_another_elder_does_not_check_in(browser, post, helper, old_elder, poor_elder, station):
    order = care.order_accept(actor=user_of(helper), order=post())
    url = _card_url(browser(station), poor_elder)
    phone = browser(user_of(helper))
    token = url.split("/")[3]
    with at_time(phone, user_of(helper), at(1, 10)):
        response = phone.post(f"/care/services/{order.pk}/check-in/", {"token": token})
    assert response.status_code == 422
    assert alerts(response) == [
        zh("This card belongs to another elder, not to %(name)s.") % {"name": "王阿婆"}
    ]
    order.refresh_from_db()
    assert order.status == Status.ASSIGNED


# --- notifications ------------------------------------------------------------------------------------------


def test_the_notification_centre_lists_newest_first_and_marks_read(browser, post, helper, old_elder):
    order = post()
    care.order_accept(actor=user_of(helper), order=order)
    care.order_cancel(actor=user_of(old_elder), order=order, reason="身体不适")
    phone = browser(user_of(old_elder))
    notices = list(Notification.objects.filter(recipient=user_of(old_elder)).order_by("-created_at", "-id"))
    assert [n.kind for n in notices] == ["care.cancelled", "care.assigned"]
    # given her start page counts two new notifications
    home = html_of(phone.get("/"))
    assert 'href="/notifications/"' in home
    # when she opens the notification centre
    page = html_of(phone.get("/notifications/"))
    # then both are there in Chinese, the newest first, linked to the service
    with translation.override("zh-hans"):
        titles = [render(n.kind, n.params)[0] for n in notices]
    assert page.index(titles[0]) < page.index(titles[1])
    assert f'href="/care/services/{order.pk}/"' in page
    # when she marks them read
    assert phone.post("/notifications/read/").status_code == 302
    # then none is unread
    assert not Notification.objects.filter(recipient=user_of(old_elder), read_at__isnull=True).exists()
    assert 'action="/notifications/read/"' not in html_of(phone.get("/notifications/"))


def test_notifications_read_in_english_after_switching(browser, post, helper, old_elder):
    order = post()
    care.order_accept(actor=user_of(helper), order=order)
    phone = browser(user_of(old_elder))
    phone.post("/i18n/setlang/", {"language": "en", "next": "/notifications/"})
    page = html_of(phone.get("/notifications/"))
    notice = Notification.objects.get(recipient=user_of(old_elder))
    with translation.override("en"):
        title, body = render(notice.kind, notice.params)
    assert title in page
    assert "Emotional support" in body and "Emotional support" in page


@pytest.mark.parametrize(
    "url",
    [
        "/care/services/abc/",
        "/care/services/999999999999999999999999/",
        "/care/services/0/",
        "/care/card/%00/",
        "/care/card/" + "x" * 3000 + "/",
        "/notifications/?page=abc",
        "/notifications/?page=99999",
    ],
)
def test_junk_in_care_urls_never_causes_a_server_error(browser, helper, url):
    phone = browser(user_of(helper))
    phone.raise_request_exception = False
    assert phone.get(url).status_code < 500


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("accept", {}),
        ("check-in", {"token": "x" * 1000}),
        ("confirm/pin", {"pin": "\x00"}),
        ("confirm/code", {"code": "长" * 100}),
        ("rate", {"stars": "abc", "comment": "长" * 5000}),
        ("cancel", {"reason": "长" * 5000}),
        ("complain", {}),
    ],
)
def test_junk_posted_to_a_service_never_causes_a_server_error(browser, post, helper, path, data):
    order = care.order_accept(actor=user_of(helper), order=post())
    phone = browser(user_of(helper))
    phone.raise_request_exception = False
    assert phone.post(f"/care/services/{order.pk}/{path}/", data).status_code < 500
