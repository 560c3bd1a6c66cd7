"""Reads of the care services: what a volunteer may take, what an elder asked for, the station's queues."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import (
    BigIntegerField,
    Case,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from timebank.care import cards
from timebank.care.models import (
    Certification,
    Dispute,
    ElderSecret,
    FundBudget,
    ServiceCard,
    ServiceOrder,
    Status,
)
from timebank.care.rules import age_of, verified_relation, volunteer_problems
from timebank.care.states import BUSY
from timebank.common import clock
from timebank.common.errors import NotFound, ValidationFailed
from timebank.ledger.models import Posting, TransactionKind
from timebank.people.access import Perm, access_has, access_paths, access_region_q
from timebank.people.models import BondStatus, FamilyBond, Member, User
from timebank.regions.models import Policy, Region, ServiceCategory, path_prefixes
from timebank.regions.selectors import policy_in_force

# The national volunteer star levels (hours), where no policy says otherwise.
NATIONAL_STAR_THRESHOLDS_HOURS = [100, 300, 600, 1000, 1500]
_RELATED = ("elder", "volunteer", "payer", "region", "category")


def order_get(user: User, order_id: int) -> ServiceOrder:
    """A service the user may see: its elder (or their verified family), its volunteer, its requester, or
    staff of its community. Anyone else is told it does not exist."""
    order = ServiceOrder.objects.select_related(*_RELATED).filter(pk=order_id).first()
    if order is None or not order_visible(user, order):
        raise NotFound(code="care_order_not_found")
    return order


def order_visible(user: User, order: ServiceOrder) -> bool:
    mine = user.member_id
    if mine is not None and mine in {order.elder_id, order.volunteer_id, order.payer_id}:
        return True
    if access_has(user, Perm.CARE_VIEW, order.region):
        return True
    return (
        mine is not None
        and user.member is not None
        and verified_relation(order.elder, user.member) is not None
    )


def orders_open_for(volunteer: Member, *, now: dt.datetime | None = None) -> list[ServiceOrder]:
    """Open requests this volunteer may take: in their own community or a neighbouring one (same street),
    not their own, still ahead, and only categories they are certified for and old enough to serve in."""
    now = now or clock.now()
    home = volunteer.home_region
    near = Q(region=home)
    if home.parent_id is not None:
        near |= Q(region__parent_id=home.parent_id)
    candidates = (
        ServiceOrder.objects.filter(near, status=Status.OPEN, window_end__gt=now)
        .exclude(elder=volunteer)
        .select_related(*_RELATED)
        .order_by("window_start", "pk")[:200]
    )
    # One policy lookup per community and day, and the volunteer's certifications read once, whatever the
    # number of requests.
    policies: dict[tuple[int, dt.date], Policy | None] = {}
    live = Certification.objects.filter(member=volunteer, revoked_at__isnull=True)
    certified: dict[str, dt.date | None] = dict(live.values_list("code", "valid_until"))
    eligible = []
    for order in candidates:
        day = timezone.localtime(order.window_start).date()
        if (order.region_id, day) not in policies:
            policies[(order.region_id, day)] = policy_in_force(order.region, day)
        policy = policies[(order.region_id, day)]
        if policy is None:
            continue
        age = age_of(volunteer, day)
        if age is None or age < policy.min_volunteer_age:
            continue
        needed = order.category.requires_certification
        if needed and not _valid_on(certified, needed, day):
            continue
        eligible.append(order)
    # nearest first: their own community, then the neighbouring ones; soonest first within each
    return sorted(eligible, key=lambda o: (o.region_id != home.pk, o.window_start, o.pk))


def _valid_on(certified: dict[str, dt.date | None], code: str, day: dt.date) -> bool:
    if code not in certified:
        return False
    until = certified[code]
    return until is None or until >= day


def orders_of_volunteer(volunteer: Member) -> QuerySet[ServiceOrder]:
    return (
        ServiceOrder.objects.filter(volunteer=volunteer).select_related(*_RELATED).order_by("-window_start")
    )


def orders_of_elder(elder: Member) -> QuerySet[ServiceOrder]:
    return ServiceOrder.objects.filter(elder=elder).select_related(*_RELATED).order_by("-window_start")


def orders_for(
    user: User,
    *,
    status: str = "",
    category: str = "",
    region: Region | None = None,
    starts_from: dt.date | None = None,
    starts_until: dt.date | None = None,
    flagged: bool = False,
) -> QuerySet[ServiceOrder]:
    """Every service ``order_get`` lets the user open: those of their staff subtree, those they receive, give
    or pay for, and those of the elders of their verified family. Filtered by status, category code, region
    (its whole subtree), the local days the service starts on (``starts_from`` to ``starts_until``, both
    included) and, for staff, the flagged ones (an overlap, or escalated to the station)."""
    qs = ServiceOrder.objects.all()
    if access_paths(user, Perm.CARE_VIEW) is not None:  # not a platform administrator
        seen = access_region_q(user, Perm.CARE_VIEW, "region__path")
        mine = user.member_id
        if mine is not None:
            family = FamilyBond.objects.filter(status=BondStatus.VERIFIED)
            seen |= (
                Q(elder_id=mine)
                | Q(volunteer_id=mine)
                | Q(payer_id=mine)
                | Q(elder_id__in=family.filter(relative_id=mine).values("member_id"))
                | Q(elder_id__in=family.filter(member_id=mine).values("relative_id"))
            )
        qs = qs.filter(seen)
    if status:
        qs = qs.filter(status=status)
    if category:
        qs = qs.filter(category__code=category)
    if region is not None:
        qs = qs.filter(region__path__startswith=region.path)
    if starts_from is not None:
        qs = qs.filter(window_start__gte=_local_midnight(starts_from))
    if starts_until is not None:
        qs = qs.filter(window_start__lt=_local_midnight(starts_until + dt.timedelta(days=1)))
    if flagged:
        qs = qs.filter(Q(overlap_flag=True) | Q(escalated_at__isnull=False))
    return qs.select_related(*_RELATED).order_by("-window_start", "-pk")


def _local_midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def orders_visible(
    user: User, *, status: str = "", community: str = "", category: str = "", flagged: bool = False
) -> QuerySet[ServiceOrder]:
    """Services of the staff member's subtree, filtered as the console asks."""
    qs = ServiceOrder.objects.filter(access_region_q(user, Perm.CARE_VIEW, "region__path")).select_related(
        *_RELATED
    )
    if status:
        qs = qs.filter(status=status)
    if community:
        qs = qs.filter(region__code=community)
    if category:
        qs = qs.filter(category__code=category)
    if flagged:
        qs = qs.filter(Q(overlap_flag=True) | Q(escalated_at__isnull=False))
    return qs.order_by("-window_start", "-pk")


def review_queue(
    user: User, *, community: str = "", category: str = "", flagged: bool = False
) -> QuerySet[ServiceOrder]:
    """What waits for the station: confirmed services to approve, and completed ones escalated because
    nobody confirmed them. Oldest first."""
    qs = ServiceOrder.objects.filter(access_region_q(user, Perm.CARE_REVIEW, "region__path")).filter(
        Q(status=Status.CONFIRMED) | Q(status=Status.COMPLETED, escalated_at__isnull=False)
    )
    if community:
        qs = qs.filter(region__code=community)
    if category:
        qs = qs.filter(category__code=category)
    if flagged:
        qs = qs.filter(overlap_flag=True)
    return qs.select_related(*_RELATED).order_by("checked_in_at", "pk")


def disputes_open(user: User) -> QuerySet[Dispute]:
    return (
        Dispute.objects.filter(
            access_region_q(user, Perm.CARE_REVIEW, "order__region__path"), resolved_at__isnull=True
        )
        .select_related("order", "order__elder", "order__volunteer", "order__category", "raised_by")
        .order_by("opened_at")
    )


def dispute_get(user: User, dispute_id: int) -> Dispute:
    dispute = Dispute.objects.select_related("order", "order__region").filter(pk=dispute_id).first()
    if dispute is None or not access_has(user, Perm.CARE_VIEW, dispute.order.region):
        raise NotFound(code="care_dispute_not_found")
    return dispute


def card_current(elder: Member) -> ServiceCard | None:
    return ServiceCard.objects.filter(elder=elder, revoked_at__isnull=True).first()


def card_from_token(token: str) -> ServiceCard:
    """The live card a scanned QR token names. An altered token or a replaced card is refused clearly."""
    serial = cards.card_serial_from_token(token)
    card = ServiceCard.objects.select_related("elder").filter(serial=serial).first()
    if card is None or card.revoked_at is not None:
        raise ValidationFailed.field(
            "token",
            _("This service card was replaced; use the elder's current card."),
            code="care_card_revoked",
        )
    return card


def elder_has_pin(elder: Member) -> bool:
    return ElderSecret.objects.filter(elder=elder).exclude(pin_hash="").exists()


def certifications_of(member: Member) -> QuerySet[Certification]:
    return Certification.objects.filter(member=member, revoked_at__isnull=True).order_by("code")


def budgets_visible(user: User) -> QuerySet[FundBudget]:
    """Budgets in the user's subtree, and those above it that pay for its elders (a station sees its
    district's budget)."""
    paths = access_paths(user, Perm.CARE_VIEW)
    qs = FundBudget.objects.all()
    if paths is not None:
        above = {prefix for path in paths for prefix in path_prefixes(path)}
        qs = qs.filter(access_region_q(user, Perm.CARE_VIEW, "region__path") | Q(region__path__in=above))
    return qs.select_related("region").order_by("-year", "region__path")


@dataclass(frozen=True)
class StarLevel:
    stars: int
    hours: int
    minutes: int
    next_threshold_hours: int | None


# Credits that record service given: on the platform, and carried over from the paper record cards.
SERVICE_KINDS = [TransactionKind.SERVICE_CREDIT, TransactionKind.OPENING]


def credited_service_minutes(member: Member) -> int:
    """Minutes credited to the member for services they gave (here, or before the platform, carried over
    from their paper record card as an opening balance), less any such credit reversed. Minutes they paid
    for services they received, or were given, do not count."""
    if member.account_id is None:
        return 0
    base = Posting.objects.filter(account_id=member.account_id)
    earned = base.filter(transaction__kind__in=SERVICE_KINDS, amount__gt=0)
    taken_back = base.filter(
        transaction__kind=TransactionKind.REVERSAL,
        transaction__reverses__kind__in=SERVICE_KINDS,
        amount__lt=0,
    )
    total = (earned.aggregate(t=Sum("amount"))["t"] or 0) + (taken_back.aggregate(t=Sum("amount"))["t"] or 0)
    return int(total)


def star_level(member: Member, *, on: dt.date | None = None) -> StarLevel:
    """The national star level from cumulative credited hours (thresholds from the policy in force)."""
    minutes = credited_service_minutes(member)
    hours = minutes // 60
    day = on or clock.today()
    policy = policy_in_force(member.home_region, day)
    thresholds = sorted(policy.star_thresholds_hours if policy else NATIONAL_STAR_THRESHOLDS_HOURS)
    stars = sum(1 for t in thresholds if hours >= t)
    upcoming = next((t for t in thresholds if hours < t), None)
    return StarLevel(stars=stars, hours=hours, minutes=minutes, next_threshold_hours=upcoming)


@dataclass(frozen=True)
class Catalogue:
    region: Region
    day: dt.date
    policy: Policy | None
    categories: list[ServiceCategory]


def catalogue(region: Region, *, on: dt.date | None = None) -> Catalogue:
    """The service categories of the policy in force for ``region`` on a day: tier, coefficient and the
    certification each needs. Services are credited under the version in force on the day they happened."""
    day = on or clock.today()
    policy = policy_in_force(region, day)
    categories = list(policy.categories.order_by("tier", "position")) if policy else []
    return Catalogue(region=region, day=day, policy=policy, categories=categories)


def orders_coming(elder: Member, *, days: int = 14) -> QuerySet[ServiceOrder]:
    """The elder's services still to come (asked for, arranged or under way), soonest first."""
    now = clock.now()
    return (
        ServiceOrder.objects.filter(
            elder=elder,
            status__in=[Status.OPEN, Status.ASSIGNED, Status.IN_PROGRESS],
            window_end__gte=now,
            window_start__lte=now + dt.timedelta(days=days),
        )
        .select_related(*_RELATED)
        .order_by("window_start", "pk")
    )


def orders_to_confirm(elder: Member) -> QuerySet[ServiceOrder]:
    """Visits done that the elder has not confirmed yet."""
    return (
        ServiceOrder.objects.filter(elder=elder, status=Status.COMPLETED)
        .select_related(*_RELATED)
        .order_by("checked_out_at", "pk")
    )


# --- dispatch -----------------------------------------------------------------------------------------------


def orders_to_dispatch(user: User) -> QuerySet[ServiceOrder]:
    """Open requests of the staff member's subtree that are still ahead, soonest first: the dispatch board."""
    return (
        ServiceOrder.objects.filter(
            access_region_q(user, Perm.CARE_MANAGE, "region__path"),
            status=Status.OPEN,
            window_end__gt=clock.now(),
        )
        .select_related(*_RELATED)
        .order_by("window_start", "pk")
    )


@dataclass(frozen=True)
class Suggestion:
    volunteer: Member
    nearness: int  # 0: the service's community; 1: a neighbouring one (same street); 2: elsewhere in scope
    credited_this_month: int  # minutes credited for services given since the first of this month


def _born_by(day: dt.date, age: int) -> dt.date:
    """The latest birth date of someone who is ``age`` or older on ``day``."""
    try:
        return day.replace(year=day.year - age)
    except ValueError:  # 29 February, in a year without one
        return day.replace(year=day.year - age, day=28)


def volunteers_for(order: ServiceOrder, user: User, *, limit: int = 5) -> list[Suggestion]:
    """Volunteers the staff member could assign to ``order``, best first: those the rules allow (as when staff
    assign, so not only neighbours) and who have no assigned or started service at that time; from its own
    community, then the neighbouring ones, then the rest of the staff member's scope; within each, whoever was
    credited least this month first, so that work is shared.

    The rules are applied in the query, so that the ``limit`` best come back whatever the number of
    volunteers, and checked again with ``rules.volunteer_problems`` on those few. Queries: the policy, the
    category and the candidates, plus one per suggestion where the category needs a certification."""

    day = timezone.localtime(order.window_start).date()
    policy = policy_in_force(order.region, day)
    category = policy.categories.filter(code=order.category.code).first() if policy else None
    if policy is None or category is None:
        return []
    busy = ServiceOrder.objects.filter(
        status__in=BUSY,
        volunteer__isnull=False,
        window_start__lt=order.window_end,
        window_end__gt=order.window_start,
    ).values("volunteer_id")
    month_start = timezone.localtime(clock.now()).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    credited = (
        Posting.objects.filter(account_id=OuterRef("account_id"), transaction__created_at__gte=month_start)
        .filter(
            Q(transaction__kind=TransactionKind.SERVICE_CREDIT, amount__gt=0)
            | Q(
                transaction__kind=TransactionKind.REVERSAL,
                transaction__reverses__kind=TransactionKind.SERVICE_CREDIT,
                amount__lt=0,
            )
        )
        .values("account_id")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    nearness = [When(home_region_id=order.region_id, then=Value(0))]
    if order.region.parent_id is not None:
        nearness.append(When(home_region__parent_id=order.region.parent_id, then=Value(1)))
    candidates = (
        Member.objects.filter(
            access_region_q(user, Perm.PEOPLE_VIEW, "home_region__path"),
            is_volunteer=True,
            is_active=True,
            account__isnull=False,
            birth_date__lte=_born_by(day, policy.min_volunteer_age),
        )
        .exclude(pk__in=[pk for pk in (order.elder_id, order.payer_id) if pk is not None])
        .exclude(pk__in=busy)
    )
    needed = category.requires_certification
    if needed:
        candidates = candidates.filter(
            pk__in=Certification.objects.filter(
                Q(valid_until__isnull=True) | Q(valid_until__gte=day), code=needed, revoked_at__isnull=True
            ).values("member_id")
        )
    ranked = (
        candidates.annotate(
            nearness=Case(*nearness, default=Value(2), output_field=IntegerField()),
            credited_this_month=Coalesce(
                Subquery(credited, output_field=BigIntegerField()), Value(0), output_field=BigIntegerField()
            ),
        )
        .select_related("home_region")
        .order_by("nearness", "credited_this_month", "name", "pk")[:limit]
    )
    return [
        Suggestion(volunteer=m, nearness=m.nearness, credited_this_month=int(m.credited_this_month))
        for m in ranked
        if not volunteer_problems(
            volunteer=m,
            elder=order.elder,
            place=order.region,
            policy=policy,
            category=category,
            day=day,
            nearby_required=False,
            payer=order.payer,
        )
    ]
