"""Writes about people: members, their sign-ins, priority groups, family bonds and staff grants."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from timebank.audit.services import audit_record
from timebank.common.errors import (
    AccountLocked,
    AuthenticationFailed,
    Conflict,
    PermissionDenied,
    ValidationFailed,
)
from timebank.common.pins import ascii_digits, trivial_pin
from timebank.ledger import services as ledger
from timebank.ledger.models import Account, AccountKind
from timebank.people.access import (
    ROLE_PERMISSIONS,
    Perm,
    access_anywhere,
    access_check,
    access_forget,
    access_has,
    access_member_check,
    access_paths,
)
from timebank.people.crypto import decrypt_text, encrypt_text, lookup_hash
from timebank.people.models import (
    BondStatus,
    FamilyBond,
    Member,
    PriorityGroup,
    PriorityStatus,
    Relation,
    Role,
    Sex,
    StaffGrant,
    User,
)
from timebank.people.validators import InvalidValue, mask_id_number, normalize_mobile, parse_id_number
from timebank.regions.codes import Level
from timebank.regions.models import Region
from timebank.regions.selectors import policy_in_force

# Fields a member may change about themselves; staff may change all of MEMBER_FIELDS.
SELF_EDITABLE = frozenset(
    {"mobile", "address", "emergency_contact_name", "emergency_contact_mobile", "languages", "skills"}
)
MEMBER_FIELDS = frozenset(
    {
        "name",
        "mobile",
        "id_number",
        "birth_date",
        "sex",
        "home_region",
        "address",
        "emergency_contact_name",
        "emergency_contact_mobile",
        "languages",
        "skills",
        "health_notes",
        "is_volunteer",
        "is_elder",
        "is_group",
    }
)
SENSITIVE = frozenset({"id_number", "health_notes"})
MAX_TAGS = 12
MAX_TAG_LENGTH = 30


def _clean_member(data: Mapping[str, Any], *, member: Member | None) -> dict[str, Any]:
    """Check every given field; raise one ValidationFailed naming each bad field and why."""
    errors: dict[str, list[str]] = {}
    out: dict[str, Any] = {}
    if member is None and "home_region" not in data:
        errors["home_region"] = [_("Choose a community.")]
    unknown = set(data) - MEMBER_FIELDS
    for name in sorted(unknown):
        errors[name] = [_("Unknown field.")]

    if "name" in data:
        name = str(data["name"] or "").strip()
        if not name:
            errors["name"] = [_("A name is required.")]
        elif len(name) > 50:
            errors["name"] = [_("At most 50 characters.")]
        out["name"] = name
    for field in ("mobile", "emergency_contact_mobile"):
        if field in data:
            raw = str(data[field] or "").strip()
            try:
                out[field] = normalize_mobile(raw) if raw else ""
            except InvalidValue as exc:
                errors[field] = [str(exc)]
    for field, limit in (("address", 200), ("emergency_contact_name", 50)):
        if field in data:
            value = str(data[field] or "").strip()
            if len(value) > limit:
                errors[field] = [_("At most %(n)d characters.") % {"n": limit}]
            out[field] = value
    if "home_region" in data:
        region = data["home_region"]
        if not isinstance(region, Region):
            errors["home_region"] = [_("Choose a community.")]
        elif region.level != Level.COMMUNITY:
            errors["home_region"] = [
                _("A home must be a community (residents' committee), not a %(level)s.")
                % {"level": region.get_level_display()}
            ]
        else:
            out["home_region"] = region
    if "sex" in data:
        sex = str(data["sex"] or "")
        if sex and sex not in Sex.values:
            errors["sex"] = [_("Choose male or female.")]
        out["sex"] = sex
    if "birth_date" in data:
        birth = data["birth_date"]
        if birth is not None and not isinstance(birth, dt.date):
            errors["birth_date"] = [_("Enter a date.")]
        elif birth is not None and (birth.year < 1900 or birth > timezone.localdate()):
            errors["birth_date"] = [_("The birth date is not plausible.")]
        out["birth_date"] = birth
    for field in ("languages", "skills"):
        if field in data:
            tags = data[field]
            if isinstance(tags, str):
                tags = [t for t in (s.strip() for s in tags.replace("，", ",").split(",")) if t]
            if not isinstance(tags, Sequence) or any(not isinstance(t, str) for t in tags):
                errors[field] = [_("A list of words.")]
            elif len(tags) > MAX_TAGS or any(len(t) > MAX_TAG_LENGTH for t in tags):
                errors[field] = [
                    _("At most %(n)d entries of at most %(m)d characters.")
                    % {"n": MAX_TAGS, "m": MAX_TAG_LENGTH}
                ]
            else:
                out[field] = list(dict.fromkeys(t.strip() for t in tags if t.strip()))
    for field in ("is_volunteer", "is_elder", "is_group"):
        if field in data:
            out[field] = bool(data[field])
    if "health_notes" in data:
        notes = str(data["health_notes"] or "").strip()
        if len(notes) > 2000:
            errors["health_notes"] = [_("At most %(n)d characters.") % {"n": 2000}]
        out["health_notes"] = notes
    if "id_number" in data:
        raw = str(data["id_number"] or "").strip()
        if not raw:
            out["id_number"] = None
        else:
            try:
                parsed = parse_id_number(raw)
            except InvalidValue as exc:
                errors["id_number"] = [str(exc)]
            else:
                duplicate = Member.objects.filter(id_number_hash=lookup_hash(parsed.number))
                if member is not None:
                    duplicate = duplicate.exclude(pk=member.pk)
                if duplicate.exists():
                    errors["id_number"] = [_("A member with this ID number is already registered.")]
                out["id_number"] = parsed
                given_birth = out.get("birth_date")
                if given_birth and given_birth != parsed.birth_date:
                    errors.setdefault("birth_date", []).append(
                        _("The birth date differs from the ID number's.")
                    )
                if out.get("sex") and out["sex"] != parsed.sex:
                    errors.setdefault("sex", []).append(_("The sex differs from the ID number's."))
                # The ID number decides birth date and sex.
                out.pop("birth_date", None)
                out.pop("sex", None)
    if member is not None and member.id_number_cipher and "id_number" not in out:
        # Birth date and sex come from the ID number on file; an edit may not contradict it.
        if "birth_date" in out and out["birth_date"] != member.birth_date:
            errors.setdefault("birth_date", []).append(_("The birth date differs from the ID number's."))
        if "sex" in out and out["sex"] != member.sex:
            errors.setdefault("sex", []).append(_("The sex differs from the ID number's."))
    if errors:
        raise ValidationFailed(fields=errors)
    return out


def _apply(member: Member, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Set cleaned values on ``member``; return (old, new) for the audit log, sensitive values masked."""
    old: dict[str, Any] = {}
    new: dict[str, Any] = {}
    for field, value in values.items():
        if field == "id_number":
            before = member.id_number_masked
            if value is None:
                member.id_number_cipher = member.id_number_hash = member.id_number_masked = ""
            else:
                member.id_number_cipher = encrypt_text(value.number)
                member.id_number_hash = lookup_hash(value.number)
                member.id_number_masked = mask_id_number(value.number)
                member.birth_date = value.birth_date
                member.sex = value.sex
            if before != member.id_number_masked or value is not None:
                old["id_number"], new["id_number"] = before, member.id_number_masked
        elif field == "health_notes":
            changed = (
                decrypt_text(member.health_notes_cipher) if member.health_notes_cipher else ""
            ) != value
            if changed:
                member.health_notes_cipher = encrypt_text(value) if value else ""
                old["health_notes"], new["health_notes"] = "…", ("…" if value else "")
        elif field == "home_region":
            if member.home_region_id != value.pk:
                old[field] = member.home_region.code if member.home_region_id else None
                new[field] = value.code
                member.home_region = value
        else:
            before = getattr(member, field)
            if before != value:
                old[field] = before.code if isinstance(before, Region) else before
                new[field] = value.code if isinstance(value, Region) else value
                setattr(member, field, value)
    for field in ("birth_date",):
        if isinstance(new.get(field), dt.date):
            new[field] = new[field].isoformat()
        if isinstance(old.get(field), dt.date):
            old[field] = old[field].isoformat()
    return old, new


def member_register(*, actor: User, **data: Any) -> Member:
    """Staff register a member (who may never have a phone). ``home_region`` must be in their scope."""
    data.setdefault("name", "")
    values = _clean_member(data, member=None)
    access_check(actor, Perm.PEOPLE_MANAGE, values["home_region"])
    member = Member()
    _old, new = _apply(member, values)
    try:
        with transaction.atomic():
            member.account = _open_time_account(member.home_region)
            member.save()
            audit_record(
                actor=actor,
                event_type="member.registered",
                subject=member,
                region=member.home_region,
                new=new,
                on_behalf_of=member,
            )
    except IntegrityError as exc:  # a concurrent registration of the same ID number
        raise ValidationFailed.field(
            "id_number", _("A member with this ID number is already registered.")
        ) from exc
    return member


def _open_time_account(home: Region) -> Account:
    """Every member has a time account from the start, limited by the policy in force where they live."""
    policy = policy_in_force(home, timezone.localdate())
    return ledger.account_open(
        kind=AccountKind.MEMBER,
        region=home,
        floor=-policy.credit_line_minutes if policy else 0,
        cap=policy.account_cap_minutes if policy else None,
    )


def member_update(
    *, actor: User, member: Member, changes: Mapping[str, Any], account_moves: bool = False
) -> Member:
    """Change a member's profile. Staff in scope may change everything; a member may change their contact
    details, languages and skills. A new home in another currency area (province) needs the time account to
    move too, which only the exchange's move does (``account_moves``)."""
    is_self = actor.member_id == member.pk
    if is_self and not set(changes) <= SELF_EDITABLE:
        # Staff too: nobody changes their own name, ID, roles or home with staff rights.
        raise PermissionDenied(
            _("Your own record beyond your contact details is changed by another staff member.")
        )
    if not is_self:
        access_member_check(actor, member, Perm.PEOPLE_MANAGE)
    values = _clean_member(changes, member=member)
    if "home_region" in values:
        access_check(actor, Perm.PEOPLE_MANAGE, values["home_region"])
        if not account_moves and ledger.area_of(values["home_region"]) != ledger.area_of(member.home_region):
            raise ValidationFailed.field(
                "home_region",
                _("A move to another city carries the time account along: use “Move to another community”."),
                code="member_move_needs_account",
            )
    with transaction.atomic():
        locked = Member.objects.select_for_update().get(pk=member.pk)
        old, new = _apply(locked, values)
        if not new:
            return locked
        if "mobile" in new:
            _follow_mobile(locked, old_mobile=old["mobile"], new_mobile=new["mobile"])
        locked.save()
        regions = [locked.home_region]
        if "home_region" in old and old["home_region"] != locked.home_region.code:
            regions.append(Region.objects.get(code=old["home_region"]))  # the community they left sees it too
        for region in regions:
            audit_record(
                actor=actor,
                event_type="member.updated",
                subject=locked,
                region=region,
                old=old,
                new=new,
                on_behalf_of=None if is_self else locked,
            )
    return locked


def _follow_mobile(member: Member, *, old_mobile: str, new_mobile: str) -> None:
    """A member who signs in by mobile number keeps doing so after changing it."""
    user = User.objects.filter(member=member).first()
    if user is None or (user.mobile or "") != old_mobile:
        return
    if new_mobile and User.objects.filter(mobile=new_mobile).exclude(pk=user.pk).exists():
        raise ValidationFailed.field("mobile", _("This mobile number already signs in to another account."))
    User.objects.filter(pk=user.pk).update(mobile=new_mobile or None)


def member_id_number_reveal(*, actor: User, member: Member) -> str:
    """The full ID number, for the member themselves or staff allowed to unmask; every read is logged."""
    if actor.member_id != member.pk:
        access_member_check(actor, member, Perm.PEOPLE_UNMASK)
    if not member.id_number_cipher:
        return ""
    number = decrypt_text(member.id_number_cipher)
    audit_record(actor=actor, event_type="member.id_number.viewed", subject=member, region=member.home_region)
    return number


def member_health_notes_reveal(*, actor: User, member: Member) -> str:
    if actor.member_id != member.pk:
        access_member_check(actor, member, Perm.PEOPLE_UNMASK)
    if not member.health_notes_cipher:
        return ""
    notes = decrypt_text(member.health_notes_cipher)
    audit_record(
        actor=actor, event_type="member.health_notes.viewed", subject=member, region=member.home_region
    )
    return notes


def _clean_credentials(
    *, username: str, password: str, mobile: str = "", user: User | None = None
) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    username = (username or "").strip()
    if not username:
        errors["username"] = [_("A username is required.")]
    elif len(username) > 150 or not all(c.isalnum() or c in "@.+-_" for c in username):
        errors["username"] = [_("Letters, digits and @ . + - _ only, at most 150.")]
    elif username.isdigit():
        errors["username"] = [
            _("A username needs at least one letter, so it is never mistaken for a mobile number.")
        ]
    elif User.objects.filter(username__iexact=username).exists():
        errors["username"] = [_("This username is taken.")]
    normalized_mobile = None
    if mobile:
        try:
            normalized_mobile = normalize_mobile(mobile)
        except InvalidValue as exc:
            errors["mobile"] = [str(exc)]
        else:
            if User.objects.filter(mobile=normalized_mobile).exists():
                errors["mobile"] = [_("This mobile number already signs in to another account.")]
    try:
        # an unsaved user stands in for a new sign-in, so that a password like its username is refused too
        validate_password(password, user=user or User(username=username, mobile=normalized_mobile))
    except DjangoValidationError as exc:
        errors["password"] = [str(m) for m in exc.messages]
    if errors:
        raise ValidationFailed(fields=errors)
    return {"username": username, "mobile": normalized_mobile}


def member_sign_in_create(*, actor: User, member: Member, username: str, password: str) -> User:
    """Give a member a sign-in of their own (staff do this at the station)."""
    access_member_check(actor, member, Perm.PEOPLE_MANAGE)
    if User.objects.filter(member=member).exists():
        raise Conflict(_("This member already has a sign-in."), code="sign_in_exists")
    values = _clean_credentials(
        username=username,
        password=password,
        mobile=member.mobile if not User.objects.filter(mobile=member.mobile).exists() else "",
    )
    with transaction.atomic():
        user = User(username=values["username"], mobile=values["mobile"], member=member)
        user.set_password(password)
        user.save()
        audit_record(
            actor=actor,
            event_type="member.sign_in_created",
            subject=member,
            region=member.home_region,
            new={"username": user.username},
            on_behalf_of=member,
        )
    return user


SIGN_IN_PIN_LENGTH = 6


def member_sign_in_pin_set(*, actor: User, member: Member, pin: str) -> User:
    """Staff give an elder a sign-in they can manage: their mobile number (or the username shown) and a
    six-digit PIN instead of a password. Wrong PINs lock the sign-in like wrong passwords do. A member who has
    no sign-in yet gets one."""
    access_member_check(actor, member, Perm.PEOPLE_MANAGE)
    if actor.member_id == member.pk:
        raise PermissionDenied(_("Another staff member sets your own sign-in."))
    pin = ascii_digits(pin)
    if not (pin.isascii() and pin.isdigit() and len(pin) == SIGN_IN_PIN_LENGTH):
        raise ValidationFailed.field("pin", _("A sign-in PIN is 6 digits."), code="sign_in_pin_invalid")
    if trivial_pin(pin):
        raise ValidationFailed.field(
            "pin", _("Too easy to guess (like 111111 or 123456)."), code="sign_in_pin_weak"
        )
    if member.birth_date is not None and pin in {
        member.birth_date.strftime(f) for f in ("%y%m%d", "%m%d%y", "%d%m%y")
    }:
        raise ValidationFailed.field(
            "pin", _("Not the birth date: too easy to guess."), code="sign_in_pin_weak"
        )
    with transaction.atomic():
        user = User.objects.select_for_update().filter(member=member).first()
        created = user is None
        if user is None:
            mobile = (
                member.mobile
                if member.mobile and not User.objects.filter(mobile=member.mobile).exists()
                else None
            )
            user = User(username=f"m{member.pk}", mobile=mobile, member=member)
        user.set_password(pin)  # a PIN is not a password: the password rules do not apply, the lockout does
        user.failed_sign_ins, user.locked_until = 0, None
        user.save()
        audit_record(
            actor=actor,
            event_type="member.sign_in_pin_set",
            subject=member,
            region=member.home_region,
            new={"username": user.username, "created": created},
            on_behalf_of=member,
        )
    return user


def staff_user_create(
    *, actor: User, username: str, password: str, name: str = "", mobile: str = "", email: str = ""
) -> User:
    """Create a staff sign-in. It can do nothing until granted a role."""
    if not access_anywhere(actor, Perm.STAFF_GRANT):
        raise PermissionDenied()
    values = _clean_credentials(username=username, password=password, mobile=mobile)
    with transaction.atomic():
        user = User(
            username=values["username"],
            mobile=values["mobile"],
            first_name=name.strip()[:150],
            email=email.strip(),
        )
        user.set_password(password)
        user.save()
        audit_record(
            actor=actor,
            event_type="staff.user_created",
            subject=user,
            region=None,
            new={"username": user.username},
        )
    return user


# Who may grant which role: platform admins grant anything; operators grant the roles below them.
GRANTABLE_BY_OPERATOR = frozenset(
    {Role.STATION_STAFF, Role.COMMUNITY_STAFF, Role.AUDITOR, Role.MERCHANT_STAFF}
)


def staff_grant_create(*, actor: User, user: User, role: str, region: Region) -> StaffGrant:
    if role not in Role.values:
        raise ValidationFailed.field("role", _("Unknown role."))
    _check_may_grant(actor, role, region)
    if user.pk == actor.pk and not actor.is_superuser:
        raise PermissionDenied(_("Nobody may grant a role to themselves."), code="self_grant")
    with transaction.atomic():
        if StaffGrant.objects.filter(user=user, role=role, region=region, revoked_at__isnull=True).exists():
            raise Conflict(_("This person already has this role here."), code="grant_exists")
        grant = StaffGrant.objects.create(user=user, role=role, region=region, granted_by=actor)
        audit_record(
            actor=actor,
            event_type="staff.granted",
            subject=grant,
            region=region,
            new={"user": user.username, "role": role},
        )
    access_forget(user)
    return grant


def _check_may_grant(actor: User, role: str, region: Region) -> None:
    """Operators grant and revoke the roles below them inside their subtree, and never a permission they do
    not hold there themselves; platform admins, any role."""
    access_check(actor, Perm.STAFF_GRANT, region)
    if role not in GRANTABLE_BY_OPERATOR and access_paths(actor, Perm.POLICIES_MANAGE) is not None:
        raise PermissionDenied(_("Only a platform administrator can grant or revoke this role."))
    if any(not access_has(actor, perm, region) for perm in ROLE_PERMISSIONS.get(role, frozenset())):
        raise PermissionDenied(_("Nobody may grant a permission they do not hold themselves."))


def staff_grant_revoke(*, actor: User, grant: StaffGrant) -> StaffGrant:
    _check_may_grant(actor, grant.role, grant.region)
    with transaction.atomic():
        updated = StaffGrant.objects.filter(pk=grant.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoked_by=actor
        )
        if not updated:
            raise Conflict(_("This grant was already revoked."), code="grant_revoked")
        grant.refresh_from_db()
        audit_record(
            actor=actor,
            event_type="staff.revoked",
            subject=grant,
            region=grant.region,
            old={"user": grant.user.username, "role": grant.role},
        )
    access_forget(grant.user)
    return grant


def priority_group_verify(*, actor: User, member: Member, group: str, note: str = "") -> PriorityStatus:
    """Station staff confirm an elder belongs to a priority group (who and when are kept)."""
    if group not in PriorityGroup.values:
        raise ValidationFailed.field("group", _("Unknown priority group."))
    if len(note) > 200:
        raise ValidationFailed.field("note", _("At most %(n)d characters.") % {"n": 200})
    access_member_check(actor, member, Perm.PEOPLE_VERIFY)
    if actor.member_id == member.pk:
        raise PermissionDenied(_("Nobody verifies their own priority group."), code="self_verify")
    if not member.is_elder:
        raise ValidationFailed.field(
            "group", _("Only an elder can be in a priority group."), code="not_elder"
        )
    with transaction.atomic():
        status, _created = PriorityStatus.objects.select_for_update().get_or_create(
            member=member, group=group
        )
        if status.verified_at is not None:
            raise Conflict(_("This priority group is already verified."), code="already_verified")
        status.verified_by, status.verified_at, status.note = actor, timezone.now(), note.strip()
        status.save()
        audit_record(
            actor=actor,
            event_type="member.priority_verified",
            subject=member,
            region=member.home_region,
            new={"group": group, "note": status.note},
            on_behalf_of=member,
        )
    return status


def priority_group_revoke(*, actor: User, member: Member, group: str, reason: str) -> None:
    access_member_check(actor, member, Perm.PEOPLE_VERIFY)
    if not reason.strip():
        raise ValidationFailed.field("reason", _("Say why."))
    with transaction.atomic():
        deleted, _rows = PriorityStatus.objects.filter(member=member, group=group).delete()
        if not deleted:
            raise Conflict(_("The member is not in this priority group."), code="not_in_group")
        audit_record(
            actor=actor,
            event_type="member.priority_revoked",
            subject=member,
            region=member.home_region,
            old={"group": group},
            new={"reason": reason.strip()},
            on_behalf_of=member,
        )


def family_bond_propose(*, actor: User, member: Member, relative: Member, relation: str) -> FamilyBond:
    """``relative`` is ``member``'s <relation>. Proposed by either side themselves or by staff for them."""
    if relation not in Relation.values:
        raise ValidationFailed.field("relation", _("Unknown relation."))
    if member.pk == relative.pk:
        raise ValidationFailed.field(
            "relative", _("A member cannot be bound to themselves."), code="bond_self"
        )
    if actor.member_id not in (member.pk, relative.pk):
        access_member_check(actor, member, Perm.PEOPLE_MANAGE)
    if not relative.is_active or not member.is_active:
        raise ValidationFailed.field("relative", _("This member is no longer active."))
    with transaction.atomic():
        pair = Q(member=member, relative=relative) | Q(member=relative, relative=member)
        if FamilyBond.objects.select_for_update().filter(pair).exclude(status=BondStatus.REJECTED).exists():
            raise Conflict(_("These two members are already bound or a bond is waiting."), code="bond_exists")
        try:
            with transaction.atomic():
                bond = FamilyBond.objects.create(
                    member=member, relative=relative, relation=relation, proposed_by=actor
                )
        except IntegrityError as exc:  # the same pair proposed at the same moment
            raise Conflict(
                _("These two members are already bound or a bond is waiting."), code="bond_exists"
            ) from exc
        _audit_bond(
            actor,
            "bond.proposed",
            bond,
            new={"member": member.pk, "relative": relative.pk, "relation": relation},
            on_behalf_of=member if actor.member_id != member.pk else None,
        )
    return bond


def _audit_bond(
    actor: User,
    event_type: str,
    bond: FamilyBond,
    *,
    old: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
    on_behalf_of: Member | None = None,
) -> None:
    """A bond joins two members who may live in different places: staff of both see it in their log."""
    regions = [bond.member.home_region]
    if bond.relative.home_region_id != bond.member.home_region_id:
        regions.append(bond.relative.home_region)
    for region in regions:
        audit_record(
            actor=actor,
            event_type=event_type,
            subject=bond,
            region=region,
            old=old,
            new=new,
            on_behalf_of=on_behalf_of,
        )


def family_bond_decide(*, actor: User, bond: FamilyBond, approve: bool, reason: str = "") -> FamilyBond:
    """Staff who can vouch for the side that did not propose the bond verify or reject it: the relative's
    community when the member (or staff for the member) proposed it, the member's when the relative did.
    Nobody decides a bond they proposed or that binds themselves."""
    proposer_member_id = bond.proposed_by.member_id if bond.proposed_by is not None else None
    other = bond.member if proposer_member_id == bond.relative_id else bond.relative
    if not access_has(actor, Perm.PEOPLE_VERIFY, other.home_region):
        raise PermissionDenied(_("Staff of the other member's community decide this bond."))
    if actor.pk == bond.proposed_by_id or actor.member_id in (bond.member_id, bond.relative_id):
        raise PermissionDenied(_("Someone else must decide this bond."), code="self_decide")
    if not approve and not reason.strip():
        raise ValidationFailed.field("reason", _("Say why the bond is rejected."))
    if len(reason.strip()) > 200:
        raise ValidationFailed.field("reason", _("At most %(n)d characters.") % {"n": 200})
    with transaction.atomic():
        updated = FamilyBond.objects.filter(pk=bond.pk, status=BondStatus.PROPOSED).update(
            status=BondStatus.VERIFIED if approve else BondStatus.REJECTED,
            decided_by=actor,
            decided_at=timezone.now(),
            reason=reason.strip(),
        )
        if not updated:
            raise Conflict(_("This bond was already decided."), code="bond_decided")
        bond.refresh_from_db()
        _audit_bond(
            actor,
            "bond.verified" if approve else "bond.rejected",
            bond,
            old={"status": BondStatus.PROPOSED},
            new={"status": bond.status, "reason": bond.reason},
        )
    return bond


def _find_user(identifier: str) -> User | None:
    ident = identifier.strip()
    if not ident:
        return None
    try:
        mobile = normalize_mobile(ident)
    except InvalidValue:
        return User.objects.filter(username__iexact=ident).select_related("member").first()
    return User.objects.filter(mobile=mobile).select_related("member").first()


def sign_in(*, identifier: str, password: str) -> User:
    """Check a username or mobile number and password. Repeated failures lock the account for a while,
    and a locked account is refused even with the right password."""
    user = _find_user(identifier)
    now = timezone.now()
    if user is None:
        User().set_password(password)  # spend the same time as a real check
        raise AuthenticationFailed()
    if user.locked_until is not None and user.locked_until > now:
        raise AccountLocked(extra={"until": user.locked_until.isoformat()})
    if not user.check_password(password) or not user.is_active:
        until = None
        window_start = now - dt.timedelta(minutes=settings.SIGN_IN_LOCK_MINUTES)
        with transaction.atomic():
            if user.last_failed_sign_in is not None and user.last_failed_sign_in < window_start:
                User.objects.filter(pk=user.pk).update(failed_sign_ins=0)  # old failures are forgiven
            User.objects.filter(pk=user.pk).update(
                failed_sign_ins=F("failed_sign_ins") + 1, last_failed_sign_in=now
            )
            failures = User.objects.values_list("failed_sign_ins", flat=True).get(pk=user.pk)
            if failures >= settings.SIGN_IN_MAX_FAILURES:
                until = now + dt.timedelta(minutes=settings.SIGN_IN_LOCK_MINUTES)
                User.objects.filter(pk=user.pk).update(failed_sign_ins=0, locked_until=until)
                audit_record(
                    actor=None,
                    event_type="user.locked",
                    subject=user,
                    region=user.member.home_region if user.member else None,
                    new={"until": until.isoformat(), "failures": failures},
                )
        if until is not None:
            raise AccountLocked(extra={"until": until.isoformat()})
        raise AuthenticationFailed()
    if user.failed_sign_ins or user.locked_until:
        User.objects.filter(pk=user.pk).update(failed_sign_ins=0, locked_until=None)
        user.failed_sign_ins, user.locked_until = 0, None
    return user
