"""Writes of the care services: the whole life of a service, from the request to the credit.

Every function checks who is acting, checks the rules (``rules.py``) and the allowed move (``states.py``),
then writes in one database transaction: the service row, its audit record, any ledger hold or posting and
the in-app notices. Bad input raises an ``ApplicationError`` naming the field and the reason, and writes
nothing. Time is credited through ``ledger.services`` only.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from timebank.audit.models import AuditEvent
from timebank.audit.services import audit_record
from timebank.care import card_pdf, cards, rules
from timebank.care.models import (
    Certification,
    ConfirmMethod,
    Dispute,
    ElderSecret,
    FundBudget,
    Funding,
    Outcome,
    Rating,
    ServiceCard,
    ServiceOrder,
    Side,
    Source,
    Status,
    TimeMethod,
)
from timebank.care.notices import in_both_languages, order_params
from timebank.care.rules import Problem, fail, fail_all, local_day
from timebank.care.selectors import card_from_token
from timebank.care.states import BUSY, DONE, transition_check
from timebank.common import clock
from timebank.common.csvfile import csv_records
from timebank.common.errors import (
    AccountLocked,
    ApplicationError,
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from timebank.common.pins import ascii_digits, trivial_pin
from timebank.common.units import format_minutes
from timebank.ledger import services as ledger
from timebank.ledger.models import Account, AccountKind, Hold, HoldStatus, TransactionKind
from timebank.notifications.services import notify
from timebank.people.access import Perm, access_check, access_has, access_member_view, access_region_q
from timebank.people.crypto import lookup_hash
from timebank.people.models import Member, Role, StaffGrant, User
from timebank.people.selectors import station_phone
from timebank.regions.codes import Level
from timebank.regions.models import CapOverflow, Policy, Region

MAX_REPEAT_WEEKS = 26
MAX_BUDGET_MINUTES = 10**12
# Refusals about who pays, whose details only the elder's side and staff may read.
MONEY_SIDE = frozenset(
    {
        "care_insufficient_savings",
        "care_budget_exhausted",
        "care_no_budget",
        "care_withdrawal_age",
        "care_not_priority",
    }
)
# An assigned service whose time ended this long ago without a check-in goes to the station.
NOT_STARTED_HOURS = 2
MAX_REASON = 300


class ConfirmationLocked(AccountLocked):
    code = "care_confirm_locked"
    default_message = gettext_lazy("Too many wrong codes. Confirmation for this elder is locked for a while.")


# --- who is acting ------------------------------------------------------------------------------------------


def _member_of(user: User) -> Member | None:
    return user.member if user.member_id is not None else None


def _elder_side(actor: User, elder: Member) -> str | None:
    """'self' when the actor is the elder, 'proxy' for a relative with a verified bond, else None."""
    mine = _member_of(actor)
    if mine is None:
        return None
    if mine.pk == elder.pk:
        return "self"
    if rules.verified_relation(elder, mine) is not None:
        return "proxy"
    return None


def _acts_for(actor: User, order: ServiceOrder) -> str:
    """How the actor may act for the elder of ``order``: as the elder, a proxy or staff — as they are now
    (whoever posted the request keeps no right of their own once their bond or grant is gone)."""
    side = _elder_side(actor, order.elder)
    if side is not None:
        return side
    if access_has(actor, Perm.CARE_MANAGE, order.region):
        return "staff"
    raise PermissionDenied(_("Only the elder, their verified family or station staff may do this."))


def _not_involved(actor: User, order: ServiceOrder) -> None:
    """Nobody reviews, confirms for or resolves a service they gave, received or paid for."""
    mine = actor.member_id
    if mine is not None and mine in {order.volunteer_id, order.elder_id, order.payer_id}:
        raise PermissionDenied(
            _("You took part in this service, so another staff member must review it."),
            code="care_own_service",
        )


def _second_pair_of_eyes(actor: User, order: ServiceOrder) -> None:
    """Whoever put a service's time or confirmation on record themselves — entered a paper record or the
    times from a card, or confirmed it after phoning the elder — does not also approve it."""
    own_steps = {order.times_entered_by_id}
    if order.source in (Source.PAPER, Source.IMPORT):
        own_steps.add(order.requested_by_id)
    if order.confirmation_method == ConfirmMethod.STAFF:
        own_steps.add(order.confirmed_by_id)
    if actor.pk in own_steps:
        raise PermissionDenied(
            _("You recorded this service's time or confirmation, so another staff member approves it."),
            code="care_own_entry",
        )


def _is_volunteer_of(actor: User, order: ServiceOrder) -> bool:
    return actor.member_id is not None and actor.member_id == order.volunteer_id


# --- locking, moving, telling -------------------------------------------------------------------------------


def _locked(order: ServiceOrder) -> ServiceOrder:
    return (
        ServiceOrder.objects.select_for_update(of=("self",))
        .select_related("elder", "volunteer", "payer", "region", "category", "category__policy")
        .get(pk=order.pk)
    )


def _move(
    order: ServiceOrder,
    target: str,
    actor: User | None,
    *,
    extra: dict[str, Any] | None = None,
    resolving: bool = False,
) -> None:
    transition_check(order.status, target, resolving=resolving)
    previous = order.status
    order.status = target
    order.status_changed_at = clock.now()
    order.save()
    audit_record(
        actor=actor,
        event_type=f"care.order.{target}",
        subject=order,
        region=order.region,
        old={"status": previous},
        new={"status": target, **(extra or {})},
        on_behalf_of=order.elder,
    )


def _elder_side_members(order: ServiceOrder) -> list[Member | None]:
    return [order.elder, order.payer]


def _requester(order: ServiceOrder) -> list[User]:
    if order.requested_by_id is None:
        return []
    user = User.objects.filter(pk=order.requested_by_id).first()
    return [user] if user is not None and not user.is_superuser else []


def _station_staff(order: ServiceOrder) -> list[User]:
    return _station_staff_of(order.region)


def _station_staff_of(region: Region) -> list[User]:
    """Station and community staff of a community: granted on it or above it."""
    user_ids = StaffGrant.objects.filter(
        revoked_at__isnull=True,
        role__in=[Role.STATION_STAFF, Role.COMMUNITY_STAFF],
        region__path__in=region.ancestor_paths,
    ).values_list("user_id", flat=True)
    return list(User.objects.filter(pk__in=list(user_ids), is_active=True))


def _tell(
    order: ServiceOrder,
    kind: str,
    *,
    elder_side: bool = False,
    volunteer: bool = False,
    station: bool = False,
    **params: Any,
) -> None:
    members: list[Member | None] = []
    users: list[User] = []
    if elder_side:
        members += _elder_side_members(order)
        users += _requester(order)
    if volunteer:
        members.append(order.volunteer)
    if station:
        users += _station_staff(order)
    notify(kind=kind, params=order_params(order, **params), users=users, members=members)


# --- reserving and releasing what pays ----------------------------------------------------------------------


def _budget_for(region: Region, year: int, *, lock: bool = False) -> FundBudget | None:
    """The public fund budget of the nearest jurisdiction at or above ``region`` for ``year``."""
    qs = FundBudget.objects.filter(region__path__in=region.ancestor_paths, year=year).order_by(
        "-region__depth"
    )
    if lock:
        qs = qs.select_for_update(of=("self",))
    return qs.first()


def _pool_account(policy: Policy) -> Account:
    return ledger.system_account(kind=AccountKind.POOL, region=policy.region)


def _funding_account(order: ServiceOrder, policy: Policy) -> Account:
    """The account that pays for ``order``."""
    if order.funding in (Funding.OWN, Funding.FAMILY):
        assert order.payer is not None and order.payer.account_id is not None
        return Account.objects.get(pk=order.payer.account_id)
    if order.funding == Funding.POOL:
        if order.hold_id is not None:
            return Account.objects.get(
                pk=Hold.objects.values_list("account_id", flat=True).get(pk=order.hold_id)
            )
        return _pool_account(policy)
    budget = order.budget or _budget_for(order.region, local_day(order.window_start).year)
    if budget is None:
        raise _no_budget(order.region)
    return ledger.system_account(kind=AccountKind.PUBLIC_FUND, region=budget.region)


def _no_budget(region: Region) -> ValidationFailed:
    return ValidationFailed.field(
        "funding",
        _("No public fund budget is set for %(region)s this year.") % {"region": region.display_name},
        code="care_no_budget",
    )


def _holder_name(funding: str, payer: Member | None) -> str:
    if funding == Funding.POOL:
        return str(_("The mutual-aid pool"))
    return payer.name if payer is not None else ""


def _short_of(account: Account, needed: int, holder: str) -> ValidationFailed:
    return ValidationFailed.field(
        "funding",
        _("%(whose)s has %(available)s available; this service needs %(needed)s.")
        % {"whose": holder, "available": format_minutes(account.available), "needed": format_minutes(needed)},
        code="care_insufficient_savings",
    )


def _check_room(account: Account, needed: int, holder: str) -> None:
    if account.floor is not None and account.available - needed < account.floor:
        raise _short_of(account, needed, holder)


def _budget_exhausted(budget: FundBudget) -> ValidationFailed:
    return ValidationFailed.field(
        "funding",
        _("The public fund budget of %(region)s for %(year)d is exhausted.")
        % {"region": budget.region.display_name, "year": budget.year},
        code="care_budget_exhausted",
    )


def _reserve(order: ServiceOrder, minutes: int) -> None:
    """Hold the minutes on the paying account (savings, pool) or commit them against the public budget."""
    policy = rules.policy_for(order.region, local_day(order.window_start))
    if order.funding == Funding.PUBLIC:
        budget = _budget_for(order.region, local_day(order.window_start).year, lock=True)
        if budget is None:
            raise _no_budget(order.region)
        if budget.remaining_minutes < minutes:
            raise _budget_exhausted(budget)
        FundBudget.objects.filter(pk=budget.pk).update(committed_minutes=F("committed_minutes") + minutes)
        order.budget = budget
    else:
        account = _funding_account(order, policy)
        holder = _holder_name(order.funding, order.payer)
        _check_room(account, minutes, holder)
        try:
            held = ledger.hold_place(
                idempotency_key=f"care:{order.pk}:hold:{uuid.uuid4().hex[:12]}",
                account_id=account.pk,
                minutes=minutes,
                memo=f"{order.number} {order.category.code}",
                ref_type="care.serviceorder",
                ref_id=str(order.pk),
            )
        except ApplicationError as exc:
            if exc.code == "ledger_insufficient_funds":
                account.refresh_from_db()
                raise _short_of(account, minutes, holder) from exc
            raise
        order.hold_id = held.hold_id
    order.reserved_minutes = minutes


def _release(order: ServiceOrder) -> None:
    """Give back what ``_reserve`` took (on cancellation, withdrawal, no-show, rejection)."""
    if order.hold_id is not None:
        status = Hold.objects.values_list("status", flat=True).get(pk=order.hold_id)
        if status == HoldStatus.PENDING:
            ledger.hold_release(hold_id=order.hold_id)
        order.hold_id = None
    if order.budget_id is not None and order.reserved_minutes:
        FundBudget.objects.filter(pk=order.budget_id).update(
            committed_minutes=F("committed_minutes") - order.reserved_minutes
        )
    order.reserved_minutes = 0


def _planned_cost(order: ServiceOrder) -> int:
    policy = rules.policy_for(order.region, local_day(order.window_start))
    category = rules.category_in(policy, order.category.code)
    return rules.weighted_ceiling(
        rules.window_minutes(order.window_start, order.window_end), category.coefficient_permille
    )


# --- requests -----------------------------------------------------------------------------------------------


def _moment_problems(**moments: Any) -> list[Problem]:
    """Each named moment must be a date and time with its time zone (a naive one is a programming error
    in the caller, reported like any other bad input)."""
    return [
        Problem(name, _("Give the date and the time."), "care_bad_time")
        for name, value in moments.items()
        if not isinstance(value, dt.datetime) or timezone.is_naive(value)
    ]


def _check_moments(**moments: Any) -> None:
    problems = _moment_problems(**moments)
    if problems:
        raise fail_all(problems)


def _window_problems(start: Any, end: Any, *, now: dt.datetime) -> list[Problem]:
    problems = _moment_problems(window_start=start, window_end=end)
    if problems:
        return problems
    if end <= start:
        problems.append(Problem("window_end", _("The end is before the start."), "care_impossible_time"))
    elif rules.window_minutes(start, end) > rules.MAX_SERVICE_MINUTES:
        problems.append(
            Problem(
                "window_end",
                _("One service lasts at most %(hours)d hours; post longer help as several services.")
                % {"hours": rules.MAX_SERVICE_MINUTES // 60},
                "care_too_long",
            )
        )
    if end <= now:
        problems.append(
            Problem(
                "window_start",
                _(
                    "This time has passed. Services already given are entered from the paper card by the "
                    "station."
                ),
                "care_in_the_past",
            )
        )
    if start > now + dt.timedelta(days=rules.MAX_DAYS_AHEAD):
        problems.append(
            Problem("window_start", _("Requests are posted at most a year ahead."), "care_too_far")
        )
    return problems


def _text(value: str, name: str, limit: int, problems: list[Problem], *, required: bool = False) -> str:
    text = (value or "").strip()
    if required and not text:
        problems.append(Problem(name, _("Say why."), "care_reason_required"))
    if len(text) > limit:
        problems.append(Problem(name, _("At most %(n)d characters.") % {"n": limit}, "care_too_long_text"))
    return text


def order_create(
    *,
    actor: User,
    elder: Member,
    category: str,
    window_start: dt.datetime,
    window_end: dt.datetime,
    funding: str,
    payer: Member | None = None,
    address: str = "",
    notes: str = "",
    place: Region | None = None,
    repeat_weeks: int = 1,
) -> list[ServiceOrder]:
    """Post a request for care: by the elder, a bound family member on their behalf, or station staff for an
    elder without a phone. ``repeat_weeks`` > 1 posts the same visit weekly (one service per week)."""
    side = _elder_side(actor, elder)
    if side is None and not access_has(actor, Perm.CARE_MANAGE, elder.home_region):
        raise PermissionDenied(_("Only the elder, their verified family or station staff may post for them."))
    source = Source.APP if side is not None else Source.STAFF
    place = place or elder.home_region
    now = clock.now()
    problems = _window_problems(window_start, window_end, now=now)
    notes = _text(notes, "notes", 500, problems)
    address = _text(address or elder.address, "address", 200, problems)
    if not elder.is_elder or not elder.is_active:
        problems.append(
            Problem(
                "elder", _("%(name)s is not registered as an elder.") % {"name": elder.name}, "care_not_elder"
            )
        )
    if place.level != Level.COMMUNITY:
        problems.append(
            Problem("place", _("A service takes place in a community."), "care_place_not_community")
        )
    elif side is None:
        access_check(actor, Perm.CARE_MANAGE, place)  # staff post only where they serve
    elif not rules.is_nearby(elder.home_region, place):
        problems.append(
            Problem(
                "place",
                _("Services are asked for in the elder's own or a neighbouring community; ask the station."),
                "care_place_too_far",
            )
        )
    if not isinstance(repeat_weeks, int) or not 1 <= repeat_weeks <= MAX_REPEAT_WEEKS:
        problems.append(
            Problem(
                "repeat_weeks", _("Repeat 1 to %(n)d weeks.") % {"n": MAX_REPEAT_WEEKS}, "care_bad_repeat"
            )
        )
    if problems:
        raise fail_all(problems)
    policy = rules.policy_for(place, local_day(window_start))
    chosen = rules.category_in(policy, category)
    if (
        funding == Funding.FAMILY
        and payer is not None
        and actor.member_id != payer.pk
        and not access_has(actor, Perm.CARE_MANAGE, elder.home_region)
    ):
        raise PermissionDenied(_("Only the family member who pays may choose their own savings."))
    if funding == Funding.OWN:
        payer = elder
    elif funding in (Funding.POOL, Funding.PUBLIC):
        payer = None
    problems = rules.funding_problems(
        policy=policy, elder=elder, funding=funding, payer=payer, day=local_day(window_start)
    )
    if problems:
        raise fail_all(problems)
    cost = rules.weighted_ceiling(rules.window_minutes(window_start, window_end), chosen.coefficient_permille)
    _check_can_pay(
        funding=funding, payer=payer, policy=policy, place=place, day=local_day(window_start), cost=cost
    )

    series = uuid.uuid4() if repeat_weeks > 1 else None
    created: list[ServiceOrder] = []
    with transaction.atomic():
        for week in range(repeat_weeks):
            shift = dt.timedelta(weeks=week)
            order = ServiceOrder.objects.create(
                elder=elder,
                region=place,
                address=address,
                category=chosen,
                window_start=window_start + shift,
                window_end=window_end + shift,
                notes=notes,
                funding=funding,
                payer=payer,
                source=source,
                requested_by=actor,
                series=series,
                occurrence=week + 1,
                status=Status.OPEN,
                status_changed_at=now,
            )
            audit_record(
                actor=actor,
                event_type="care.order.posted",
                subject=order,
                region=place,
                new={
                    "category": chosen.code,
                    "from": order.window_start.isoformat(),
                    "until": order.window_end.isoformat(),
                    "funding": funding,
                    "payer": payer.pk if payer else None,
                    "source": source,
                },
                on_behalf_of=elder,
            )
            created.append(order)
    return created


def _check_can_pay(
    *, funding: str, payer: Member | None, policy: Policy, place: Region, day: dt.date, cost: int
) -> None:
    """An early, friendly refusal when the money side obviously cannot pay (the reservation re-checks)."""
    if funding == Funding.PUBLIC:
        budget = _budget_for(place, day.year)
        if budget is None:
            raise _no_budget(place)
        if budget.remaining_minutes < cost:
            raise _budget_exhausted(budget)
        return
    if funding == Funding.POOL:
        account = _pool_account(policy)
    else:
        assert payer is not None
        if payer.account_id is None:
            raise ValidationFailed.field("payer", _("%(name)s has no time account.") % {"name": payer.name})
        account = Account.objects.get(pk=payer.account_id)
    _check_room(account, cost, _holder_name(funding, payer))


def order_cancel(*, actor: User, order: ServiceOrder, reason: str) -> ServiceOrder:
    """Cancel an open or assigned request; a hold on savings is released. A service stuck in progress (the
    visit broke off) is cancelled by staff only."""
    problems: list[Problem] = []
    reason = _text(reason, "reason", MAX_REASON, problems, required=True)
    if problems:
        raise fail_all(problems)
    side = _acts_for(actor, order)
    with transaction.atomic():
        locked = _locked(order)
        transition_check(locked.status, Status.CANCELLED)
        if locked.status == Status.IN_PROGRESS and side != "staff":
            raise PermissionDenied(
                _("A service in progress is cancelled by the station."), code="care_cancel_in_progress"
            )
        _release(locked)
        _move(locked, Status.CANCELLED, actor, extra={"reason": reason})
        _tell(locked, "care.cancelled", elder_side=True, volunteer=True, reason=reason)
    return locked


# --- taking a service ---------------------------------------------------------------------------------------


def order_accept(*, actor: User, order: ServiceOrder) -> ServiceOrder:
    """A volunteer takes an open request in or next to their own community."""
    volunteer = _member_of(actor)
    if volunteer is None:
        raise PermissionDenied(_("Sign in as a volunteer to take a service."))
    try:
        return _assign(actor, order, volunteer, nearby_required=True)
    except ValidationFailed as exc:
        if exc.code not in MONEY_SIDE or _elder_side(actor, order.elder) is not None:
            raise
        # The volunteer is not told whose savings fall short, or by how much.
        raise ValidationFailed.field(
            "funding",
            _("This request cannot be taken right now; the station will arrange it."),
            code=exc.code,
        ) from exc


def order_assign(*, actor: User, order: ServiceOrder, volunteer: Member) -> ServiceOrder:
    """Station staff assign a volunteer (anyone they can see who meets the rules)."""
    access_check(actor, Perm.CARE_MANAGE, order.region)
    if not access_member_view(actor, volunteer):
        raise NotFound(code="member_not_found")
    return _assign(actor, order, volunteer, nearby_required=False)


def _assign(actor: User, order: ServiceOrder, volunteer: Member, *, nearby_required: bool) -> ServiceOrder:
    with transaction.atomic():
        locked = _locked(order)
        transition_check(locked.status, Status.ASSIGNED)
        day = local_day(locked.window_start)
        policy = rules.policy_for(locked.region, day)
        category = rules.category_in(policy, locked.category.code)
        problems = rules.volunteer_problems(
            volunteer=volunteer,
            elder=locked.elder,
            place=locked.region,
            policy=policy,
            category=category,
            day=day,
            nearby_required=nearby_required,
            payer=locked.payer,
        )
        if problems:
            raise fail_all(problems)
        # one volunteer at a time: two acceptances at once by the same volunteer queue here
        Member.objects.select_for_update().filter(pk=volunteer.pk).first()
        clash = (
            ServiceOrder.objects.filter(
                volunteer=volunteer,
                status__in=BUSY,
                window_start__lt=locked.window_end,
                window_end__gt=locked.window_start,
            )
            .exclude(pk=locked.pk)
            .first()
        )
        if clash is not None:
            raise Conflict(
                _("%(name)s already has service %(number)s at that time.")
                % {"name": volunteer.name, "number": clash.number},
                code="care_overlap",
            )
        money = rules.funding_problems(
            policy=policy, elder=locked.elder, funding=locked.funding, payer=locked.payer, day=day
        )
        if money:  # still true now? (a priority status revoked, a bond undone since the request)
            raise fail_all(money)
        locked.volunteer = volunteer
        locked.assigned_by = actor
        locked.assigned_at = clock.now()
        _reserve(locked, _planned_cost(locked))
        _move(
            locked,
            Status.ASSIGNED,
            actor,
            extra={"volunteer": volunteer.pk, "reserved": locked.reserved_minutes},
        )
        _tell(locked, "care.assigned", elder_side=True)
        if actor.member_id != volunteer.pk:
            _tell(locked, "care.offered", volunteer=True)
    return locked


def order_withdraw(*, actor: User, order: ServiceOrder, reason: str) -> ServiceOrder:
    """The volunteer (or staff) gives an assigned service back: it is open again for someone else."""
    problems: list[Problem] = []
    reason = _text(reason, "reason", MAX_REASON, problems, required=True)
    if problems:
        raise fail_all(problems)
    with transaction.atomic():
        locked = _locked(order)
        if not _is_volunteer_of(actor, locked):
            access_check(actor, Perm.CARE_MANAGE, locked.region)
        transition_check(locked.status, Status.OPEN)
        _release(locked)
        previous = locked.volunteer
        locked.volunteer = None
        locked.assigned_by = None
        locked.assigned_at = None
        _move(
            locked,
            Status.OPEN,
            actor,
            extra={"withdrawn": previous.pk if previous else None, "reason": reason},
        )
        _tell(locked, "care.unassigned", elder_side=True)
        if previous is not None and actor.member_id != previous.pk:
            notify(
                kind="care.taken_off",
                params=order_params(locked, reason=reason),
                members=[previous],
            )
    return locked


def order_no_show(*, actor: User, order: ServiceOrder, note: str = "") -> ServiceOrder:
    """The volunteer did not come: recorded by the elder's side or staff once the window has begun."""
    problems: list[Problem] = []
    note = _text(note, "note", MAX_REASON, problems)
    if problems:
        raise fail_all(problems)
    _acts_for(actor, order)
    with transaction.atomic():
        locked = _locked(order)
        transition_check(locked.status, Status.NO_SHOW)
        if clock.now() < locked.window_start:
            raise ValidationFailed.field(
                "status", _("The service has not started yet; cancel it instead."), code="care_not_started"
            )
        _release(locked)
        _move(locked, Status.NO_SHOW, actor, extra={"note": note})
        _tell(locked, "care.no_show", elder_side=True, volunteer=True)
    return locked


# --- recording time -----------------------------------------------------------------------------------------


def _card_for_token(token: str, order: ServiceOrder) -> ServiceCard:
    card = card_from_token(token)
    if card.elder_id != order.elder_id:
        raise ValidationFailed.field(
            "token",
            _("This card belongs to another elder, not to %(name)s.") % {"name": order.elder.name},
            code="care_card_wrong_elder",
        )
    return card


def order_check_in(*, actor: User, order: ServiceOrder, token: str = "") -> ServiceOrder:
    """The assigned volunteer arrives: in the app, or by scanning the QR code on the elder's service card."""
    now = clock.now()
    with transaction.atomic():
        locked = _locked(order)
        if not _is_volunteer_of(actor, locked):
            raise PermissionDenied(_("Only the assigned volunteer checks in."), code="care_not_your_service")
        method = TimeMethod.QR if token else TimeMethod.APP
        if token:
            _card_for_token(token, locked)
        transition_check(locked.status, Status.IN_PROGRESS)
        if now < locked.window_start - dt.timedelta(minutes=rules.EARLY_CHECK_IN_MINUTES):
            raise ValidationFailed.field(
                "checked_in_at",
                _("Too early: check in from %(minutes)d minutes before the service starts.")
                % {"minutes": rules.EARLY_CHECK_IN_MINUTES},
                code="care_too_early",
            )
        if now > locked.window_end:
            raise ValidationFailed.field(
                "checked_in_at",
                _("The time of this service has passed; ask the station to enter the times from the card."),
                code="care_window_passed",
            )
        assert locked.volunteer_id is not None
        Member.objects.select_for_update().filter(pk=locked.volunteer_id).first()
        busy = (
            ServiceOrder.objects.filter(volunteer_id=locked.volunteer_id, status=Status.IN_PROGRESS)
            .exclude(pk=locked.pk)
            .first()
        )
        if busy is not None:
            raise Conflict(
                _("You are still checked in to service %(number)s; check out of it first.")
                % {"number": busy.number},
                code="care_overlap",
            )
        locked.checked_in_at = now
        locked.check_in_method = method
        _move(locked, Status.IN_PROGRESS, actor, extra={"at": now.isoformat(), "method": method})
        _tell(locked, "care.checked_in", elder_side=True)
    return locked


def _service_minutes(
    start: Any, end: Any, travel: Any, policy: Policy, *, now: dt.datetime, start_field: str = "started_at"
) -> int:
    """Minutes of service between ``start`` and ``end``, travel excluded, rounded as the policy says."""
    problems = _moment_problems(**{start_field: start, "ended_at": end})
    if (
        not isinstance(travel, int)
        or isinstance(travel, bool)
        or not 0 <= travel <= rules.MAX_SERVICE_MINUTES
    ):
        problems.append(
            Problem(
                "travel_minutes", _("Travel time is a whole number of minutes, 0 or more."), "care_bad_travel"
            )
        )
    if problems:
        raise fail_all(problems)
    if end <= start:
        raise fail(Problem("ended_at", _("The end is before the start."), "care_impossible_time"))
    if end > now + dt.timedelta(minutes=5):
        raise fail(Problem("ended_at", _("The end is in the future."), "care_impossible_time"))
    total = rules.window_minutes(start, end)
    if total > rules.MAX_SERVICE_MINUTES:
        raise fail(
            Problem(
                "ended_at",
                _("One service lasts at most %(hours)d hours; check the times.")
                % {"hours": rules.MAX_SERVICE_MINUTES // 60},
                "care_too_long",
            )
        )
    if travel >= total:
        raise fail(
            Problem(
                "travel_minutes", _("Travel time is longer than the whole visit."), "care_impossible_time"
            )
        )
    minutes = rules.rounded(total - travel, policy)
    if minutes <= 0:
        raise fail(
            Problem(
                "ended_at",
                _("Shorter than the %(unit)d minutes %(policy)s counts.")
                % {"unit": policy.rounding_minutes, "policy": policy.name},
                "care_too_short",
            )
        )
    return minutes


def order_check_out(*, actor: User, order: ServiceOrder, token: str = "") -> ServiceOrder:
    """The volunteer leaves: the service time is fixed (rounded as the policy says) and the elder is asked to
    confirm it."""
    now = clock.now()
    with transaction.atomic():
        locked = _locked(order)
        if not _is_volunteer_of(actor, locked):
            raise PermissionDenied(_("Only the assigned volunteer checks out."), code="care_not_your_service")
        method = TimeMethod.QR if token else TimeMethod.APP
        if token:
            _card_for_token(token, locked)
        transition_check(locked.status, Status.COMPLETED)
        if locked.status != Status.IN_PROGRESS:
            raise ValidationFailed.field("status", _("Check in first."), code="care_not_checked_in")
        assert locked.checked_in_at is not None
        policy = rules.policy_for(locked.region, local_day(locked.checked_in_at))
        minutes = _service_minutes(locked.checked_in_at, now, 0, policy, now=now)
        locked.checked_out_at = now
        locked.check_out_method = method
        locked.service_minutes = minutes
        _move(
            locked,
            Status.COMPLETED,
            actor,
            extra={"at": now.isoformat(), "minutes": minutes, "method": method},
        )
        _tell(locked, "care.completed", elder_side=True, minutes=minutes)
    return locked


def _overlaps_recorded(volunteer: Member, start: dt.datetime, end: dt.datetime, exclude: int | None) -> bool:
    qs = ServiceOrder.objects.filter(
        volunteer=volunteer, status__in=DONE | {Status.IN_PROGRESS}, checked_in_at__lt=end
    ).filter(Q(checked_out_at__gt=start) | Q(checked_out_at__isnull=True))
    if exclude is not None:
        qs = qs.exclude(pk=exclude)
    return qs.exists()


def order_times_record(
    *,
    actor: User,
    order: ServiceOrder,
    started_at: dt.datetime,
    ended_at: dt.datetime,
    travel_minutes: int = 0,
    card_ref: str = "",
) -> ServiceOrder:
    """Station staff enter the times of an assigned service afterwards, from the paper card (the volunteer
    forgot to check in or out, or has no phone). Overlaps with the volunteer's other services are flagged."""
    access_check(actor, Perm.CARE_MANAGE, order.region)
    problems: list[Problem] = []
    card_ref = _text(card_ref, "card_ref", 40, problems)
    if problems:
        raise fail_all(problems)
    now = clock.now()
    with transaction.atomic():
        locked = _locked(order)
        _not_involved(actor, locked)
        transition_check(locked.status, Status.COMPLETED)
        _check_moments(started_at=started_at, ended_at=ended_at)
        policy = rules.policy_for(locked.region, local_day(started_at))
        minutes = _service_minutes(started_at, ended_at, travel_minutes, policy, now=now)
        assert locked.volunteer is not None
        locked.overlap_flag = _overlaps_recorded(locked.volunteer, started_at, ended_at, locked.pk)
        locked.checked_in_at = started_at
        locked.checked_out_at = ended_at
        locked.check_in_method = TimeMethod.PAPER  # the times on record are the card's, whatever came before
        locked.check_out_method = TimeMethod.PAPER
        locked.times_entered_by = actor
        locked.travel_minutes = travel_minutes
        locked.service_minutes = minutes
        locked.paper_card_ref = card_ref
        _move(
            locked,
            Status.COMPLETED,
            actor,
            extra={
                "minutes": minutes,
                "travel": travel_minutes,
                "overlap": locked.overlap_flag,
                "card": card_ref,
            },
        )
        _tell(locked, "care.completed", elder_side=True, minutes=minutes)
    return locked


# --- confirmation -------------------------------------------------------------------------------------------


def _not_serving(actor: User, elder: Member) -> None:
    """Staff who also volunteer never handle the confirmation secrets of an elder they serve: the PIN and the
    card's codes exist so that the elder, not the volunteer, says a service happened."""
    if actor.member_id is None:
        return
    serving = ServiceOrder.objects.filter(
        elder=elder, volunteer_id=actor.member_id, status__in=BUSY | DONE
    ).exists()
    if serving:
        raise PermissionDenied(
            _("You volunteer for this elder, so another staff member handles their PIN and service card."),
            code="care_own_service",
        )


def elder_pin_set(*, actor: User, elder: Member, pin: str) -> None:
    """Set the PIN the elder types on a volunteer's phone to confirm a service (4–6 digits, not trivial)."""
    if _member_of(actor) is None or actor.member_id != elder.pk:
        access_check(actor, Perm.CARE_MANAGE, elder.home_region)
        _not_serving(actor, elder)
    if not elder.is_elder:
        raise ValidationFailed.field(
            "elder",
            _("%(name)s is not registered as an elder.") % {"name": elder.name},
            code="care_not_elder",
        )
    pin = ascii_digits(pin)
    if not re.fullmatch(r"[0-9]{4,6}", pin):
        raise ValidationFailed.field("pin", _("A PIN is 4 to 6 digits."), code="care_bad_pin")
    if trivial_pin(pin):
        raise ValidationFailed.field("pin", _("Too easy to guess (like 1111 or 1234)."), code="care_weak_pin")
    with transaction.atomic():
        secret, _created = ElderSecret.objects.select_for_update().get_or_create(elder=elder)
        secret.pin_hash = _pin_digest(elder, pin)
        secret.pin_set_by = actor
        secret.failed_attempts = 0
        secret.locked_until = None
        secret.lockouts = 0
        secret.save()
        audit_record(
            actor=actor,
            event_type="care.pin.set",
            subject=elder,
            region=elder.home_region,
            on_behalf_of=elder,
        )


def _pin_digest(elder: Member, pin: str) -> str:
    """A keyed hash of the PIN: without the platform's key nobody can try the 10,000 PINs of a stolen table
    (a slow password hash would not stop that for four digits), and checking one is cheap. Guessing online is
    stopped by the lockout."""
    return salted_hmac("timebank.care.pin", f"{elder.pk}:{pin}", secret=settings.FIELD_HASH_KEY).hexdigest()


def service_card_issue(*, actor: User, elder: Member) -> ServiceCard:
    """Print a new service card for the elder; the previous card stops working."""
    access_check(actor, Perm.CARE_MANAGE, elder.home_region)
    _not_serving(actor, elder)
    if not elder.is_elder:
        raise ValidationFailed.field(
            "elder", _("%(name)s is not registered as an elder.") % {"name": elder.name}
        )
    now = clock.now()
    with transaction.atomic():
        revoked = ServiceCard.objects.filter(elder=elder, revoked_at__isnull=True).update(revoked_at=now)
        card = ServiceCard.objects.create(elder=elder, serial=secrets.token_hex(8), issued_by=actor)
        audit_record(
            actor=actor,
            event_type="care.card.issued",
            subject=elder,
            region=elder.home_region,
            new={"serial": card.serial, "replaced": revoked},
            on_behalf_of=elder,
        )
    return card


def _secret_not_known_to(actor: User, elder: Member, method: str) -> None:
    """A volunteer who set the elder's PIN, or issued or printed their card, cannot be confirmed with it."""
    if method == ConfirmMethod.PIN:
        known = ElderSecret.objects.filter(elder=elder, pin_set_by=actor).exists()
    else:
        card = ServiceCard.objects.filter(elder=elder, revoked_at__isnull=True).first()
        known = card is not None and (
            card.issued_by_id == actor.pk
            or AuditEvent.objects.filter(
                actor=actor, event_type="care.card.printed", new__serial=card.serial
            ).exists()
        )
    if known:
        raise PermissionDenied(
            _(
                "You know this elder's code yourself; the elder confirms on their own device, a relative "
                "confirms, or the station phones them."
            ),
            code="care_own_secret",
        )


@dataclass(frozen=True)
class CardPrint:
    card: ServiceCard
    token: str
    codes: list[tuple[int, str]]


def service_card_print(*, actor: User, elder: Member) -> CardPrint:
    """What the printed card shows — the QR token and the 20 one-time codes — for staff of the elder's
    community who do not serve them. Every printing is logged, since the codes confirm services."""
    access_check(actor, Perm.CARE_MANAGE, elder.home_region)
    _not_serving(actor, elder)
    card = ServiceCard.objects.filter(elder=elder, revoked_at__isnull=True).first()
    if card is None:
        raise NotFound(_("%(name)s has no service card yet.") % {"name": elder.name}, code="care_no_card")
    audit_record(
        actor=actor,
        event_type="care.card.printed",
        subject=elder,
        region=elder.home_region,
        new={"serial": card.serial},
        on_behalf_of=elder,
    )
    return CardPrint(card=card, token=cards.card_token(card.serial), codes=cards.card_codes(card.serial))


@dataclass(frozen=True)
class CardPdf:
    card: ServiceCard
    pdf: bytes

    @property
    def filename(self) -> str:
        return f"service-card-{self.card.serial}.pdf"


def service_card_print_pdf(*, actor: User, elder: Member, card_url: Callable[[str], str]) -> CardPdf:
    """The printed card as a PDF of two A6 pages (``card_pdf``), through the checks and the audit record of
    ``service_card_print``. ``card_url`` turns the card's token into the address its QR code holds (the
    interface knows its own host)."""
    printed = service_card_print(actor=actor, elder=elder)
    region = elder.home_region
    sheet = card_pdf.CardSheet(
        name=elder.name,
        community=region.name,
        community_en=region.name_en,
        station_phone=station_phone(region),
        serial=printed.card.serial,
        issued=timezone.localdate(printed.card.issued_at),
        url=card_url(printed.token),
        codes=printed.codes,
    )
    return CardPdf(card=printed.card, pdf=card_pdf.service_card_pdf(sheet))


def _check_secret(elder: Member, method: str, value: str) -> tuple[int, str] | None:
    """Check a PIN or card code with a lockout. Failures are counted in their own transaction: called outside
    any transaction (as ``order_confirm`` does), a refusal is committed before it is raised. Returns the card
    code's number and the card's serial for a card code. A code already used is refused without counting as
    a guess."""
    now = clock.now()
    secret, _created = ElderSecret.objects.get_or_create(elder=elder)
    if secret.locked_until is not None and secret.locked_until > now:
        raise ConfirmationLocked(extra={"until": secret.locked_until.isoformat()})
    number: int | None = None
    serial = ""
    if method == ConfirmMethod.PIN:
        if not secret.pin_hash:
            raise ValidationFailed.field(
                "pin",
                _("No PIN is set for %(name)s; use a card code or ask the station.") % {"name": elder.name},
                code="care_pin_not_set",
            )
        ok = constant_time_compare(_pin_digest(elder, ascii_digits(value)), secret.pin_hash)
        field_name = "pin"
    else:
        card = ServiceCard.objects.filter(elder=elder, revoked_at__isnull=True).first()
        if card is None:
            raise ValidationFailed.field(
                "code",
                _("%(name)s has no service card; the station prints one.") % {"name": elder.name},
                code="care_no_card",
            )
        serial = card.serial
        number = cards.card_code_match(card.serial, value or "")
        if number is not None and number in card.used_codes:
            raise ValidationFailed.field("code", _("This code was already used."), code="care_code_used")
        ok = number is not None
        field_name = "code"
    if ok:
        if secret.failed_attempts or secret.lockouts:
            ElderSecret.objects.filter(pk=secret.pk).update(failed_attempts=0, lockouts=0)
        return (number, serial) if number is not None else None
    limit = settings.CARE_CONFIRM_MAX_FAILURES
    with transaction.atomic():
        ElderSecret.objects.filter(pk=secret.pk).update(failed_attempts=F("failed_attempts") + 1)
        failures = ElderSecret.objects.values_list("failed_attempts", flat=True).get(pk=secret.pk)
        if failures >= limit:
            # each lock in a row lasts twice as long as the last (a week at most); the station is told
            lockouts = ElderSecret.objects.values_list("lockouts", flat=True).get(pk=secret.pk)
            minutes = min(settings.CARE_CONFIRM_LOCK_MINUTES * 2 ** min(lockouts, 16), 7 * 24 * 60)
            until = now + dt.timedelta(minutes=minutes)
            ElderSecret.objects.filter(pk=secret.pk).update(
                failed_attempts=0, locked_until=until, lockouts=F("lockouts") + 1
            )
            audit_record(
                actor=None,
                event_type="care.confirm.locked",
                subject=elder,
                region=elder.home_region,
                new={"until": until.isoformat(), "lockouts": lockouts + 1},
            )
            notify(
                kind="care.confirm_locked",
                params={"elder": elder.name, "until": timezone.localtime(until).strftime("%Y-%m-%d %H:%M")},
                users=_station_staff_of(elder.home_region),
            )
    if failures >= limit:
        raise ConfirmationLocked(extra={"until": until.isoformat()})
    raise ValidationFailed.field(
        field_name,
        _("Wrong code. %(left)d tries left before confirmation is locked.") % {"left": limit - failures},
        code="care_wrong_code",
    )


def order_confirm(
    *, actor: User, order: ServiceOrder, method: str, secret: str = "", note: str = ""
) -> ServiceOrder:
    """The elder's side confirms a completed service: a PIN or a card code typed on the volunteer's phone, on
    the elder's own device, by a family member as proxy, or by staff who called the elder."""
    if method not in ConfirmMethod.values or method == ConfirmMethod.PAPER:
        raise ValidationFailed.field("method", _("Choose how the elder confirms."), code="care_bad_method")
    order = ServiceOrder.objects.select_related("elder", "region").get(pk=order.pk)
    mine = actor.member_id
    if method in (ConfirmMethod.PIN, ConfirmMethod.CARD_CODE):
        if not _is_volunteer_of(actor, order) and not access_has(actor, Perm.CARE_MANAGE, order.region):
            raise PermissionDenied(_("The elder types the code on the volunteer's phone."))
    elif method == ConfirmMethod.DEVICE:
        if mine is None or mine != order.elder_id:
            raise PermissionDenied(
                _("Only the elder confirms on their own device."), code="care_not_the_elder"
            )
    elif method == ConfirmMethod.PROXY:
        if _elder_side(actor, order.elder) != "proxy" or mine == order.volunteer_id:
            raise PermissionDenied(
                _(
                    "Only a family member with a verified bond, who did not give the service, confirms for "
                    "the elder."
                ),
                code="care_not_proxy",
            )
    else:  # staff who phoned the elder
        access_check(actor, Perm.CARE_MANAGE, order.region)
        _not_involved(actor, order)
        problems: list[Problem] = []
        note = _text(note, "note", MAX_REASON, problems, required=True)
        if problems:
            raise fail_all(problems)
    if order.status != Status.COMPLETED:
        transition_check(order.status, Status.CONFIRMED)
    code = None
    if method in (ConfirmMethod.PIN, ConfirmMethod.CARD_CODE):
        _secret_not_known_to(actor, order.elder, method)
        code = _check_secret(order.elder, method, secret)
    number, used_serial = code if code is not None else (None, "")
    with transaction.atomic():
        locked = _locked(order)
        transition_check(locked.status, Status.CONFIRMED)
        if number is not None:
            card = (
                ServiceCard.objects.select_for_update()
                .filter(elder=locked.elder, revoked_at__isnull=True)
                .first()
            )
            if card is None or card.serial != used_serial:
                raise ValidationFailed.field(
                    "code",
                    _("The elder's card was just replaced; use a code from the new card."),
                    code="care_card_revoked",
                )
            if number in card.used_codes:
                raise ValidationFailed.field("code", _("This code was already used."), code="care_code_used")
            card.used_codes = [*card.used_codes, number]
            card.save(update_fields=["used_codes"])
        locked.confirmed_at = clock.now()
        locked.confirmed_by = actor
        locked.confirmation_method = method
        _move(locked, Status.CONFIRMED, actor, extra={"method": method, "code": number, "note": note})
        _tell(locked, "care.confirmed", volunteer=True, minutes=locked.service_minutes or 0)
    return locked


# --- paper records ------------------------------------------------------------------------------------------


def paper_record_create(
    *,
    actor: User,
    elder: Member,
    volunteer: Member,
    category: str,
    started_at: dt.datetime,
    ended_at: dt.datetime,
    funding: str,
    payer: Member | None = None,
    travel_minutes: int = 0,
    card_ref: str = "",
    notes: str = "",
    source: str = Source.PAPER,
) -> ServiceOrder:
    """Enter a service given earlier and signed on the elder's paper card (the 1998 model). It goes straight
    to the review queue, marked as a paper record; an overlap with the volunteer's other services is
    flagged."""
    access_check(actor, Perm.CARE_MANAGE, elder.home_region)
    if not access_member_view(actor, volunteer):
        raise NotFound(code="member_not_found")
    _not_a_party(actor, elder, volunteer)
    return _given_service_create(
        actor=actor,
        elder=elder,
        volunteer=volunteer,
        category=category,
        started_at=started_at,
        ended_at=ended_at,
        funding=funding,
        payer=payer,
        travel_minutes=travel_minutes,
        card_ref=card_ref,
        notes=notes,
        source=source,
        time_method=TimeMethod.PAPER,
        confirmation=ConfirmMethod.PAPER,
        event_type="care.order.paper_entered",
    )


def sensed_service_record(
    *,
    actor: User,
    elder: Member,
    volunteer: Member,
    category: str,
    started_at: dt.datetime,
    ended_at: dt.datetime,
    funding: str,
    payer: Member | None = None,
    notes: str = "",
    evidence: dict[str, Any] | None = None,
) -> ServiceOrder:
    """Record help nobody planned, with the times the proximity sensors measured (``sensing.presence``
    calls this for an unplanned-help candidate; ``evidence`` names the sessions). The same rules as a paper
    card apply. The elder recording it herself confirms it as she does; when station staff record it, the
    elder confirms it afterwards like any completed service. Either way whoever recorded it is named as
    having entered its times, so a reviewer — never the automatic approval — approves it."""
    side = _elder_side(actor, elder)
    if side != "self":
        access_check(actor, Perm.CARE_MANAGE, elder.home_region)
        _not_a_party(actor, elder, volunteer)
    return _given_service_create(
        actor=actor,
        elder=elder,
        volunteer=volunteer,
        category=category,
        started_at=started_at,
        ended_at=ended_at,
        funding=funding,
        payer=payer,
        travel_minutes=0,
        card_ref="",
        notes=notes,
        source=Source.SENSORS,
        time_method=TimeMethod.SENSORS,
        confirmation=ConfirmMethod.DEVICE if side == "self" else None,
        event_type="care.order.sensed_recorded",
        evidence=evidence,
    )


def _not_a_party(actor: User, elder: Member, volunteer: Member) -> None:
    """Staff enter a service only where they were neither its elder nor its volunteer."""
    if actor.member_id in {elder.pk, volunteer.pk}:
        raise PermissionDenied(
            _("You took part in this service, so another staff member must enter it."),
            code="care_own_service",
        )


def _given_service_create(
    *,
    actor: User,
    elder: Member,
    volunteer: Member,
    category: str,
    started_at: dt.datetime,
    ended_at: dt.datetime,
    funding: str,
    payer: Member | None,
    travel_minutes: int,
    card_ref: str,
    notes: str,
    source: str,
    time_method: str,
    confirmation: str | None,
    event_type: str,
    evidence: dict[str, Any] | None = None,
) -> ServiceOrder:
    """A service recorded after it was given (the caller checked who may record it): checked by the rules
    of the policy in force on its day, refused if already on record, flagged if it overlaps the volunteer's
    other services; what pays is reserved. Confirmed already when ``confirmation`` says how, else completed
    and waiting for the elder."""
    problems: list[Problem] = []
    card_ref = _text(card_ref, "card_ref", 40, problems)
    notes = _text(notes, "notes", 500, problems)
    if problems:
        raise fail_all(problems)
    _check_moments(started_at=started_at, ended_at=ended_at)
    now = clock.now()
    day = local_day(started_at)
    policy = rules.policy_for(elder.home_region, day)
    chosen = rules.category_in(policy, category)
    minutes = _service_minutes(started_at, ended_at, travel_minutes, policy, now=now)
    if funding == Funding.OWN:
        payer = elder
    elif funding in (Funding.POOL, Funding.PUBLIC):
        payer = None
    found = rules.volunteer_problems(
        volunteer=volunteer,
        elder=elder,
        place=elder.home_region,
        policy=policy,
        category=chosen,
        day=day,
        nearby_required=False,
        payer=payer,
    ) + rules.funding_problems(policy=policy, elder=elder, funding=funding, payer=payer, day=day)
    if not elder.is_elder:
        found.append(
            Problem(
                "elder", _("%(name)s is not registered as an elder.") % {"name": elder.name}, "care_not_elder"
            )
        )
    if found:
        raise fail_all(found)
    twin = (
        ServiceOrder.objects.filter(elder=elder, volunteer=volunteer, checked_in_at=started_at)
        .exclude(status__in=[Status.REJECTED, Status.CANCELLED])
        .first()
    )
    if twin is not None:
        raise ValidationFailed.field(
            "started_at",
            _("This service was already entered as %(number)s.") % {"number": twin.number},
            code="care_duplicate_record",
        )
    confirmed = confirmation is not None
    with transaction.atomic():
        order = ServiceOrder.objects.create(
            elder=elder,
            region=elder.home_region,
            address=elder.address,
            category=chosen,
            window_start=started_at,
            window_end=ended_at,
            notes=notes,
            funding=funding,
            payer=payer,
            source=source,
            requested_by=actor,
            status=Status.CONFIRMED if confirmed else Status.COMPLETED,
            status_changed_at=now,
            volunteer=volunteer,
            assigned_by=actor,
            assigned_at=now,
            checked_in_at=started_at,
            check_in_method=time_method,
            checked_out_at=ended_at,
            check_out_method=time_method,
            travel_minutes=travel_minutes,
            service_minutes=minutes,
            overlap_flag=_overlaps_recorded(volunteer, started_at, ended_at, None),
            paper_card_ref=card_ref,
            times_entered_by=actor,
            confirmed_at=now if confirmed else None,
            confirmed_by=actor if confirmed else None,
            confirmation_method=confirmation or "",
        )
        order = _locked(order)
        cost = rules.weighted_ceiling(minutes, chosen.coefficient_permille)
        _reserve(order, cost)
        order.save()
        audit_record(
            actor=actor,
            event_type=event_type,
            subject=order,
            region=order.region,
            new={
                "volunteer": volunteer.pk,
                "category": chosen.code,
                "from": started_at.isoformat(),
                "until": ended_at.isoformat(),
                "minutes": minutes,
                "travel": travel_minutes,
                "card": card_ref,
                "funding": funding,
                "overlap": order.overlap_flag,
                "source": source,
                **({"confirmed": confirmation} if confirmation != ConfirmMethod.PAPER else {}),
                **(evidence or {}),
            },
            on_behalf_of=elder,
        )
        if confirmation == ConfirmMethod.PAPER:
            _tell(order, "care.paper_entered", volunteer=True, elder_side=True, minutes=minutes)
        elif confirmed:
            _tell(order, "care.confirmed", volunteer=True, minutes=minutes)
        else:
            _tell(order, "care.completed", elder_side=True, minutes=minutes)
    return order


PAPER_COLUMNS = [
    "card",
    "volunteer",
    "elder",
    "category",
    "date",
    "start",
    "end",
    "travel_minutes",
    "funding",
    "payer",
    "notes",
]


class PaperImportFailed(ValidationFailed):
    code = "care_import_failed"


@dataclass
class PaperImportReport:
    created: list[ServiceOrder] = field(default_factory=list)
    flagged: int = 0


def _member_by_ref(actor: User, ref: str, name: str) -> Member:
    """A member of the actor's communities by ID number (18 characters) or mobile number (11 digits)."""
    ref = ref.strip().upper()
    visible = Member.objects.filter(access_region_q(actor, Perm.PEOPLE_VIEW, "home_region__path"))
    if len(ref) == 18:
        found = list(visible.filter(id_number_hash=lookup_hash(ref))[:2])
        what = _("ID number")
    elif len(ref) == 11 and ref.isdigit():
        found = list(visible.filter(mobile=ref)[:2])
        what = _("mobile number")
    else:
        raise ValidationFailed.field(name, _("give an 18-character ID number or an 11-digit mobile number"))
    if not found:
        raise ValidationFailed.field(
            name, _("no member of your communities has this %(what)s") % {"what": what}
        )
    if len(found) > 1:
        raise ValidationFailed.field(name, _("several members share this mobile number; use the ID number"))
    return found[0]


def _paper_time(day: str, clock: str, name: str) -> dt.datetime:
    value = f"{day.strip()} {clock.strip()}".strip()
    try:
        return dt.datetime.combine(
            dt.date.fromisoformat(day.strip()),
            dt.time.fromisoformat(clock.strip().zfill(5)),  # 9:30 as well as 09:30
            tzinfo=timezone.get_current_timezone(),
        )
    except ValueError as exc:
        raise ValidationFailed.field(
            name, _("“%(value)s” is not a date YYYY-MM-DD and a time HH:MM") % {"value": value}
        ) from exc


def _paper_line(actor: User, cells: dict[str, str]) -> ServiceOrder:
    travel_text = cells["travel_minutes"].strip() or "0"
    if not re.fullmatch(r"[0-9]{1,4}", travel_text):
        raise ValidationFailed.field("travel_minutes", _("a whole number of minutes"))
    funding = cells["funding"].strip() or Funding.PUBLIC
    if funding not in Funding.values:
        raise ValidationFailed.field(
            "funding", _("one of %(choices)s") % {"choices": ", ".join(Funding.values)}
        )
    payer = _member_by_ref(actor, cells["payer"], "payer") if cells["payer"].strip() else None
    return paper_record_create(
        actor=actor,
        elder=_member_by_ref(actor, cells["elder"], "elder"),
        volunteer=_member_by_ref(actor, cells["volunteer"], "volunteer"),
        category=cells["category"].strip(),
        started_at=_paper_time(cells["date"], cells["start"], "start"),
        ended_at=_paper_time(cells["date"], cells["end"], "end"),
        funding=funding,
        payer=payer,
        travel_minutes=int(travel_text),
        card_ref=cells["card"],
        notes=cells["notes"],
        source=Source.IMPORT,
    )


def _describe(exc: ApplicationError) -> str:
    if exc.fields:
        return "; ".join(f"{name}: {' '.join(reasons)}" for name, reasons in exc.fields.items())
    return str(exc.message)


class _Abort(Exception):
    pass


def paper_import(*, actor: User, text: str) -> PaperImportReport:
    """Import historical paper-card records (CSV with the header ``PAPER_COLUMNS``). Every line is checked
    by the same rules as a record entered by hand; if any line is bad, nothing is imported and the error
    lists every bad line with its number and reason. Lines already imported are refused as duplicates, so
    a file cannot be imported twice."""
    records = csv_records(text)
    if not records or [c.strip() for c in records[0][1]] != PAPER_COLUMNS:
        raise PaperImportFailed(
            _("The first line must be the header: %(header)s") % {"header": ",".join(PAPER_COLUMNS)},
            fields={"file": [_("line 1: wrong header")]},
        )
    report = PaperImportReport()
    problems: list[str] = []
    try:
        with transaction.atomic():
            for line, row in records[1:]:
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(PAPER_COLUMNS):
                    problems.append(
                        _("line %(line)d: expected %(n)d columns, found %(m)d")
                        % {"line": line, "n": len(PAPER_COLUMNS), "m": len(row)}
                    )
                    continue
                try:
                    with transaction.atomic():
                        order = _paper_line(actor, dict(zip(PAPER_COLUMNS, row, strict=True)))
                except ApplicationError as exc:
                    problems.append(_("line %(line)d: %(reason)s") % {"line": line, "reason": _describe(exc)})
                    continue
                report.created.append(order)
                report.flagged += int(order.overlap_flag)
            if problems:
                raise _Abort
    except _Abort:
        report.created = []
    if problems:
        raise PaperImportFailed(
            _("%(n)d lines are wrong; nothing was imported.") % {"n": len(problems)},
            fields={"file": problems},
        )
    return report


# --- review and credit --------------------------------------------------------------------------------------


def _credited_that_day(volunteer: Member, day: dt.date, exclude: int) -> int:
    start = timezone.make_aware(dt.datetime.combine(day, dt.time.min))
    total = (
        ServiceOrder.objects.filter(
            volunteer=volunteer,
            credit_transaction__isnull=False,
            checked_in_at__gte=start,
            checked_in_at__lt=start + dt.timedelta(days=1),
        )
        .exclude(pk=exclude)
        .exclude(status=Status.REVERSED)
        .aggregate(total=Sum("credited_minutes"))["total"]
    )
    return int(total or 0)


def _credit(order: ServiceOrder, actor: User | None, *, key: str) -> None:
    """Post the credit for ``order``: minutes × the coefficient of the policy version in force on the day of
    the service, within the daily earning cap, from whoever pays to the volunteer (over an account cap, to the
    pool where the policy says so). A pending hold is captured; the rest of it is released."""
    assert (
        order.checked_in_at is not None and order.service_minutes is not None and order.volunteer is not None
    )
    day = local_day(order.checked_in_at)
    policy = rules.policy_for(order.region, day)
    category = rules.category_in(policy, order.category.code)
    amount = rules.weighted(order.service_minutes, category.coefficient_permille)
    # Locks in one order everywhere — the service row (held by the caller), the budget, the accounts by
    # number — so that the daily cap, the budget and the account cap are read under lock.
    budget = None
    if order.budget_id is not None:
        budget = FundBudget.objects.select_for_update().select_related("region").get(pk=order.budget_id)
    payer = _funding_account(order, policy)
    volunteer_account_id = Account.objects.values_list("pk", flat=True).get(member__pk=order.volunteer.pk)
    locked_accounts = {
        a.pk: a
        for a in Account.objects.select_for_update()
        .filter(pk__in={payer.pk, volunteer_account_id})
        .order_by("pk")
    }
    payer, volunteer_account = locked_accounts[payer.pk], locked_accounts[volunteer_account_id]
    capped = 0
    cap = policy.daily_earning_cap_minutes
    if cap is not None:
        room = cap - _credited_that_day(order.volunteer, day, order.pk)
        if room <= 0:
            raise ValidationFailed.field(
                "minutes",
                _("%(name)s has reached the daily earning cap of %(policy)s for %(day)s.")
                % {"name": order.volunteer.name, "policy": policy.name, "day": day.isoformat()},
                code="care_daily_cap_reached",
            )
        if amount > room:
            capped, amount = amount - room, room
    if amount <= 0:
        raise ValidationFailed.field("minutes", _("Nothing to credit."), code="care_nothing_to_credit")
    if budget is not None:
        extra = amount - order.reserved_minutes
        if extra > 0 and budget.remaining_minutes < extra:
            raise _budget_exhausted(budget)
        FundBudget.objects.filter(pk=budget.pk).update(committed_minutes=F("committed_minutes") + extra)
    legs, overflow = ledger.credit_legs(
        source_id=payer.pk,
        destination=volunteer_account,
        minutes=amount,
        overflow_to=_pool_account(policy).pk if policy.cap_overflow == CapOverflow.POOL else None,
    )
    request = ledger.PostRequest(
        idempotency_key=key,
        kind=TransactionKind.SERVICE_CREDIT,
        legs=tuple(legs),
        memo=f"{order.number} {category.code} {order.service_minutes}min x{category.coefficient_permille}‰",
        actor_id=actor.pk if actor is not None else None,
        subject=order.number,
        ref_type="care.serviceorder",
        ref_id=str(order.pk),
        policy_id=policy.pk,
    )
    hold = None
    if order.hold_id is not None:
        hold = Hold.objects.filter(pk=order.hold_id, status=HoldStatus.PENDING).first()
    if hold is not None and hold.account_id == payer.pk and amount <= hold.amount:
        posted = ledger.hold_capture(hold_id=hold.pk, request=request)
    else:
        if hold is not None:
            ledger.hold_release(hold_id=hold.pk)
        try:
            posted = ledger.transaction_post(request)
        except ApplicationError as exc:
            if exc.code == "ledger_insufficient_funds":
                payer.refresh_from_db()  # the figure after the hold was given back
                raise _short_of(payer, amount, _holder_name(order.funding, order.payer)) from exc
            raise
    order.reserved_minutes = 0
    order.policy = policy
    order.coefficient_permille = category.coefficient_permille
    order.credited_minutes = amount
    order.capped_minutes = capped
    order.overflow_minutes = overflow
    order.credit_transaction_id = posted.transaction_id


def order_approve(*, actor: User, order: ServiceOrder) -> ServiceOrder:
    """Approve a confirmed service and credit the volunteer. Approving twice never pays twice: a credited
    service is returned as it is."""
    access_check(actor, Perm.CARE_REVIEW, order.region)
    with transaction.atomic():
        locked = _locked(order)
        _not_involved(actor, locked)
        if locked.status == Status.CREDITED:
            return locked
        _second_pair_of_eyes(actor, locked)
        _approve(locked, actor)
    return locked


# How the elder's side confirms a service itself (not staff after a phone call, not a paper card).
ELDER_CONFIRMATIONS = frozenset(
    {ConfirmMethod.PIN, ConfirmMethod.CARD_CODE, ConfirmMethod.DEVICE, ConfirmMethod.PROXY}
)


def order_auto_approve(*, order: ServiceOrder, evidence: dict[str, Any], note: str) -> ServiceOrder:
    """Approve and credit a confirmed service without a reviewer, because its measured time agrees with its
    claimed time (``sensing.presence`` decides that and passes ``evidence``: the minutes measured and
    claimed, the tolerance and the sessions; ``note`` says it in words). The credit is the one a reviewer's
    approval posts — the same cap, budget and savings checks, the same idempotency key.

    Only a service that no staff member put on record qualifies: its times checked in and out by the
    volunteer in the app or with the card, its confirmation given by the elder's side itself, no overlap with
    the volunteer's other services. Anything else waits for a reviewer, as the four-eyes rules want."""
    with transaction.atomic():
        locked = _locked(order)
        if locked.status == Status.CREDITED:
            return locked
        transition_check(locked.status, Status.APPROVED)
        refusal = None
        if locked.overlap_flag:
            refusal = _("It overlaps another service of the volunteer.")
        elif locked.confirmation_method not in ELDER_CONFIRMATIONS:
            refusal = _("It was not confirmed by the elder or a verified relative.")
        elif locked.times_entered_by_id is not None or locked.source in (Source.PAPER, Source.IMPORT):
            refusal = _("Its times were entered by hand.")
        if refusal is not None:
            raise Conflict(
                _("%(number)s is left for a reviewer: %(why)s") % {"number": locked.number, "why": refusal},
                code="care_not_auto_approvable",
            )
        _approve(locked, None, note=note[:MAX_REASON], extra={"auto": True, **evidence})
    return locked


def _approve(
    locked: ServiceOrder, actor: User | None, *, note: str = "", extra: dict[str, Any] | None = None
) -> None:
    """Approve and credit ``locked`` (locked by the caller, who checked who approves)."""
    transition_check(locked.status, Status.APPROVED)
    locked.reviewed_by = actor
    locked.reviewed_at = clock.now()
    if note:
        locked.review_note = note
    _move(locked, Status.APPROVED, actor, extra=extra)
    _credit(locked, actor, key=f"care:{locked.pk}:credit")
    _move(
        locked,
        Status.CREDITED,
        actor,
        extra={
            "minutes": locked.credited_minutes,
            "coefficient": locked.coefficient_permille,
            "policy": locked.policy_id,
            "transaction": locked.credit_transaction_id,
            "capped": locked.capped_minutes,
            "overflow": locked.overflow_minutes,
        },
    )
    _tell(locked, "care.credited", volunteer=True, credited=locked.credited_minutes or 0)
    if locked.funding in (Funding.OWN, Funding.FAMILY):
        _tell(locked, "care.paid", elder_side=True, credited=locked.credited_minutes or 0)


@dataclass
class BatchResult:
    approved: list[ServiceOrder] = field(default_factory=list)
    failed: list[tuple[ServiceOrder, ApplicationError]] = field(default_factory=list)


def orders_approve(*, actor: User, orders: Iterable[ServiceOrder]) -> BatchResult:
    """Approve many services; each is approved or refused on its own (one elder short of savings does not
    hold up the rest), and the reasons are returned. A service flagged as overlapping another is looked at
    on its own page, never approved in a batch."""
    result = BatchResult()
    for order in orders:
        try:
            if order.overlap_flag and order.status != Status.CREDITED:
                raise Conflict(
                    _("%(number)s overlaps another service of the volunteer; approve it on its own page.")
                    % {"number": order.number},
                    code="care_flagged",
                )
            result.approved.append(order_approve(actor=actor, order=order))
        except ApplicationError as exc:
            result.failed.append((order, exc))
    return result


def order_reject(*, actor: User, order: ServiceOrder, reason: str) -> ServiceOrder:
    """Refuse a completed or confirmed service, with the reason: nothing is credited, holds are released."""
    access_check(actor, Perm.CARE_REVIEW, order.region)
    problems: list[Problem] = []
    reason = _text(reason, "reason", MAX_REASON, problems, required=True)
    if problems:
        raise fail_all(problems)
    with transaction.atomic():
        locked = _locked(order)
        _not_involved(actor, locked)
        transition_check(locked.status, Status.REJECTED)
        _release(locked)
        locked.reviewed_by = actor
        locked.reviewed_at = clock.now()
        locked.review_note = reason
        _move(locked, Status.REJECTED, actor, extra={"reason": reason})
        _tell(locked, "care.rejected", elder_side=True, volunteer=True, reason=reason)
    return locked


# --- ratings and disputes -----------------------------------------------------------------------------------


def order_rate(*, actor: User, order: ServiceOrder, stars: int, comment: str = "") -> Rating:
    """Either side rates the other once a service is done."""
    order = ServiceOrder.objects.select_related("elder", "region").get(pk=order.pk)
    if _is_volunteer_of(actor, order):
        side = Side.VOLUNTEER
    elif _elder_side(actor, order.elder) is not None:
        side = Side.ELDER
    else:
        raise PermissionDenied(_("Only the elder's side and the volunteer rate a service."))
    problems: list[Problem] = []
    if not isinstance(stars, int) or isinstance(stars, bool) or not 1 <= stars <= 5:
        problems.append(Problem("stars", _("Give 1 to 5 stars."), "care_bad_stars"))
    comment = _text(comment, "comment", 300, problems)
    if problems:
        raise fail_all(problems)
    if order.status not in DONE:
        raise Conflict(_("A service is rated once it is done."), code="care_not_done")
    try:
        with transaction.atomic():
            rating = Rating.objects.create(order=order, side=side, stars=stars, comment=comment, by=actor)
            audit_record(
                actor=actor,
                event_type="care.order.rated",
                subject=order,
                region=order.region,
                new={"side": side, "stars": stars},
            )
    except IntegrityError as exc:
        raise Conflict(_("You have already rated this service."), code="care_already_rated") from exc
    return rating


def order_dispute(*, actor: User, order: ServiceOrder, reason: str) -> Dispute:
    """A complaint: by the elder's side, the volunteer or staff, about a done service (credited or not)."""
    problems: list[Problem] = []
    reason = _text(reason, "reason", 500, problems, required=True)
    if problems:
        raise fail_all(problems)
    with transaction.atomic():
        locked = _locked(order)
        if not _is_volunteer_of(actor, locked):
            _acts_for(actor, locked)
        previous = locked.status
        transition_check(previous, Status.DISPUTED)
        dispute = Dispute.objects.create(order=locked, raised_by=actor, reason=reason, from_status=previous)
        _move(locked, Status.DISPUTED, actor, extra={"dispute": dispute.pk, "reason": reason})
        _tell(locked, "care.disputed", elder_side=True, volunteer=True, station=True, reason=reason)
    return dispute


def dispute_resolve(
    *,
    actor: User,
    dispute: Dispute,
    outcome: str,
    resolution: str,
    corrected_minutes: int | None = None,
) -> Dispute:
    """Staff decide a complaint: the record stands; the time is corrected (a credited service is reversed
    and credited again with the right time); or the service is void (a credit is reversed)."""
    order = dispute.order
    access_check(actor, Perm.CARE_REVIEW, order.region)
    _not_involved(actor, order)
    problems: list[Problem] = []
    resolution = _text(resolution, "resolution", 500, problems, required=True)
    if outcome not in Outcome.values:
        problems.append(Problem("outcome", _("Choose an outcome."), "care_bad_outcome"))
    if outcome == Outcome.CORRECTED and (
        not isinstance(corrected_minutes, int)
        or isinstance(corrected_minutes, bool)
        or not 0 < corrected_minutes <= rules.MAX_SERVICE_MINUTES
    ):
        problems.append(
            Problem("corrected_minutes", _("Give the right service time in minutes."), "care_bad_minutes")
        )
    if problems:
        raise fail_all(problems)
    with transaction.atomic():
        locked_dispute = Dispute.objects.select_for_update().get(pk=dispute.pk)
        if locked_dispute.resolved_at is not None:
            raise Conflict(_("This complaint is already resolved."), code="care_dispute_resolved")
        if locked_dispute.raised_by_id == actor.pk:
            raise PermissionDenied(
                _("You raised this complaint, so another staff member decides it."), code="care_own_entry"
            )
        locked = _locked(order)
        if locked.budget_id is not None:  # the budget before the accounts, as everywhere
            FundBudget.objects.select_for_update().filter(pk=locked.budget_id).first()
        was_credited = (
            locked.credit_transaction_id is not None and locked_dispute.from_status == Status.CREDITED
        )
        reversal_id = None
        if was_credited and outcome in (Outcome.CORRECTED, Outcome.VOID):
            assert locked.credit_transaction_id is not None
            reversal = ledger.transaction_reverse(
                idempotency_key=f"care:{locked.pk}:reverse:{locked_dispute.pk}",
                transaction_id=locked.credit_transaction_id,
                memo=f"{locked.number} D{locked_dispute.pk}",
                actor_id=actor.pk,
            )
            reversal_id = reversal.transaction_id
            if locked.budget_id is not None:
                FundBudget.objects.filter(pk=locked.budget_id).update(
                    committed_minutes=F("committed_minutes") - (locked.credited_minutes or 0)
                )
        if outcome == Outcome.STANDS:
            target = locked_dispute.from_status
        elif outcome == Outcome.VOID:
            target = Status.REVERSED if was_credited else Status.REJECTED
            if not was_credited:
                _release(locked)
        else:
            assert corrected_minutes is not None and locked.checked_in_at is not None
            policy = rules.policy_for(locked.region, local_day(locked.checked_in_at))
            locked.service_minutes = rules.rounded(corrected_minutes, policy)
            if not locked.service_minutes:
                raise fail(
                    Problem(
                        "corrected_minutes",
                        _("Shorter than the %(unit)d minutes %(policy)s counts.")
                        % {"unit": policy.rounding_minutes, "policy": policy.name},
                        "care_too_short",
                    )
                )
            target = locked_dispute.from_status
            if was_credited:
                locked.credit_transaction_id = None
                _credit(locked, actor, key=f"care:{locked.pk}:credit:{locked_dispute.pk}")
        _move(
            locked,
            target,
            actor,
            extra={"dispute": locked_dispute.pk, "outcome": outcome, "minutes": locked.service_minutes},
            resolving=True,
        )
        locked_dispute.outcome = outcome
        locked_dispute.resolution = resolution
        locked_dispute.corrected_minutes = corrected_minutes if outcome == Outcome.CORRECTED else None
        locked_dispute.resolved_by = actor
        locked_dispute.resolved_at = clock.now()
        locked_dispute.reversal_id = reversal_id
        locked_dispute.save()
        outcome_words = in_both_languages("outcome", Outcome(outcome).label)
        _tell(
            locked,
            "care.dispute_resolved",
            elder_side=True,
            volunteer=True,
            reason=resolution,
            outcome=outcome_words["outcome"],
            outcome_en=outcome_words["outcome_en"],
        )
    return locked_dispute


# --- background work ----------------------------------------------------------------------------------------


def orders_expire(*, now: dt.datetime | None = None) -> int:
    """Open requests whose time has passed with nobody assigned expire, and the elder's side is told."""
    now = now or clock.now()
    count = 0
    for order in ServiceOrder.objects.filter(status=Status.OPEN, window_end__lt=now).order_by("pk")[:1000]:
        with transaction.atomic():
            locked = _locked(order)
            if locked.status != Status.OPEN:
                continue
            _move(locked, Status.EXPIRED, None)
            _tell(locked, "care.expired", elder_side=True)
            count += 1
    return count


def orders_escalate(*, now: dt.datetime | None = None) -> int:
    """Completed services nobody confirmed within ``CARE_ESCALATE_HOURS``, and assigned services whose time
    ended without a check-in (``NOT_STARTED_HOURS`` later), go to the station: it phones the elder, enters
    the times from the card, or records a no-show."""
    now = now or clock.now()
    unconfirmed = Q(
        status=Status.COMPLETED, checked_out_at__lte=now - dt.timedelta(hours=settings.CARE_ESCALATE_HOURS)
    )
    not_started = Q(
        status__in=[Status.ASSIGNED, Status.IN_PROGRESS],
        window_end__lte=now - dt.timedelta(hours=NOT_STARTED_HOURS),
    )
    count = 0
    for order in ServiceOrder.objects.filter(unconfirmed | not_started, escalated_at__isnull=True).order_by(
        "pk"
    )[:1000]:
        with transaction.atomic():
            locked = _locked(order)
            if (
                locked.status not in (Status.COMPLETED, Status.ASSIGNED, Status.IN_PROGRESS)
                or locked.escalated_at
            ):
                continue
            locked.escalated_at = now
            locked.save(update_fields=["escalated_at", "updated_at"])
            audit_record(
                actor=None,
                event_type="care.order.escalated",
                subject=locked,
                region=locked.region,
                new={"at": now.isoformat()},
                on_behalf_of=locked.elder,
            )
            if locked.status == Status.COMPLETED:
                _tell(locked, "care.escalated", station=True, minutes=locked.service_minutes or 0)
            elif locked.status == Status.ASSIGNED:
                _tell(locked, "care.not_started", station=True)
            else:
                _tell(locked, "care.not_checked_out", station=True)
            count += 1
    return count


@dataclass(frozen=True)
class Tick:
    expired: int
    escalated: int


def care_tick(*, now: dt.datetime | None = None) -> Tick:
    return Tick(expired=orders_expire(now=now), escalated=orders_escalate(now=now))


# --- certifications and budgets -----------------------------------------------------------------------------


def certification_grant(
    *, actor: User, member: Member, code: str, valid_until: dt.date | None = None
) -> Certification:
    """Record a volunteer's certification (checked by station staff against the certificate)."""
    access_check(actor, Perm.PEOPLE_VERIFY, member.home_region)
    if actor.member_id == member.pk:
        raise PermissionDenied(_("Another staff member records your own certification."))
    code = (code or "").strip()
    if not code or len(code) > 40 or not code.replace("_", "").replace("-", "").isalnum():
        raise ValidationFailed.field(
            "code", _("A certification code of letters, digits, - or _."), code="care_bad_cert"
        )
    if valid_until is not None and valid_until < clock.today():
        raise ValidationFailed.field(
            "valid_until", _("This certification has already expired."), code="care_cert_expired"
        )
    with transaction.atomic():
        Certification.objects.filter(member=member, code=code, revoked_at__isnull=True).update(
            revoked_at=clock.now()
        )
        cert = Certification.objects.create(
            member=member, code=code, valid_until=valid_until, granted_by=actor
        )
        audit_record(
            actor=actor,
            event_type="care.certification.granted",
            subject=member,
            region=member.home_region,
            new={"code": code, "valid_until": valid_until.isoformat() if valid_until else None},
            on_behalf_of=member,
        )
    return cert


def certification_revoke(*, actor: User, certification: Certification) -> Certification:
    access_check(actor, Perm.PEOPLE_VERIFY, certification.member.home_region)
    with transaction.atomic():
        updated = Certification.objects.filter(pk=certification.pk, revoked_at__isnull=True).update(
            revoked_at=clock.now()
        )
        if updated:
            audit_record(
                actor=actor,
                event_type="care.certification.revoked",
                subject=certification.member,
                region=certification.member.home_region,
                old={"code": certification.code},
                on_behalf_of=certification.member,
            )
    certification.refresh_from_db()
    return certification


def fund_budget_set(*, actor: User, region: Region, year: int, limit_minutes: int) -> FundBudget:
    """Set the public fund's budget of a jurisdiction for a year (never below what is already committed)."""
    access_check(actor, Perm.FUNDS_MANAGE, region)
    if (
        not isinstance(limit_minutes, int)
        or isinstance(limit_minutes, bool)
        or not 0 <= limit_minutes <= MAX_BUDGET_MINUTES
    ):
        raise ValidationFailed.field("limit_minutes", _("A whole number of minutes, 0 or more."))
    if not isinstance(year, int) or not 2000 <= year <= 2100:
        raise ValidationFailed.field("year", _("A year such as 2027."))
    with transaction.atomic():
        budget = FundBudget.objects.select_for_update().filter(region=region, year=year).first()
        old = budget.limit_minutes if budget else None
        if budget is not None and limit_minutes < budget.committed_minutes:
            raise ValidationFailed.field(
                "limit_minutes",
                _("%(committed)d minutes are already committed this year.")
                % {"committed": budget.committed_minutes},
                code="care_budget_below_committed",
            )
        if budget is None:
            budget = FundBudget.objects.create(
                region=region, year=year, limit_minutes=limit_minutes, set_by=actor
            )
        else:
            budget.limit_minutes = limit_minutes
            budget.set_by = actor
            budget.save()
        audit_record(
            actor=actor,
            event_type="care.budget.set",
            subject=budget,
            region=region,
            old={"limit": old},
            new={"limit": limit_minutes, "year": year},
        )
    return budget


__all__ = [
    "PAPER_COLUMNS",
    "BatchResult",
    "CardPdf",
    "CardPrint",
    "ConfirmationLocked",
    "PaperImportFailed",
    "PaperImportReport",
    "care_tick",
    "certification_grant",
    "certification_revoke",
    "dispute_resolve",
    "elder_pin_set",
    "fund_budget_set",
    "order_accept",
    "order_approve",
    "order_assign",
    "order_cancel",
    "order_check_in",
    "order_check_out",
    "order_confirm",
    "order_create",
    "order_dispute",
    "order_no_show",
    "order_rate",
    "order_reject",
    "order_times_record",
    "order_withdraw",
    "orders_approve",
    "orders_escalate",
    "orders_expire",
    "paper_import",
    "paper_record_create",
    "service_card_issue",
    "service_card_print",
    "service_card_print_pdf",
]
