"""A member's time account on the web: the statement page, the signed download and the printable receipt."""

from __future__ import annotations

import json
import re

import pytest

from timebank.audit.models import AuditEvent
from timebank.ledger import proofs
from timebank.ledger import services as ledger
from timebank.ledger.models import AccountKind
from timebank.ledger.sealing import ledger_seal
from timebank.ledger.signing import platform_key


@pytest.fixture
def credited(elder, tree):
    """The elder's account with 35 entries, the first 20 sealed."""
    fund = ledger.system_account(kind=AccountKind.PUBLIC_FUND, region=tree["310101"])
    for i in range(35):
        ledger.transfer(
            idempotency_key=f"w-{i}",
            source=fund.pk,
            destination=elder.account_id,
            minutes=30,
            kind="service_credit",
            memo=f"visit {i}",
        )
        if i == 19:
            ledger_seal(settle_seconds=0)
    return elder


def test_a_member_reads_their_own_hours_newest_first(client, member_user, credited):
    # given
    client.force_login(member_user)

    # when
    html = client.get("/me/statement/").content.decode()

    # then: 35 × 30 min = 17 h 30 min, the newest entry first, older ones a page away
    assert "17 小时 30 分" in html
    assert html.index("visit 34") < html.index("visit 33")
    assert "visit 4<" not in html
    older = re.search(r'href="\?before=(\d+)"', html)
    assert older is not None
    assert "visit 4<" in client.get(f"/me/statement/?before={older.group(1)}").content.decode()


def test_the_downloaded_statement_verifies_offline(client, member_user, credited):
    # given
    client.force_login(member_user)

    # when
    response = client.get("/me/statement.json")

    # then
    assert response["Content-Disposition"].startswith("attachment;")
    document = json.loads(response.content)
    assert document["account"]["balance"] == 35 * 30
    assert proofs.verify_document(document, platform_key().public_hex) == []
    assert document["anchor"]["block"]["seq"] == 1
    document["account"]["balance"] += 60
    assert proofs.verify_document(document, platform_key().public_hex) != []


def test_the_printable_statement_carries_a_signed_qr_receipt(client, member_user, credited):
    client.force_login(member_user)
    html = client.get("/me/statement/print/").content.decode()
    assert "<svg" in html
    assert platform_key().key_id in html


def test_staff_issue_a_statement_for_a_member_of_their_community_and_it_is_logged(staff_client, credited):
    # when
    response = staff_client.get(f"/console/people/{credited.pk}/statement.json")

    # then
    assert response.status_code == 200
    event = AuditEvent.objects.get(event_type="ledger.statement_issued")
    assert event.on_behalf_of_id == credited.pk


def test_staff_of_another_community_cannot_see_the_account(client, jinyang_staff, credited):
    client.force_login(jinyang_staff)
    for url in ("statement/", "statement.json", "statement/print/"):
        assert client.get(f"/console/people/{credited.pk}/{url}").status_code == 404
    assert not AuditEvent.objects.filter(event_type="ledger.statement_issued").exists()


def test_a_sign_in_without_a_member_has_no_statement(staff_client):
    assert staff_client.get("/me/statement/").status_code == 404


@pytest.mark.parametrize("before", ["abc", "-1", "0", "99999999999999999999"])
def test_a_bad_page_cursor_shows_the_newest_page(client, member_user, credited, before):
    client.force_login(member_user)
    response = client.get(f"/me/statement/?before={before}")
    assert response.status_code == 200
    assert "visit 34" in response.content.decode()
