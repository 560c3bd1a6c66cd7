"""``/api/v1`` time accounts: staff read a member's balance and statement; the signed statement (the member's
own, or issued by staff and then audit-logged) verifies offline with the platform's public key."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from timebank.api.tests.conftest import bearer
from timebank.api.tests.test_people import refused, walk
from timebank.audit.models import AuditEvent
from timebank.care.tests.conftest import deposit, user_of
from timebank.ledger import proofs
from timebank.ledger.sealing import ledger_seal
from timebank.ledger.signing import platform_key
from timebank.people.models import Member, User


def verifies(document: dict[str, Any]) -> list[str]:
    return proofs.verify_document(document, platform_key().public_hex)


@pytest.fixture
def saver(old_elder: Member) -> Member:
    """王阿婆 with 600 minutes, then six more deposits of 10 to 60 minutes: 810 minutes over 7 entries."""
    for minutes in (10, 20, 30, 40, 50, 60):
        deposit(old_elder, minutes)
    return Member.objects.get(pk=old_elder.pk)


def test_staff_read_a_members_balance(client: Client, station: User, saver: Member) -> None:
    body = client.get(f"/api/v1/people/{saver.pk}/balance", **bearer(station, station, ("read",))).json()
    assert body == {
        "member_id": saver.pk,
        "account_id": saver.account_id,
        "balance_minutes": 810,
        "held_minutes": 0,
        "available_minutes": 810,
        "entries": 7,
    }


def test_staff_walk_a_members_statement_page_by_page(client: Client, station: User, saver: Member) -> None:
    # when
    entries = walk(
        client, f"/api/v1/people/{saver.pk}/statement?limit=2", bearer(station, station), "entries"
    )

    # then every entry once, newest first, each with the balance after it
    assert [e["seq"] for e in entries] == [7, 6, 5, 4, 3, 2, 1]
    assert [e["amount_minutes"] for e in entries] == [60, 50, 40, 30, 20, 10, 600]
    assert entries[0]["balance_after_minutes"] == 810 and entries[-1]["balance_after_minutes"] == 600


@pytest.mark.parametrize("what", ["balance", "statement", "statement/signed"])
def test_another_districts_staff_and_members_cannot_read_an_account(
    client: Client, hongkou_staff: User, saver: Member, helper: Member, what: str
) -> None:
    path = f"/api/v1/people/{saver.pk}/{what}"
    refused(client.get(path, **bearer(hongkou_staff, hongkou_staff)), 404, "member_not_found")
    for someone in (user_of(helper), user_of(saver)):  # members use /me, even for themselves
        refused(client.get(path, **bearer(someone, someone)), 403)
    assert not AuditEvent.objects.filter(event_type="ledger.statement_issued").exists()


@pytest.mark.parametrize("query", ["limit=0", "limit=1000", "cursor=%%%", "cursor=LTE"])
def test_a_bad_statement_page_is_a_422(client: Client, station: User, saver: Member, query: str) -> None:
    refused(client.get(f"/api/v1/people/{saver.pk}/statement?{query}", **bearer(station, station)), 422)


def test_my_signed_statement_verifies_and_is_not_logged(client: Client, saver: Member) -> None:
    # given the first entries are sealed in a block
    ledger_seal(settle_seconds=0)
    deposit(saver, 5)
    me = user_of(saver)

    # when
    response = client.get("/api/v1/me/statement/signed", **bearer(me, me, ("read",)))

    # then
    assert response.status_code == 200
    document = response.json()
    assert verifies(document) == []
    assert document["account"]["balance"] == 815 and len(document["entries"]) == 8
    assert document["anchor"]["block"]["seq"] == 1
    assert not AuditEvent.objects.filter(event_type="ledger.statement_issued").exists()
    document["account"]["balance"] += 60
    assert verifies(document) != []


def test_staff_issue_a_members_signed_statement_and_the_issue_is_logged(
    client: Client, station: User, saver: Member
) -> None:
    # when
    response = client.get(f"/api/v1/people/{saver.pk}/statement/signed", **bearer(station, station))

    # then
    assert response.status_code == 200
    document = response.json()
    assert verifies(document) == [] and document["anchor"] is None
    assert document["account"]["id"] == saver.account_id
    event = AuditEvent.objects.get(event_type="ledger.statement_issued")
    assert (event.actor, event.on_behalf_of_id, event.channel) == (station, saver.pk, "api")
    assert event.new == {"balance": 810}


def test_a_sign_in_without_a_member_has_no_signed_statement(client: Client, station: User) -> None:
    refused(client.get("/api/v1/me/statement/signed", **bearer(station, station)), 404, "api_no_member")
