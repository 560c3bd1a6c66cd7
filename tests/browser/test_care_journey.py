"""A service from request to credit, clicked through in Chromium by the four people it takes."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from timebank.care.models import ServiceOrder, Status
from timebank.care.tests.conftest import user_of
from timebank.web.tests.care_fixtures import zh_minutes
from timebank.web.tests.pages import zh


def test_an_elder_asks_a_volunteer_helps_she_confirms_with_her_pin_and_the_station_credits_him(
    site, clock, live, old_elder, helper, station
):
    # given the station has set 王阿婆's confirmation PIN on her page in the console, first thing in the day
    desk = site.sign_in(station, phone=False)
    site.submit(desk, desk.get_by_role("link", name=zh("People"), exact=True))
    site.look(desk)
    site.submit(desk, desk.get_by_role("link", name=old_elder.name))
    site.look(desk)
    desk.get_by_label(zh("New PIN for confirming services")).fill("2580")
    site.submit(desk, desk.get_by_role("button", name=zh("Set the PIN"), exact=True))
    expect(desk.locator("#pin-status")).to_have_text(zh("A PIN is set."))

    # when 王阿婆 opens TimeBank on her phone at nine and asks for an hour of company from ten
    clock.at(9)
    phone = site.sign_in(user_of(old_elder))
    site.look(phone, "care-01-elder-home", elder=True)
    site.submit(phone, phone.get_by_role("link", name=zh("Ask for help")).first)
    site.look(phone, "care-02-ask-for-help", elder=True)
    phone.get_by_label(zh("What kind of help")).select_option(label="情感慰藉")
    phone.get_by_label(zh("Date")).fill(clock.day.isoformat())
    phone.get_by_label(zh("From")).fill("10:00")
    phone.get_by_label(zh("Until")).fill("11:00")
    site.submit(phone, phone.get_by_role("button", name=zh("Send the request")))
    # then she sees her request, open, on its own page
    expect(phone).to_have_url(re.compile(r"/care/services/\d+/$"))
    expect(phone.locator(".status-line")).to_contain_text(zh(Status.OPEN.label))
    site.look(phone, "care-03-service-open", elder=True)
    service_path = phone.url.removeprefix(live.url)

    # when 李志强 looks at the requests near him and takes hers
    clock.at(9, 10)
    volunteer = site.sign_in(user_of(helper))
    site.look(volunteer, "care-04-volunteer-home")
    site.submit(volunteer, volunteer.get_by_role("link", name=zh("Requests near me")).first)
    site.look(volunteer, "care-05-requests-near-me")
    request = volunteer.locator(".order-item").filter(has_text="情感慰藉")
    site.submit(volunteer, request.get_by_role("button", name=zh("I will do it")))
    expect(volunteer).to_have_url(live.url + service_path)
    expect(volunteer.locator(".status-line")).to_contain_text(zh(Status.ASSIGNED.label))
    # and her page now names him
    phone.reload()
    expect(phone.locator(".facts")).to_contain_text(helper.name)

    # when he checks in at her door at 10:02 and out at 11:12
    clock.at(10, 2)
    volunteer.reload()
    site.submit(volunteer, volunteer.get_by_role("button", name=zh("I have arrived: check in")))
    expect(volunteer.locator(".status-line")).to_contain_text(zh(Status.IN_PROGRESS.label))
    site.look(volunteer)
    clock.at(11, 12)
    site.submit(volunteer, volunteer.get_by_role("button", name=zh("The service is over: check out")))
    # then his phone shows 1 h 10 min and asks her to confirm it
    expect(volunteer.locator("#service-minutes")).to_contain_text(zh_minutes(70))
    site.look(volunteer, "care-06-service-to-confirm")

    # when she types her PIN on his phone
    clock.at(11, 14)
    volunteer.get_by_label(zh("The elder types their PIN")).fill("2580")
    site.submit(volunteer, volunteer.get_by_role("button", name=zh("Confirm with the PIN")))
    expect(volunteer.locator(".status-line")).to_contain_text(zh(Status.CONFIRMED.label))
    # and her own phone shows the visit confirmed
    phone.reload()
    expect(phone.locator(".status-line")).to_contain_text(zh(Status.CONFIRMED.label))
    site.look(phone, "care-07-service-confirmed", elder=True)

    # when the station ticks it in the review queue after lunch and approves the selection
    clock.at(13, 30)
    desk = site.sign_in(station, phone=False)
    site.submit(desk, desk.get_by_role("link", name=zh("Review"), exact=True))
    site.look(desk, "care-08-review-queue")
    with live.quiet():
        number = ServiceOrder.objects.get().number
    desk.get_by_label(zh("Select %(number)s") % {"number": number}).check()
    site.submit(desk, desk.get_by_role("button", name=zh("Approve selected")))
    # then nothing waits any more
    expect(desk.locator("main")).to_contain_text(zh("Nothing is waiting."))
    site.look(desk)

    # and his statement shows the 70 minutes credited, his balance with them
    volunteer.goto("/")
    site.submit(volunteer, volunteer.locator("main a[href='/me/statement/']").first)  # "My hours: …"
    expect(volunteer.locator(".balance-figure")).to_have_text(zh_minutes(70))
    expect(volunteer.locator("table.list tbody tr").first).to_contain_text("+" + zh_minutes(70))
    site.look(volunteer, "care-09-volunteer-statement")
    # and hers the 70 minutes taken from her 10 hours
    phone.goto("/me/statement/")
    expect(phone.locator(".balance-figure")).to_have_text(zh_minutes(530))
    site.look(phone, "care-10-elder-statement", elder=True)
    with live.quiet():
        order = ServiceOrder.objects.get()
    assert (order.status, order.credited_minutes) == (Status.CREDITED, 70)
