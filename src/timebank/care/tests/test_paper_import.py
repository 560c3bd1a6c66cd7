"""Importing historical paper-card records: every line checked, all imported or none, from the service and
from the ``timebank care import-paper`` command."""

from __future__ import annotations

import datetime as dt
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from timebank.audit.models import AuditEvent
from timebank.care import services as care
from timebank.care.models import ServiceOrder, Source, Status
from timebank.care.tests.conftest import balance, member
from timebank.common.errors import ApplicationError
from timebank.people.models import Member, User
from timebank.regions.models import Region

HEADER = ",".join(care.PAPER_COLUMNS)


def day(days_ago: int) -> str:
    return (timezone.localdate() - dt.timedelta(days=days_ago)).isoformat()


def line(
    who: Member, elder: Member, *, when: str, start: str = "09:00", end: str = "10:10", **cells: str
) -> str:
    values = {
        "card": "P-001",
        "volunteer": who.mobile,
        "elder": elder.mobile,
        "category": "emotional_support",
        "date": when,
        "start": start,
        "end": end,
        "travel_minutes": "10",
        "funding": "own",
        "payer": "",
        "notes": "陪聊",
    }
    values.update(cells)
    return ",".join(values[c] for c in care.PAPER_COLUMNS)


def test_a_good_file_is_imported_as_paper_records_waiting_for_review(
    old_elder: Member, helper: Member, station: User, reviewer: User
) -> None:
    # given three cards of last month
    text = "\n".join(
        [
            HEADER,
            line(helper, old_elder, when=day(30)),
            line(helper, old_elder, when=day(23), card="P-002"),
            line(
                helper, old_elder, when=day(16), start="14:00", end="15:40", card="P-003", travel_minutes="0"
            ),
        ]
    )
    # when the station imports them
    report = care.paper_import(actor=station, text=text)
    # then each is a confirmed paper record with travel time excluded, holding the elder's savings
    assert len(report.created) == 3
    orders = ServiceOrder.objects.order_by("checked_in_at")
    assert [o.service_minutes for o in orders] == [60, 60, 100]
    assert {o.status for o in orders} == {Status.CONFIRMED}
    assert {o.source for o in orders} == {Source.IMPORT}
    assert balance(old_elder) == (600, 220)
    assert AuditEvent.objects.filter(event_type="care.order.paper_entered").count() == 3
    # and approving them credits the volunteer
    result = care.orders_approve(actor=reviewer, orders=report.created)
    assert len(result.approved) == 3
    assert balance(helper) == (220, 0)


def test_a_file_with_bad_lines_names_every_one_and_imports_nothing(
    old_elder: Member, helper: Member, station: User, tree: dict[str, Region]
) -> None:
    # given a file with one good line and five bad ones
    text = "\n".join(
        [
            HEADER,
            line(helper, old_elder, when=day(30)),
            line(helper, old_elder, when="2026-13-01", card="P-002"),
            line(helper, old_elder, when=day(20), start="11:00", end="10:00", card="P-003"),
            line(helper, old_elder, when=day(19), category="bathing", card="P-004"),
            line(helper, old_elder, when=day(18), card="P-005", volunteer="13000000000"),
            "P-006,only,three",
        ]
    )
    before = AuditEvent.objects.count()
    # when it is imported
    with pytest.raises(ApplicationError) as caught:
        care.paper_import(actor=station, text=text)
    # then every bad line is reported with its number, and nothing was written
    problems = caught.value.fields["file"]
    assert [p.split(":")[0] for p in problems] == ["line 3", "line 4", "line 5", "line 6", "line 7"]
    assert "2026-13-01" in problems[0]
    assert "end is before the start" in problems[1]
    assert "bathing" in problems[2]
    assert "no member of your communities" in problems[3]
    assert "expected 11 columns, found 3" in problems[4]
    assert caught.value.code == "care_import_failed"
    assert ServiceOrder.objects.count() == 0
    assert AuditEvent.objects.count() == before
    assert balance(old_elder) == (600, 0)


def test_the_same_file_twice_is_refused_as_duplicates(
    old_elder: Member, helper: Member, station: User
) -> None:
    text = "\n".join([HEADER, line(helper, old_elder, when=day(30))])
    care.paper_import(actor=station, text=text)
    with pytest.raises(ApplicationError) as caught:
        care.paper_import(actor=station, text=text)
    assert "already entered as S" in caught.value.fields["file"][0]
    assert ServiceOrder.objects.count() == 1


def test_a_wrong_header_is_refused(station: User) -> None:
    with pytest.raises(ApplicationError) as caught:
        care.paper_import(actor=station, text="volunteer,elder\n1,2\n")
    assert caught.value.fields == {"file": ["line 1: wrong header"]}


def test_overlapping_cards_are_flagged_not_refused(
    old_elder: Member, helper: Member, station: User, reviewer: User
) -> None:
    # given two cards of the same volunteer whose times overlap
    other = member(
        station, old_elder.home_region, "赵老伯", birth=dt.date(1940, 1, 1), sex="M", is_elder=True
    )
    from timebank.care.tests.conftest import deposit

    deposit(other, 300)
    text = "\n".join(
        [
            HEADER,
            line(helper, old_elder, when=day(10), start="09:00", end="10:10"),
            line(helper, other, when=day(10), start="09:30", end="10:30", card="P-009", travel_minutes="0"),
        ]
    )
    report = care.paper_import(actor=station, text=text)
    assert report.flagged == 1
    first, second = sorted(report.created, key=lambda o: o.pk)
    assert (first.overlap_flag, second.overlap_flag) == (False, True)
    # and a batch approval passes over the flagged one, which is approved on its own once looked at
    result = care.orders_approve(actor=reviewer, orders=[first, second])
    assert [o.pk for o in result.approved] == [first.pk]
    assert [exc.code for _o, exc in result.failed] == ["care_flagged"]
    assert care.order_approve(actor=reviewer, order=second).status == "credited"


def test_staff_of_another_district_cannot_import_our_members(
    old_elder: Member, helper: Member, hongkou_staff: User
) -> None:
    text = "\n".join([HEADER, line(helper, old_elder, when=day(30))])
    with pytest.raises(ApplicationError) as caught:
        care.paper_import(actor=hongkou_staff, text=text)
    assert "no member of your communities" in caught.value.fields["file"][0]
    assert ServiceOrder.objects.count() == 0


def test_the_command_imports_and_a_second_person_approves(
    old_elder: Member, helper: Member, station: User, reviewer: User, tmp_path: Path
) -> None:
    path = tmp_path / "cards.csv"
    path.write_text(
        "\ufeff" + "\n".join([HEADER, line(helper, old_elder, when=day(30))]) + "\n", encoding="utf-8"
    )
    out = StringIO()
    call_command(
        "care",
        "import-paper",
        str(path),
        "--by",
        station.username,
        "--approve-by",
        reviewer.username,
        stdout=out,
    )
    assert "imported 1 paper records (0 flagged as overlapping)" in out.getvalue()
    assert "approved and credited 1" in out.getvalue()
    assert balance(helper) == (60, 0)


def test_the_command_reports_bad_lines_and_fails(
    old_elder: Member, helper: Member, station: User, tmp_path: Path
) -> None:
    path = tmp_path / "cards.csv"
    path.write_text("\n".join([HEADER, line(helper, old_elder, when=day(30), funding="cash")]) + "\n")
    with pytest.raises(CommandError) as caught:
        call_command("care", "import-paper", str(path), "--by", station.username, stdout=StringIO())
    assert "line 2: funding: one of own, family, pool, public" in str(caught.value)
    assert ServiceOrder.objects.count() == 0


def test_the_budget_and_tick_commands(operator: User, tree: dict[str, Region], old_elder: Member) -> None:
    out = StringIO()
    call_command("care", "budget", "310101", "2027", "6000", "--by", operator.username, stdout=out)
    assert "budget 310101 2027: 6000 minutes (0 committed)" in out.getvalue()
    out = StringIO()
    call_command("care", "tick", stdout=out)
    assert out.getvalue().strip() == "expired 0, escalated 0"
    with pytest.raises(CommandError, match=r"permission|regions you may act on"):
        call_command("care", "budget", "310109", "2027", "6000", "--by", "ruijin-station", stdout=StringIO())
