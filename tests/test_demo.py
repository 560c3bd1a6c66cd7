"""The demo community: loaded through the real services, safe to load twice, and every printed login works."""

from __future__ import annotations

import datetime as dt
import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from timebank.audit.models import AuditEvent
from timebank.care.models import Funding, Rating, ServiceOrder, Source, Status
from timebank.demo.seed import DEMO_PASSWORD, JINYANG, YANDANG, seed_demo
from timebank.exchange.models import GuaranteeFund, Purchase, Redemption
from timebank.ledger.models import Transaction
from timebank.ledger.verify import ledger_verify
from timebank.people.models import FamilyBond, Member, PriorityStatus, StaffGrant, User
from timebank.regions.models import Policy, Region
from timebank.regions.selectors import policy_in_force
from timebank.sensing.models import Candidate, Device, Event, Gateway, PresenceSession
from timebank.sensing.presence_selectors import measured_for_review

pytestmark = pytest.mark.django_db


def _everything() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (
            Region,
            Policy,
            User,
            StaffGrant,
            Member,
            PriorityStatus,
            FamilyBond,
            AuditEvent,
            Device,
            Gateway,
        )
    }


def _user_of(identifier: str) -> User | None:
    """The sign-in a printed login names: a username, or (for the PIN elder) a mobile number."""
    return User.objects.filter(username=identifier).first() or User.objects.filter(mobile=identifier).first()


def _person_links(page: str) -> set[str]:
    return set(re.findall(r'<a href="/console/people/\d+/">([^<]+)</a>', page))


def test_seeding_creates_the_demo_communities():
    # given an empty database
    # when the demo is seeded
    logins = seed_demo(history=False)
    # then both communities exist with their people, and the staff and members who sign in
    assert Region.objects.get(code=YANDANG).name == "雁荡居委会"
    assert Region.objects.get(code=JINYANG).name == "晋阳居委会"
    assert Member.objects.filter(home_region__code=YANDANG).count() == 18
    assert Member.objects.filter(home_region__code=JINYANG).count() == 5
    assert {login.username for login in logins} >= {"admin", "station", "community", "volunteer", "elder"}
    assert all(_user_of(login.username) is not None for login in logins)
    assert AuditEvent.objects.filter(event_type="member.registered").count() == 23
    # and 雁荡's volunteers and elders wear wristbands its station's hub forwards (no history: no events)
    worn = Device.objects.filter(member__home_region__code=YANDANG, revoked_at__isnull=True)
    assert worn.count() == 16 and set(worn.values_list("member__name", flat=True)) >= {"李秀英", "林淑珍"}
    assert Gateway.objects.get(identifier="st-yandang-1").region == Region.objects.get(code=YANDANG)
    assert not Event.objects.exists()


def test_seeding_twice_creates_nothing_new():
    # given a seeded database
    first = seed_demo(history=False)
    before = _everything()
    # when the demo is seeded again
    second = seed_demo(history=False)
    # then nothing was added, and the same logins are returned
    assert _everything() == before
    assert second == first


def test_every_printed_login_signs_in_where_it_should(client):
    # given the seeded demo and its printed logins
    logins = seed_demo(history=False)
    yandang = Region.objects.get(code=YANDANG)
    yandang_names = set(Member.objects.filter(home_region=yandang).values_list("name", flat=True))
    jinyang_names = set(Member.objects.filter(home_region__code=JINYANG).values_list("name", flat=True))
    for login in logins:
        # when each signs in with the printed password
        client.logout()
        response = client.post(
            "/sign-in/", {"identifier": login.username, "password": login.password}, follow=True
        )
        # then staff land on the console and members on their own page
        assert response.status_code == 200, login
        page = response.content.decode()
        listed = _person_links(page)
        if login.role == "merchant_staff":
            # the shop's clerk lands at the shop counter, with the shop's goods
            assert response.redirect_chain[-1] == ("/shop/", 302), login
            assert "大米 5 公斤" in page
            continue
        if login.role in ("member", "elder_pin"):
            assert response.redirect_chain == [("/", 302)], login
            user = _user_of(login.username)
            assert user is not None
            assert user.member is not None
            assert user.member.name in page
            assert not listed
            continue
        assert response.redirect_chain[-1] == ("/console/people/", 302), login
        if login.scope == "—" or yandang.path.startswith(Region.objects.get(code=login.scope).path):
            # staff whose region holds 雁荡 see its people
            assert "李秀英" in listed, login
            assert listed & yandang_names
        else:
            # 虹口 staff see 晋阳's people, not 雁荡's
            assert listed <= jinyang_names, login
            assert listed


def test_the_demo_password_is_the_printed_one():
    # given the demo / when it is seeded / then every login carries the one demo password
    logins = seed_demo(history=False)
    assert {login.password for login in logins if login.role != "elder_pin"} == {DEMO_PASSWORD}
    assert [login.password for login in logins if login.role == "elder_pin"] == ["582037"]


def test_the_seed_demo_command_prints_the_logins():
    # given an empty database
    out = StringIO()
    # when the operator runs seed_demo
    call_command("seed_demo", stdout=out)
    # then it says the data was loaded and prints every login with the password
    text = out.getvalue()
    assert "demo data loaded" in text
    assert DEMO_PASSWORD in text
    for username in (
        "admin",
        "station",
        "community",
        "operator",
        "auditor",
        "hongkou",
        "volunteer",
        "elder",
        "family",
    ):
        assert re.search(rf"^\s+{username}\s", text, re.M), f"{username} not printed:\n{text}"
    # and the sensors: the hub, and how to send it more visits
    (sensors,) = [line for line in text.splitlines() if line.startswith("Sensors:")]
    assert "st-yandang-1" in sensors
    assert f"timebank sensing simulate --to http --region {YANDANG} --by community" in sensors


def test_the_seed_demo_command_run_twice_says_the_data_is_there():
    # given a seeded database
    call_command("seed_demo", stdout=StringIO())
    before = _everything()
    out = StringIO()
    # when the command runs again
    call_command("seed_demo", stdout=out)
    # then it says so, still prints the logins, and adds nothing
    assert "demo data already present" in out.getvalue()
    assert "admin" in out.getvalue()
    assert _everything() == before


def test_the_demo_has_months_of_care_history_through_every_path():
    # given the full demo
    seed_demo()
    orders = ServiceOrder.objects.all()
    # then services span twenty weeks, in both communities, in every category of both policies
    first = orders.order_by("window_start").first()
    assert first is not None and (timezone.now() - first.window_start).days >= 120
    policy = policy_in_force(Region.objects.get(code=YANDANG), timezone.localdate())
    assert policy is not None
    yandang_categories = {c.code for c in policy.categories.all()}
    assert (
        set(orders.filter(region__code=YANDANG).values_list("category__code", flat=True))
        == yandang_categories
    )
    assert orders.filter(region__code=JINYANG, coefficient_permille__gt=1000, status=Status.CREDITED).exists()
    # every funding source, every way of confirming, paper records and app records
    assert set(orders.values_list("funding", flat=True)) == set(Funding.values)
    assert set(orders.exclude(confirmation_method="").values_list("confirmation_method", flat=True)) >= {
        "pin",
        "card_code",
        "device",
        "proxy",
        "paper",
    }
    assert orders.filter(source=Source.IMPORT, status=Status.CREDITED).count() == 5
    assert orders.filter(check_in_method="qr").exists() and orders.filter(check_in_method="app").exists()
    # the ways a service ends, and today's unfinished work
    statuses = set(orders.values_list("status", flat=True))
    assert statuses >= {
        Status.CREDITED,
        Status.REVERSED,
        Status.DISPUTED,
        Status.CANCELLED,
        Status.EXPIRED,
        Status.NO_SHOW,
        Status.OPEN,
        Status.ASSIGNED,
        Status.COMPLETED,
        Status.CONFIRMED,
    }
    assert orders.filter(escalated_at__isnull=False, status=Status.COMPLETED).exists()
    assert orders.filter(series__isnull=False).values("series").distinct().count() == 1
    assert Rating.objects.count() > 20
    assert orders.filter(status=Status.CONFIRMED).count() >= 4  # the station's review queue today
    assert orders.filter(status=Status.OPEN).count() >= 5  # requests volunteers can take
    # and the withdrawal side: a shop's redemptions, a transfer, an allocation, a purchase, a fund, a move
    assert set(Redemption.objects.values_list("status", flat=True)) == {
        "handed_over",
        "reserved",
        "cancelled",
    }
    kinds = set(Transaction.objects.values_list("kind", flat=True))
    assert {"transfer", "donation", "allocation", "purchase", "redemption", "service_credit"} <= kinds
    assert GuaranteeFund.objects.exists() and Purchase.objects.count() == 1
    assert Member.objects.get(name="罗金宝").home_region.code == "310101023002"
    # and the ledger agrees with itself
    assert ledger_verify().ok


def test_the_demo_measured_the_last_two_weeks_with_its_sensors(client):
    # given the full demo
    seed_demo()
    now = timezone.now()
    # then 雁荡's services of the last two weeks show the time the wristbands measured — nearly all agreeing
    recent = ServiceOrder.objects.filter(
        region__code=YANDANG, volunteer__isnull=False, checked_in_at__gte=now - dt.timedelta(days=13)
    )
    measured = [m for m in measured_for_review(recent).values() if m.session_ids]
    assert len(measured) >= 8
    assert sum(m.agrees() for m in measured) >= len(measured) - 3
    # older services were not measured (the wristbands came two weeks ago)
    older = ServiceOrder.objects.filter(checked_in_at__lt=now - dt.timedelta(days=15))
    assert not any(m.session_ids for m in measured_for_review(older).values())
    # the station's review queue shows one visit shorter than the time claimed
    queue = ServiceOrder.objects.filter(region__code=YANDANG, status=Status.CONFIRMED)
    assert any(m.session_ids and not m.agrees() for m in measured_for_review(queue).values())
    # visits nobody planned wait for the station; a daughter's visit to her mother was dismissed
    pending = PresenceSession.objects.filter(candidate=Candidate.PENDING, order__isnull=True)
    assert pending.count() == 3
    dismissed = PresenceSession.objects.get(candidate=Candidate.DISMISSED)
    assert (dismissed.volunteer.name, dismissed.elder.name) == ("林海燕", "林淑珍")
    # the wristbands reported their batteries, and the hub's uploads were counted, forgeries refused
    assert Device.objects.filter(battery_percent__isnull=False).count() == 15
    gateway = Gateway.objects.get(identifier="st-yandang-1")
    assert Event.objects.filter(gateway=gateway).count() > 1000
    # and the station sees them on its pages
    client.force_login(User.objects.get(username="station"))
    unplanned = client.get("/console/care/unplanned/").content.decode()
    assert all(session.number in unplanned for session in pending)
    review = client.get("/console/care/review/").content.decode()
    cells = re.findall(r'<td class="nowrap measured">(.*?)</td>', review, re.S)
    assert any('class="tag flag"' in cell for cell in cells)  # measured less than claimed
    assert any('class="tag"' in cell for cell in cells)  # agrees
