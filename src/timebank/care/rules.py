"""The rules a service must meet, read from the jurisdiction policy in force. Each check returns what is
wrong in words a station worker can act on, naming the rule, or raises ``ValidationFailed`` for one field.
Nothing here writes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from timebank.care.models import Certification, Funding
from timebank.common.errors import ValidationFailed
from timebank.common.kinship import Relation
from timebank.people.models import BondStatus, FamilyBond, Member, PriorityStatus
from timebank.people.validators import age_on
from timebank.regions.models import Policy, Region, Rounding, ServiceCategory
from timebank.regions.selectors import policy_in_force

# One visit is at most this long; anything longer is a mistake in the times (or two visits).
MAX_SERVICE_MINUTES = 12 * 60
# Requests may be posted this far ahead.
MAX_DAYS_AHEAD = 366
# A volunteer may check in this long before the window opens.
EARLY_CHECK_IN_MINUTES = 60


@dataclass(frozen=True)
class Problem:
    field: str
    message: str
    code: str


def fail(problem: Problem) -> ValidationFailed:
    return ValidationFailed.field(problem.field, problem.message, code=problem.code)


def fail_all(problems: list[Problem]) -> ValidationFailed:
    fields: dict[str, list[str]] = {}
    for p in problems:
        fields.setdefault(p.field, []).append(p.message)
    first = problems[0]
    codes = {p.code for p in problems}
    return ValidationFailed(first.message, fields=fields, code=first.code if len(codes) == 1 else None)


def local_day(moment: dt.datetime) -> dt.date:
    return timezone.localtime(moment).date()


def policy_for(region: Region, day: dt.date) -> Policy:
    policy = policy_in_force(region, day)
    if policy is None:
        raise ValidationFailed.field(
            "region",
            _("No jurisdiction policy is in force for %(region)s on %(day)s; an operator must load one.")
            % {"region": region.display_name, "day": day.isoformat()},
            code="care_no_policy",
        )
    return policy


def category_in(policy: Policy, code: str) -> ServiceCategory:
    category = policy.categories.filter(code=code).first()
    if category is None:
        raise ValidationFailed.field(
            "category",
            _("“%(code)s” is not a service category of %(policy)s.") % {"code": code, "policy": policy.name},
            code="care_unknown_category",
        )
    return category


def rounded(minutes: int, policy: Policy) -> int:
    """Service time rounded as the policy says (to whole units of ``rounding_minutes``)."""
    unit = policy.rounding_minutes
    if policy.rounding_mode == Rounding.UP:
        return -(-minutes // unit) * unit
    if policy.rounding_mode == Rounding.NEAREST:
        return (minutes + unit // 2) // unit * unit
    return minutes // unit * unit


def weighted(minutes: int, permille: int) -> int:
    """Minutes × the tier's coefficient, in whole minutes (a fraction of a minute is not credited)."""
    return minutes * permille // 1000


def weighted_ceiling(minutes: int, permille: int) -> int:
    """The same, rounded up: what to hold so that the credit always fits inside the hold."""
    return -(-minutes * permille // 1000)


def window_minutes(start: dt.datetime, end: dt.datetime) -> int:
    return int((end - start).total_seconds() // 60)


def age_of(member: Member, day: dt.date) -> int | None:
    return age_on(member.birth_date, day) if member.birth_date else None


def has_verified_priority(member: Member) -> bool:
    return PriorityStatus.objects.filter(member=member, verified_at__isnull=False).exists()


def verified_relation(holder: Member, other: Member) -> str | None:
    """What ``other`` is to ``holder`` by a verified family bond, or None."""
    bond = (
        FamilyBond.objects.filter(status=BondStatus.VERIFIED)
        .filter(Q(member=holder, relative=other) | Q(member=other, relative=holder))
        .first()
    )
    if bond is None:
        return None
    return bond.seen_from(holder)[1]


def withdrawal_problem(policy: Policy, holder: Member, day: dt.date) -> Problem | None:
    """Whether ``holder`` may spend their own savings under ``policy`` (the withdrawal age rule)."""
    age = age_of(holder, day)
    if age is None:
        return Problem(
            "funding",
            _("%(name)s's birth date is not recorded, so the withdrawal age of %(policy)s cannot be checked.")
            % {"name": holder.name, "policy": policy.name},
            "care_withdrawal_age_unknown",
        )
    if age >= policy.withdrawal_age:
        return None
    hardship = policy.hardship_withdrawal_age
    if hardship is not None and age >= hardship and has_verified_priority(holder):
        return None
    if hardship is not None:
        message = _(
            "Under %(policy)s holders spend their savings from age %(age)d (from %(hardship)d for verified "
            "priority elders); %(name)s is %(actual)d."
        ) % {
            "policy": policy.name,
            "age": policy.withdrawal_age,
            "hardship": hardship,
            "name": holder.name,
            "actual": age,
        }
    else:
        message = _(
            "Under %(policy)s holders spend their savings from age %(age)d; %(name)s is %(actual)d."
        ) % {
            "policy": policy.name,
            "age": policy.withdrawal_age,
            "name": holder.name,
            "actual": age,
        }
    return Problem("funding", message, "care_withdrawal_age")


def funding_problems(
    *, policy: Policy, elder: Member, funding: str, payer: Member | None, day: dt.date
) -> list[Problem]:
    """Who pays, checked against the policy: the withdrawal age for own savings; a verified bond of a relation
    the policy allows for a relative's savings; a verified priority elder for the pool and the public fund."""
    if funding not in Funding.values:
        return [Problem("funding", _("Choose who pays."), "care_unknown_funding")]
    if funding == Funding.OWN:
        problem = withdrawal_problem(policy, elder, day)
        return [problem] if problem else []
    if funding == Funding.FAMILY:
        if payer is None:
            return [Problem("payer", _("Choose the family member who pays."), "care_payer_missing")]
        if payer.pk == elder.pk:
            return [
                Problem(
                    "payer", _("Paying from the elder's own savings is “own savings”."), "care_payer_self"
                )
            ]
        relation = verified_relation(payer, elder)
        if relation is None:
            return [
                Problem(
                    "payer",
                    _("%(payer)s and %(elder)s have no verified family bond.")
                    % {"payer": payer.name, "elder": elder.name},
                    "care_no_bond",
                )
            ]
        allowed = set(policy.transfer_relations)
        if relation not in allowed and not (relation == Relation.SPOUSE and policy.spouse_may_withdraw):
            return [
                Problem(
                    "payer",
                    _("%(policy)s does not let savings pass to a %(relation)s.")
                    % {"policy": policy.name, "relation": Relation(relation).label},
                    "care_relation_not_allowed",
                )
            ]
        minimum = policy.transfer_recipient_min_age
        age = age_of(elder, day)
        if minimum is not None and (age is None or age < minimum):
            return [
                Problem(
                    "payer",
                    _("%(policy)s lets a relative's savings pay only for someone aged %(age)d or more.")
                    % {"policy": policy.name, "age": minimum},
                    "care_recipient_age",
                )
            ]
        return []
    if not has_verified_priority(elder):
        return [
            Problem(
                "funding",
                _(
                    "Only verified priority elders are served from the pool or the public fund; %(name)s "
                    "is not one."
                )
                % {"name": elder.name},
                "care_not_priority",
            )
        ]
    return []


def certification_valid(volunteer: Member, code: str, day: dt.date) -> bool:
    return Certification.objects.filter(
        Q(valid_until__isnull=True) | Q(valid_until__gte=day),
        member=volunteer,
        code=code,
        revoked_at__isnull=True,
    ).exists()


def is_nearby(home: Region, place: Region) -> bool:
    """Same community, or another community of the same street or town."""
    return home.pk == place.pk or (home.parent_id is not None and home.parent_id == place.parent_id)


def volunteer_problems(
    *,
    volunteer: Member,
    elder: Member,
    place: Region,
    policy: Policy,
    category: ServiceCategory,
    day: dt.date,
    nearby_required: bool,
    payer: Member | None = None,
) -> list[Problem]:
    """Whether ``volunteer`` may take this service: a registered, active volunteer with a time account, not
    the elder nor the one who pays, old enough under the policy, certified where the category requires it,
    and (when accepting themselves) living in or next to the community."""
    problems: list[Problem] = []
    if not volunteer.is_volunteer or not volunteer.is_active or volunteer.account_id is None:
        problems.append(
            Problem(
                "volunteer",
                _("%(name)s is not a registered, active volunteer.") % {"name": volunteer.name},
                "care_not_volunteer",
            )
        )
    if volunteer.pk == elder.pk:
        problems.append(Problem("volunteer", _("Nobody serves themselves."), "care_self_service"))
    elif payer is not None and volunteer.pk == payer.pk:
        problems.append(
            Problem(
                "volunteer",
                _("%(name)s pays for this service, so someone else must give it.") % {"name": volunteer.name},
                "care_payer_serves",
            )
        )
    age = age_of(volunteer, day)
    if age is None or age < policy.min_volunteer_age:
        problems.append(
            Problem(
                "volunteer",
                _("Volunteers under %(policy)s are at least %(age)d years old.")
                % {"policy": policy.name, "age": policy.min_volunteer_age},
                "care_volunteer_age",
            )
        )
    if category.requires_certification and not certification_valid(
        volunteer, category.requires_certification, day
    ):
        problems.append(
            Problem(
                "volunteer",
                _("“%(category)s” needs the certification “%(cert)s”, which %(name)s does not hold.")
                % {
                    "category": category.display_name,
                    "cert": category.requires_certification,
                    "name": volunteer.name,
                },
                "care_certification_required",
            )
        )
    if nearby_required and not is_nearby(volunteer.home_region, place):
        problems.append(
            Problem(
                "volunteer",
                _(
                    "Volunteers take services in their own or a neighbouring community; ask the station to "
                    "assign this one."
                ),
                "care_not_nearby",
            )
        )
    return problems
