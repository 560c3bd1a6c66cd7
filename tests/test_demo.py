"""The demo community: loaded through the real services, safe to load twice, and every printed login works."""

from __future__ import annotations

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

pytestmark = pytest.mark.django_db


def _everything() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (Region, Policy, User, StaffGrant, Member, PriorityStatus, FamilyBond, AuditEvent)
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
