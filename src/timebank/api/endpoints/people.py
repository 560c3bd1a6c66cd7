"""People and family bonds: staff register and keep the members of their regions, give them sign-ins, verify
priority groups and decide family bonds; members read and correct their own record and propose bonds. The ID
number and the health notes leave only through the reveal endpoints, and every reveal is audit-logged. Also
staff sign-ins and their grants, and the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from ninja import Query, Schema, Status
from pydantic import Field

from timebank.api.common import (
    MAX_ID,
    Id,
    Moment,
    Strict,
    caller,
    caller_member,
    no_store,
    page,
    region_field,
    region_or_none,
    staff_with,
)
from timebank.api.main import api, idempotent, scope_check
from timebank.audit.models import AuditEvent
from timebank.audit.selectors import audit_events_visible
from timebank.people import selectors as people
from timebank.people import services
from timebank.people.access import Perm
from timebank.people.models import FamilyBond, Member, PriorityStatus, StaffGrant, User
from timebank.regions.selectors import region_find

# A path id: a bad one ("abc", 0, too large) is a 422 naming it, never a server error.

# --- output -------------------------------------------------------------------------------------------------


class PriorityOut(Schema):
    group: str
    verified: bool
    verified_at: dt.datetime | None
    note: str


class PersonRowOut(Schema):
    id: int
    name: str
    home_region: str
    is_elder: bool
    is_volunteer: bool
    is_group: bool
    is_active: bool


class PeopleOut(Schema):
    people: list[PersonRowOut]
    next_cursor: str | None


class PersonOut(Schema):
    """A member as staff see them: the ID number masked, the health notes only said to exist."""

    id: int
    name: str
    mobile: str
    id_number_masked: str
    birth_date: dt.date | None
    sex: str
    home_region: str
    address: str
    emergency_contact_name: str
    emergency_contact_mobile: str
    languages: list[str]
    skills: list[str]
    has_health_notes: bool
    is_elder: bool
    is_volunteer: bool
    is_group: bool
    is_active: bool
    account_id: int | None
    priority_groups: list[PriorityOut]


class PriorityGroupsOut(Schema):
    priority_groups: list[PriorityOut]


class IdNumberOut(Schema):
    id_number: str


class HealthNotesOut(Schema):
    health_notes: str


class BondOut(Schema):
    """``relative`` is ``member``'s ``relation`` (e.g. their child)."""

    id: int
    member_id: int
    member_name: str
    relative_id: int
    relative_name: str
    relation: str
    status: str
    proposed_at: dt.datetime
    decided_at: dt.datetime | None
    reason: str


class FamilyOut(BondOut):
    """A bond seen from one member: the other person and what they are to the member."""

    other_id: int
    other_name: str
    other_relation: str
    other_relation_label: str


class FamilyListOut(Schema):
    bonds: list[FamilyOut]


class BondsOut(Schema):
    mine: list[FamilyOut]
    pending: list[BondOut]
    next_cursor: str | None


def _priority_out(status: PriorityStatus) -> dict[str, Any]:
    return {
        "group": status.group,
        "verified": status.is_verified,
        "verified_at": status.verified_at,
        "note": status.note,
    }


def _row_out(member: Member) -> dict[str, Any]:
    return {
        "id": member.pk,
        "name": member.name,
        "home_region": member.home_region.code,
        "is_elder": member.is_elder,
        "is_volunteer": member.is_volunteer,
        "is_group": member.is_group,
        "is_active": member.is_active,
    }


def _person_out(member: Member) -> dict[str, Any]:
    return {
        **_row_out(member),
        "mobile": member.mobile,
        "id_number_masked": member.id_number_masked,
        "birth_date": member.birth_date,
        "sex": member.sex,
        "address": member.address,
        "emergency_contact_name": member.emergency_contact_name,
        "emergency_contact_mobile": member.emergency_contact_mobile,
        "languages": member.languages,
        "skills": member.skills,
        "has_health_notes": member.has_health_notes,
        "account_id": member.account_id,
        "priority_groups": [_priority_out(s) for s in people.member_priority_statuses(member)],
    }


def _bond_out(bond: FamilyBond) -> dict[str, Any]:
    return {
        "id": bond.pk,
        "member_id": bond.member_id,
        "member_name": bond.member.name,
        "relative_id": bond.relative_id,
        "relative_name": bond.relative.name,
        "relation": bond.relation,
        "status": bond.status,
        "proposed_at": bond.proposed_at,
        "decided_at": bond.decided_at,
        "reason": bond.reason,
    }


def _family_out(member: Member, view: people.BondView) -> dict[str, Any]:
    other, relation = view.bond.seen_from(member)
    return {
        **_bond_out(view.bond),
        "other_id": other.pk,
        "other_name": other.name,
        "other_relation": relation,
        "other_relation_label": view.relation_label,
    }


def staff_member(request: HttpRequest, member_id: int) -> Member:
    """A member of the staff member's regions (another region's member is not found)."""
    user = caller(request)
    people.require_staff(user)
    return people.member_get(user, member_id)


# --- people -------------------------------------------------------------------------------------------------


@api.get("/people", response=PeopleOut, tags=["people"])
def people_list(
    request: HttpRequest,
    region: Annotated[str, Query(max_length=12, description="a region code")] = "",
    role: Literal["", "elder", "volunteer"] = "",
    search: Annotated[str, Query(max_length=50)] = "",
    cursor: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """Members of the staff member's regions, newest first: optionally inside the region ``region`` (a code;
    its whole subtree), only elders or volunteers, or matching ``search`` (a name, or the start of a mobile
    number). Staff only."""
    user = caller(request)
    people.require_staff(user)
    within = region_or_none(region)
    qs = people.members_visible(user, region=within, search=search, role=role)
    rows, next_cursor = page(qs, cursor, limit, _row_out)
    return {"people": rows, "next_cursor": next_cursor}


@api.get("/people/{member_id}", response=PersonOut, tags=["people"])
def person(request: HttpRequest, member_id: Id) -> dict[str, Any]:
    """A member: for staff of their regions, or the member themselves. Another region's member is a 404."""
    return _person_out(people.member_get(caller(request), member_id))


class PersonChanges(Strict):
    """The fields of a member. On a change only the fields sent change: ``""`` clears a text (the ID number
    and health notes too) and ``null`` the birth date."""

    name: str = ""
    home_region: str = Field("", description="the code of a community (residents' committee)")
    mobile: str = ""
    id_number: str = Field("", description="18 characters; it decides the birth date and sex")
    birth_date: dt.date | None = None
    sex: Literal["", "M", "F"] = ""
    address: str = ""
    emergency_contact_name: str = ""
    emergency_contact_mobile: str = ""
    languages: list[str] = Field(default_factory=list, max_length=100)
    skills: list[str] = Field(default_factory=list, max_length=100)
    health_notes: str = ""
    is_volunteer: bool = False
    is_elder: bool = False
    is_group: bool = False


class PersonIn(PersonChanges):
    name: str
    home_region: str = Field(description="the code of a community (residents' committee)")


def _member_values(payload: PersonChanges) -> dict[str, Any]:
    """The fields sent, the home community as a region (``None``, which the service refuses, if unknown)."""
    values = payload.model_dump(exclude_unset=True)
    if "home_region" in values:
        values["home_region"] = region_find(values["home_region"])
    return values


@api.post("/people", response={201: PersonOut}, tags=["people"])
@idempotent(required=False)
def person_register(request: HttpRequest, payload: PersonIn) -> Status[Any]:
    """Staff register a member of one of their communities (who needs no sign-in of their own). Every field
    in error is named at once; nothing is written then."""
    scope_check(request, "write")
    user = caller(request)
    people.require_staff(user)
    member = services.member_register(actor=user, **_member_values(payload))
    return Status(201, _person_out(member))


@api.patch("/people/{member_id}", response=PersonOut, tags=["people"])
@idempotent(required=False)
def person_update(request: HttpRequest, member_id: Id, payload: PersonChanges) -> dict[str, Any]:
    """Change a member: staff of their regions change any field; a member changes their own contact details,
    languages and skills. A move to another city goes through the exchange's move instead."""
    scope_check(request, "write")
    user = caller(request)
    member = people.member_get(user, member_id)
    changed = services.member_update(actor=user, member=member, changes=_member_values(payload))
    return _person_out(changed)


@api.get("/people/{member_id}/id-number", response=IdNumberOut, tags=["people"])
def person_id_number(request: HttpRequest, response: HttpResponse, member_id: Id) -> dict[str, Any]:
    """The member's full ID number (``""`` if none is on record), for staff allowed to unmask it or the member
    themselves. Every read is audit-logged."""
    user = caller(request)
    member = people.member_get(user, member_id)
    no_store(response)
    return {"id_number": services.member_id_number_reveal(actor=user, member=member)}


@api.get("/people/{member_id}/health-notes", response=HealthNotesOut, tags=["people"])
def person_health_notes(request: HttpRequest, response: HttpResponse, member_id: Id) -> dict[str, Any]:
    """The member's health notes, for staff allowed to unmask them or the member themselves. Every read is
    audit-logged."""
    user = caller(request)
    member = people.member_get(user, member_id)
    no_store(response)
    return {"health_notes": services.member_health_notes_reveal(actor=user, member=member)}


class PriorityIn(Strict):
    group: str = Field(max_length=40, description="living_alone, disabled, low_income or advanced_age")
    note: str = Field("", max_length=200)


class PriorityRevokeIn(Strict):
    reason: str = Field(max_length=200)


@api.post("/people/{member_id}/priority-groups", response={201: PriorityOut}, tags=["people"])
@idempotent(required=False)
def priority_verify(request: HttpRequest, member_id: Id, payload: PriorityIn) -> Status[Any]:
    """Station staff confirm an elder belongs to a priority group (which opens publicly funded service)."""
    scope_check(request, "write")
    member = staff_member(request, member_id)
    status = services.priority_group_verify(
        actor=caller(request), member=member, group=payload.group, note=payload.note
    )
    return Status(201, _priority_out(status))


@api.post("/people/{member_id}/priority-groups/{group}/revoke", response=PriorityGroupsOut, tags=["people"])
@idempotent(required=False)
def priority_revoke(
    request: HttpRequest, member_id: Id, group: str, payload: PriorityRevokeIn
) -> dict[str, Any]:
    """Take an elder out of a priority group, saying why; answers the groups they are still in."""
    scope_check(request, "write")
    member = staff_member(request, member_id)
    services.priority_group_revoke(actor=caller(request), member=member, group=group, reason=payload.reason)
    return {"priority_groups": [_priority_out(s) for s in people.member_priority_statuses(member)]}


# --- sign-ins -----------------------------------------------------------------------------------------------
# No Idempotency-Key on these: the idempotency store keeps a plain hash of the request body, and a hash of a
# six-digit PIN (or of a password beside fields a reader of the store knows) gives it away.


class MemberSignInOut(Schema):
    """A member's own sign-in: they sign in with ``username``, or with ``mobile`` when it is set."""

    member_id: int
    user_id: int
    username: str
    mobile: str | None


class SignInCreateIn(Strict):
    username: str = Field(max_length=150, description="letters, digits and @ . + - _; at least one letter")
    password: str = Field(max_length=256, description="checked against the password rules")


class SignInPinIn(Strict):
    pin: str = Field(max_length=20, description="6 digits, neither trivial (123456) nor the birth date")


def _sign_in_out(user: User) -> dict[str, Any]:
    return {
        "member_id": user.member_id,
        "user_id": user.pk,
        "username": user.username,
        "mobile": user.mobile,
    }


@api.post("/people/{member_id}/sign-in", response={201: MemberSignInOut}, tags=["people"])
def person_sign_in_create(request: HttpRequest, member_id: Id, payload: SignInCreateIn) -> Status[Any]:
    """Staff of the member's community give them a sign-in of their own, with a username and a password; the
    member's mobile number signs in too unless another sign-in already uses it. A member has one sign-in: a
    retry after success is a 409 ``sign_in_exists`` (no Idempotency-Key is kept for a body with a
    password)."""
    scope_check(request, "write")
    member = staff_member(request, member_id)
    user = services.member_sign_in_create(
        actor=caller(request), member=member, username=payload.username, password=payload.password
    )
    return Status(201, _sign_in_out(user))


@api.post("/people/{member_id}/sign-in-pin", response=MemberSignInOut, tags=["people"])
def person_sign_in_pin(request: HttpRequest, member_id: Id, payload: SignInPinIn) -> dict[str, Any]:
    """Staff of the elder's community set a six-digit PIN the elder signs in with, with their mobile number
    or the username answered, instead of a password; an elder without a sign-in gets one. Wrong PINs lock
    the sign-in as wrong passwords do. Nobody sets their own. No Idempotency-Key is kept for a body with a
    PIN; a retry sets the same PIN again."""
    scope_check(request, "write")
    member = staff_member(request, member_id)
    user = services.member_sign_in_pin_set(actor=caller(request), member=member, pin=payload.pin)
    return _sign_in_out(user)


# --- family bonds -------------------------------------------------------------------------------------------


@api.get("/people/{member_id}/bonds", response=FamilyListOut, tags=["bonds"])
def person_bonds(request: HttpRequest, member_id: Id) -> dict[str, Any]:
    """The member's family as they would describe it (rejected bonds left out), newest first."""
    member = people.member_get(caller(request), member_id)
    return {"bonds": [_family_out(member, v) for v in people.member_bonds(member)]}


@api.get("/bonds", response=BondsOut, tags=["bonds"])
def bonds(request: HttpRequest, cursor: str | None = None, limit: int = 50) -> dict[str, Any]:
    """``mine``: the caller's own family (a member); ``pending``: bonds waiting for a decision in the staff
    member's regions, newest first, a page at a time (``cursor`` and ``next_cursor`` page these)."""
    user = caller(request)
    member = user.member
    mine = [_family_out(member, v) for v in people.member_bonds(member)] if member is not None else []
    pending, next_cursor = page(people.bonds_pending(user), cursor, limit, _bond_out)
    return {"mine": mine, "pending": pending, "next_cursor": next_cursor}


class BondIn(Strict):
    """``relative`` is ``member``'s ``relation``. The relative is named by their exact name and mobile number
    together, so that nobody can browse other communities' members this way."""

    member_id: int | None = Field(
        None, ge=1, le=MAX_ID, description="staff: the member it is for (default: the caller)"
    )
    relative_name: str = Field(max_length=50)
    relative_mobile: str = Field(max_length=20)
    relation: str = Field(max_length=12, description="spouse, parent, child, grandparent, grandchild, …")


@api.post("/bonds", response={201: BondOut}, tags=["bonds"])
@idempotent(required=False)
def bond_propose(request: HttpRequest, payload: BondIn) -> Status[Any]:
    """Propose a family bond: a member for themselves, or staff for a member of their regions. Staff of the
    other side's community verify it."""
    scope_check(request, "write")
    user = caller(request)
    member = (
        people.member_get(user, payload.member_id)
        if payload.member_id is not None
        else caller_member(request)
    )
    relative = people.member_find_for_bond(name=payload.relative_name, mobile=payload.relative_mobile)
    bond = services.family_bond_propose(
        actor=user, member=member, relative=relative, relation=payload.relation
    )
    return Status(201, _bond_out(bond))


class BondDecision(Strict):
    decision: Literal["approve", "reject"]
    reason: str = Field("", max_length=200, description="required to reject")


@api.post("/bonds/{bond_id}/decide", response=BondOut, tags=["bonds"])
@idempotent(required=False)
def bond_decide(request: HttpRequest, bond_id: Id, payload: BondDecision) -> dict[str, Any]:
    """Staff of the side that did not propose the bond verify or reject it (nobody decides their own)."""
    scope_check(request, "write")
    user = caller(request)
    bond = people.bond_get(user, bond_id)
    decided = services.family_bond_decide(
        actor=user, bond=bond, approve=payload.decision == "approve", reason=payload.reason
    )
    return _bond_out(decided)


# --- staff sign-ins and grants ------------------------------------------------------------------------------


class StaffGrantOut(Schema):
    """A role held on a region and everything below it."""

    id: int
    user_id: int
    username: str
    name: str
    role: str
    region: str
    granted_by: str | None
    granted_at: dt.datetime
    revoked_by: str | None
    revoked_at: dt.datetime | None


class StaffGrantsOut(Schema):
    grants: list[StaffGrantOut]
    next_cursor: str | None


ROLE_DESCRIPTION = "station_staff, community_staff, operator, auditor, merchant_staff or platform_admin"


class StaffIn(Strict):
    """A new staff sign-in and the role it starts with."""

    username: str = Field(max_length=150, description="letters, digits and @ . + - _; at least one letter")
    password: str = Field(
        max_length=256, description="the initial password, checked against the password rules"
    )
    name: str = Field(min_length=1, max_length=150)
    mobile: str = Field("", max_length=20, description="optional; it signs in too")
    role: str = Field(max_length=20, description=ROLE_DESCRIPTION)
    region: str = Field(max_length=12, description="the code of the region the role holds on, and below it")


class StaffGrantIn(Strict):
    user_id: Id = Field(description="a staff member holding a role the caller could grant")
    role: str = Field(max_length=20, description=ROLE_DESCRIPTION)
    region: str = Field(max_length=12, description="the code of the region the role holds on, and below it")


def _grant_out(grant: StaffGrant) -> dict[str, Any]:
    return {
        "id": grant.pk,
        "user_id": grant.user_id,
        "username": grant.user.username,
        "name": grant.user.get_full_name(),
        "role": grant.role,
        "region": grant.region.code,
        "granted_by": grant.granted_by.username if grant.granted_by is not None else None,
        "granted_at": grant.granted_at,
        "revoked_by": grant.revoked_by.username if grant.revoked_by is not None else None,
        "revoked_at": grant.revoked_at,
    }


@api.get("/staff", response=StaffGrantsOut, tags=["staff"])
def staff_grants(request: HttpRequest, cursor: str | None = None, limit: int = 50) -> dict[str, Any]:
    """The roles held in the caller's granting scope and not revoked, newest first: for operators and platform
    administrators."""
    user = staff_with(request, Perm.STAFF_GRANT)
    qs = people.grants_visible(user).select_related("granted_by")
    rows, next_cursor = page(qs, cursor, limit, _grant_out)
    return {"grants": rows, "next_cursor": next_cursor}


@api.post("/staff", response={201: StaffGrantOut}, tags=["staff"])
def staff_create(request: HttpRequest, payload: StaffIn) -> Status[Any]:
    """Create a staff sign-in and grant it its first role, both or neither. Operators grant the roles below
    their own inside their regions, never a permission they do not hold there; platform administrators grant
    any. No Idempotency-Key is kept for a body with a password: a retry after success finds the username
    taken (422)."""
    scope_check(request, "write")
    user = staff_with(request, Perm.STAFF_GRANT)
    region = region_field(payload.region)
    with transaction.atomic():
        created = services.staff_user_create(
            actor=user,
            username=payload.username,
            password=payload.password,
            name=payload.name,
            mobile=payload.mobile,
        )
        grant = services.staff_grant_create(actor=user, user=created, role=payload.role, region=region)
    return Status(201, _grant_out(grant))


@api.post("/staff/grants", response={201: StaffGrantOut}, tags=["staff"])
@idempotent(required=False)
def staff_grant(request: HttpRequest, payload: StaffGrantIn) -> Status[Any]:
    """Grant another role to a staff member who holds one in the caller's granting scope (anyone else is not
    found), on the same terms as ``POST /staff``. Nobody grants a role to themselves."""
    scope_check(request, "write")
    user = staff_with(request, Perm.STAFF_GRANT)
    grantee = people.staff_user_get(user, payload.user_id)
    grant = services.staff_grant_create(
        actor=user, user=grantee, role=payload.role, region=region_field(payload.region)
    )
    return Status(201, _grant_out(grant))


@api.post("/staff/grants/{grant_id}/revoke", response=StaffGrantOut, tags=["staff"])
@idempotent(required=False)
def staff_grant_revoke(request: HttpRequest, grant_id: Id) -> dict[str, Any]:
    """Revoke a role at once, on the same terms as granting it; a grant outside the caller's granting scope is
    not found."""
    scope_check(request, "write")
    user = staff_with(request, Perm.STAFF_GRANT)
    grant = services.staff_grant_revoke(actor=user, grant=people.grant_get(user, grant_id))
    return _grant_out(grant)


# --- the audit log ------------------------------------------------------------------------------------------


class AuditEventOut(Schema):
    id: int
    at: dt.datetime
    actor: str
    on_behalf_of_id: int | None
    event_type: str
    subject_type: str
    subject_id: str
    region: str | None
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    ip: str | None
    channel: str


class AuditEventsOut(Schema):
    events: list[AuditEventOut]
    next_cursor: str | None


def _event_out(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.pk,
        "at": event.at,
        "actor": event.actor_label,
        "on_behalf_of_id": event.on_behalf_of_id,
        "event_type": event.event_type,
        "subject_type": event.subject_type,
        "subject_id": event.subject_id,
        "region": event.region.code if event.region is not None else None,
        "old": event.old,
        "new": event.new,
        "ip": event.ip,
        "channel": event.channel,
    }


@api.get("/audit/events", response=AuditEventsOut, tags=["audit"])
def audit_events(
    request: HttpRequest,
    event_type: Annotated[str, Query(max_length=64, description="a prefix, e.g. member.")] = "",
    subject_type: Annotated[str, Query(max_length=40, description="e.g. people.member")] = "",
    subject_id: Annotated[str, Query(max_length=40)] = "",
    since: Moment | None = None,
    until: Moment | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """The audit log of the caller's regions, newest first: for auditors and staff who may read it."""
    user = staff_with(request, Perm.AUDIT_VIEW)
    qs = audit_events_visible(
        user,
        event_type=event_type,
        subject_type=subject_type,
        subject_id=subject_id,
        since=since,
        until=until,
    ).select_related("region")
    rows, next_cursor = page(qs, cursor, limit, _event_out)
    return {"events": rows, "next_cursor": next_cursor}
