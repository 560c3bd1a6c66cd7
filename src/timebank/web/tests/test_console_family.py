"""Priority groups and family bonds, as staff handle them in the console."""

from __future__ import annotations

import pytest

from timebank.audit.models import AuditEvent
from timebank.people import services as people
from timebank.people.models import BondStatus, FamilyBond, PriorityStatus
from timebank.web.tests.pages import alerts, field_errors, form_with, html_of, zh


def _written() -> tuple[int, int, int]:
    return AuditEvent.objects.count(), FamilyBond.objects.count(), PriorityStatus.objects.count()


def test_verifying_a_priority_group_records_who_and_shows_it(staff_client, yandang_staff, elder):
    # given staff on an elder's page
    # when they verify that the elder lives alone
    response = staff_client.post(
        f"/console/people/{elder.pk}/priority/", {"group": "living_alone", "note": "入户核查"}
    )
    # then the status is verified by them, and the elder's page says so
    assert response.status_code == 302
    assert response["Location"] == f"/console/people/{elder.pk}/"
    status = PriorityStatus.objects.get(member=elder, group="living_alone")
    assert status.verified_by == yandang_staff
    assert status.note == "入户核查"
    assert AuditEvent.objects.filter(event_type="member.priority_verified", subject_id=str(elder.pk)).exists()
    assert "入户核查" in html_of(staff_client.get(f"/console/people/{elder.pk}/"))


def test_verifying_a_group_twice_is_explained(staff_client, yandang_staff, elder):
    # given the group already verified
    people.priority_group_verify(actor=yandang_staff, member=elder, group="living_alone")
    before = _written()
    # when staff verify it again
    response = staff_client.post(f"/console/people/{elder.pk}/priority/", {"group": "living_alone"})
    # then the page says it is already verified, and nothing more is written
    assert response.status_code == 422
    assert alerts(response) == [zh("This priority group is already verified.")]
    assert _written() == before


def test_an_unknown_priority_group_is_marked_on_the_field(staff_client, elder):
    # given staff / when they post a group that does not exist
    before = _written()
    response = staff_client.post(f"/console/people/{elder.pk}/priority/", {"group": "millionaire"})
    # then the group field is marked and the choice kept out
    assert response.status_code == 422
    assert "group" in field_errors(response)
    assert _written() == before


def test_only_an_elder_can_be_in_a_priority_group(staff_client, volunteer):
    # given a volunteer who is not an elder
    before = _written()
    # when staff try to verify a priority group for them
    response = staff_client.post(f"/console/people/{volunteer.pk}/priority/", {"group": "low_income"})
    # then the page says why not
    assert response.status_code == 422
    assert zh("Only an elder can be in a priority group.") in html_of(response)
    assert _written() == before


def test_proposing_a_bond_by_the_relatives_name_and_mobile(staff_client, yandang_staff, elder, relative):
    # given the elder's son registered as 朱晓东 with 13901000016
    # when staff bind him to the elder as the elder's child
    response = staff_client.post(
        f"/console/people/{elder.pk}/bonds/",
        {"relation": "child", "relative_name": "朱晓东", "relative_mobile": "139-0100-0016"},
    )
    # then a bond waits for verification, and the elder's page lists him
    assert response.status_code == 302
    assert response["Location"] == f"/console/people/{elder.pk}/"
    bond = FamilyBond.objects.get()
    assert (bond.member, bond.relative, bond.relation, bond.status) == (elder, relative, "child", "proposed")
    assert bond.proposed_by == yandang_staff
    assert AuditEvent.objects.filter(event_type="bond.proposed", subject_id=str(bond.pk)).exists()
    assert "朱晓东" in html_of(staff_client.get(f"/console/people/{elder.pk}/"))


NOBODY = "No active member has this name and mobile number."


@pytest.mark.parametrize(
    ("name", "mobile", "reason"),
    [
        ("朱晓西", "13901000016", NOBODY),
        ("朱晓东", "13901000017", NOBODY),
        ("朱晓东", "123", None),
        ("朱晓东", "abc", None),
    ],
)
def test_a_relative_who_does_not_match_is_marked_and_nothing_is_written(
    staff_client, elder, relative, name, mobile, reason
):
    # given the elder's son registered as 朱晓东 with 13901000016
    before = _written()
    # when staff give a wrong name or number
    response = staff_client.post(
        f"/console/people/{elder.pk}/bonds/",
        {"relation": "child", "relative_name": name, "relative_mobile": mobile},
    )
    # then the mobile field says so, what was typed is kept, and nothing is written
    assert response.status_code == 422
    assert len(field_errors(response)["relative_mobile"]) == 1
    if reason:
        assert field_errors(response)["relative_mobile"] == [zh(reason)]
    form = form_with(response, "relative_name")
    assert (form["relative_name"], form["relative_mobile"]) == (name, mobile)
    assert _written() == before


def test_a_member_cannot_be_bound_to_themselves(staff_client, elder):
    # given the elder / when staff name the elder as their own relative
    before = _written()
    response = staff_client.post(
        f"/console/people/{elder.pk}/bonds/",
        {"relation": "sibling", "relative_name": "朱德林", "relative_mobile": "13901000008"},
    )
    # then it is refused with a message and nothing is written
    assert response.status_code == 422
    assert alerts(response) == [zh("A member cannot be bound to themselves.")]
    assert _written() == before


@pytest.fixture
def proposed_bond(yandang_clerk, elder, relative) -> FamilyBond:
    """Proposed by a colleague, so that yandang_staff (the signed-in staff client) may decide it."""
    return people.family_bond_propose(actor=yandang_clerk, member=elder, relative=relative, relation="child")


def test_the_bonds_page_lists_bonds_waiting_for_verification(staff_client, proposed_bond):
    # given a proposed bond between 朱德林 and 朱晓东
    # when staff open the bonds page
    response = staff_client.get("/console/bonds/")
    # then the bond is listed with a decision form
    assert response.status_code == 200
    page = html_of(response)
    assert "朱德林" in page and "朱晓东" in page
    assert form_with(response, "bond")["bond"] == str(proposed_bond.pk)


def test_verifying_a_bond(staff_client, yandang_staff, proposed_bond):
    # given a proposed bond
    # when staff verify it
    response = staff_client.post("/console/bonds/", {"bond": proposed_bond.pk, "decision": "approve"})
    # then it is verified and leaves the waiting list
    assert response.status_code == 302
    assert response["Location"] == "/console/bonds/"
    proposed_bond.refresh_from_db()
    assert proposed_bond.status == BondStatus.VERIFIED
    assert proposed_bond.decided_by == yandang_staff
    assert AuditEvent.objects.filter(event_type="bond.verified", subject_id=str(proposed_bond.pk)).exists()
    assert "朱晓东" not in html_of(staff_client.get("/console/bonds/"))


def test_rejecting_a_bond_needs_a_reason(staff_client, proposed_bond):
    # given a proposed bond
    before = _written()
    # when staff reject it without saying why
    response = staff_client.post(
        "/console/bonds/", {"bond": proposed_bond.pk, "decision": "reject", "reason": " "}
    )
    # then the page asks for a reason (422), and the bond still waits
    assert response.status_code == 422
    assert alerts(response) == [zh("Say why the bond is rejected.")]
    proposed_bond.refresh_from_db()
    assert proposed_bond.status == BondStatus.PROPOSED
    assert _written() == before
    assert "朱晓东" in html_of(response)


def test_rejecting_a_bond_with_a_reason(staff_client, proposed_bond):
    # given a proposed bond / when staff reject it saying why
    response = staff_client.post(
        "/console/bonds/", {"bond": proposed_bond.pk, "decision": "reject", "reason": "并非亲属"}
    )
    # then it is rejected with the reason
    assert response.status_code == 302
    proposed_bond.refresh_from_db()
    assert (proposed_bond.status, proposed_bond.reason) == (BondStatus.REJECTED, "并非亲属")


def test_deciding_twice_is_explained(staff_client, yandang_staff, proposed_bond):
    # given a bond already verified
    people.family_bond_decide(actor=yandang_staff, bond=proposed_bond, approve=True)
    before = _written()
    # when a second decision arrives (another tab)
    response = staff_client.post(
        "/console/bonds/", {"bond": proposed_bond.pk, "decision": "reject", "reason": "x"}
    )
    # then it is refused with a message and the bond stays verified
    assert response.status_code == 422
    assert alerts(response) == [zh("This bond was already decided.")]
    proposed_bond.refresh_from_db()
    assert proposed_bond.status == BondStatus.VERIFIED
    assert _written() == before


@pytest.mark.parametrize("decision", ["", "maybe"])
def test_a_missing_decision_is_explained(staff_client, proposed_bond, decision):
    # given a proposed bond / when the form arrives without a valid decision
    response = staff_client.post("/console/bonds/", {"bond": proposed_bond.pk, "decision": decision})
    # then the page says so and the bond still waits
    assert response.status_code == 422
    assert alerts(response) == [zh("Choose verify or reject.")]
    proposed_bond.refresh_from_db()
    assert proposed_bond.status == BondStatus.PROPOSED


def test_another_communitys_bond_is_neither_listed_nor_decidable(
    staff_client, jinyang_staff, jinyang_elder, tree
):
    # given a bond proposed in 晋阳
    neighbour = people.member_register(
        actor=jinyang_staff, name="卫长根", home_region=tree["310109018021"], mobile="13902000004"
    )
    bond = people.family_bond_propose(
        actor=jinyang_staff, member=jinyang_elder, relative=neighbour, relation="friend"
    )
    before = _written()
    # when 雁荡's staff look at the bonds page and post a decision for it
    listed = staff_client.get("/console/bonds/")
    decided = staff_client.post("/console/bonds/", {"bond": bond.pk, "decision": "approve"})
    # then it is not listed, the decision is refused, and the bond still waits
    assert "卫长根" not in html_of(listed)
    assert 400 <= decided.status_code < 500
    assert "卫长根" not in html_of(decided)
    bond.refresh_from_db()
    assert bond.status == BondStatus.PROPOSED
    assert _written() == before
