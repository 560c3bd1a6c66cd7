"""The service card as a PDF from the staff console: who may download it, what it holds, and that every
download is logged like a printing of the page."""

from __future__ import annotations

import io

import pypdf
import pytest

from timebank.audit.models import AuditEvent
from timebank.care import cards
from timebank.care import services as care
from timebank.care.models import ServiceCard
from timebank.care.tests.conftest import user_of
from timebank.conftest import PASSWORD
from timebank.people import services as people
from timebank.people.models import Member, Role, User
from timebank.regions.models import Region
from timebank.web.tests.care_fixtures import *  # noqa: F403
from timebank.web.tests.pages import html_of, zh


def pdf_url(elder: Member) -> str:
    return f"/console/people/{elder.pk}/card.pdf"


@pytest.fixture
def card(station: User, old_elder: Member) -> ServiceCard:
    return care.service_card_issue(actor=station, elder=old_elder)


def printed(elder: Member) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type="care.card.printed", subject_id=str(elder.pk)))


def test_station_staff_download_the_card_as_a_pdf(browser, station, old_elder, card):
    # when station staff download 王阿婆's card
    response = browser(station).get(pdf_url(old_elder))
    # then it is a PDF of two pages, shown in the browser, named after the card, kept out of caches
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f"inline; filename=service-card-{card.serial}.pdf"
    assert "no-store" in response["Cache-Control"]
    assert response.content.startswith(b"%PDF")
    reader = pypdf.PdfReader(io.BytesIO(response.content))
    assert len(reader.pages) == 2
    front, back = (page.extract_text() for page in reader.pages)
    # with her name on the front and her 20 codes on the back
    assert "王阿婆" in front and card.serial in front
    assert all(code in back.splitlines() for _n, code in cards.card_codes(card.serial))


def test_the_qr_code_holds_the_cards_page(browser, station, old_elder, card, monkeypatch):
    # the QR code cannot be read back from the PDF here, so the card's data is looked at on its way in
    from timebank.care import card_pdf

    sheets: list[card_pdf.CardSheet] = []
    draw = card_pdf.service_card_pdf

    def spy(sheet: card_pdf.CardSheet) -> bytes:
        sheets.append(sheet)
        return draw(sheet)

    monkeypatch.setattr(card_pdf, "service_card_pdf", spy)
    assert browser(station).get(pdf_url(old_elder)).status_code == 200
    [sheet] = sheets
    assert sheet.url == f"http://testserver/care/card/{cards.card_token(card.serial)}/"
    assert (sheet.name, sheet.community, sheet.serial) == ("王阿婆", old_elder.home_region.name, card.serial)


def test_the_card_shows_the_stations_phone_when_one_is_on_record(
    browser, station, admin_user, old_elder, card, tree: dict[str, Region]
):
    # given a station staff member of 瑞金二路 whose mobile is on record
    desk = people.staff_user_create(
        actor=admin_user, username="ruijin-desk", password=PASSWORD, mobile="13812345678"
    )
    people.staff_grant_create(actor=admin_user, user=desk, role=Role.STATION_STAFF, region=tree["310101023"])
    # then the card gives that number
    front = pypdf.PdfReader(io.BytesIO(browser(station).get(pdf_url(old_elder)).content)).pages[0]
    assert "13812345678" in front.extract_text()


def test_every_download_is_logged(browser, station, old_elder, card):
    desk = browser(station)
    assert desk.get(pdf_url(old_elder)).status_code == 200
    assert desk.get(pdf_url(old_elder)).status_code == 200
    events = printed(old_elder)
    assert len(events) == 2
    assert {(e.actor_id, (e.new or {}).get("serial")) for e in events} == {(station.pk, card.serial)}


def test_staff_of_another_community_get_404(browser, jinyang_staff, old_elder, card):
    assert browser(jinyang_staff).get(pdf_url(old_elder)).status_code == 404
    assert printed(old_elder) == []


def test_a_staff_member_who_volunteers_for_the_elder_is_refused(
    browser, post, admin_user, helper, old_elder, card, tree: dict[str, Region]
):
    # given 李志强 also works at the station, and has taken a service of 王阿婆
    staff_self = user_of(helper)
    people.staff_grant_create(
        actor=admin_user, user=staff_self, role=Role.STATION_STAFF, region=tree["310101023001"]
    )
    care.order_accept(actor=staff_self, order=post())
    # when he downloads her card, then he is refused, sees why, and nothing is logged
    response = browser(staff_self).get(pdf_url(old_elder))
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
    assert zh(
        "You volunteer for this elder, so another staff member handles their PIN and service card."
    ) in (html_of(response))
    assert printed(old_elder) == []


def test_no_card_yet_and_staff_without_care_rights(browser, station, old_elder, admin_user, tree):
    from timebank.conftest import staff

    # no card issued yet: nothing to download
    assert browser(station).get(pdf_url(old_elder)).status_code == 404
    care.service_card_issue(actor=station, elder=old_elder)
    # an auditor of the district reads but does not print
    auditor = staff(admin_user, "huangpu-auditor", Role.AUDITOR, tree["310101"])
    assert browser(auditor).get(pdf_url(old_elder)).status_code == 403
    assert printed(old_elder) == []


def test_the_card_page_and_the_persons_page_link_to_the_pdf(browser, station, old_elder, card):
    desk = browser(station)
    link = f'href="{pdf_url(old_elder)}"'
    assert link in html_of(desk.get(f"/console/people/{old_elder.pk}/"))
    assert link in html_of(desk.get(f"/console/people/{old_elder.pk}/card/"))
