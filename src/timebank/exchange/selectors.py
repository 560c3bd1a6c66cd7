"""Reads of the withdrawal side: what a member may redeem, the orders a shop serves, purchases, the pool,
and how far a guarantee fund covers the minutes members hold."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Q, QuerySet, Sum

from timebank.care.rules import policy_for
from timebank.common import clock
from timebank.common.errors import NotFound
from timebank.exchange.models import (
    GuaranteeFund,
    Merchant,
    Product,
    ProductKind,
    Purchase,
    Redemption,
    RedemptionStatus,
)
from timebank.ledger.models import Account, AccountKind
from timebank.ledger.services import area_of
from timebank.people.access import Perm, access_has, access_paths, access_region_q
from timebank.people.models import Member, User
from timebank.regions.models import Region
from timebank.regions.selectors import region_get


def products_for(member: Member) -> QuerySet[Product]:
    """What the member may order: special rights, and goods where their policy allows goods, at active
    merchants of their currency area with stock left."""
    policy = policy_for(member.home_region, clock.today())
    qs = Product.objects.filter(
        is_active=True,
        merchant__is_active=True,
        merchant__region__path__startswith=f"{area_of(member.home_region)}/",
        stock__gt=0,
    )
    if not policy.goods_allowed:
        qs = qs.filter(kind=ProductKind.RIGHT)
    return qs.select_related("merchant", "merchant__region").order_by("kind", "price_minutes", "name")


def merchants_of(user: User) -> QuerySet[Merchant]:
    """The shops a user works at."""
    return Merchant.objects.filter(staff=user, is_active=True).select_related("region").order_by("name")


def merchants_visible(user: User) -> QuerySet[Merchant]:
    return Merchant.objects.filter(
        access_region_q(user, Perm.EXCHANGE_MANAGE, "region__path")
    ).select_related("region")


def redemptions_of(member: Member) -> QuerySet[Redemption]:
    return Redemption.objects.filter(member=member).select_related("product", "product__merchant")


def redemption_get(user: User, redemption_id: int) -> Redemption:
    """A redemption its member, the shop or staff of the member's community may see."""
    redemption = (
        Redemption.objects.select_related("member", "member__home_region", "product", "product__merchant")
        .filter(pk=redemption_id)
        .first()
    )
    if redemption is None:
        raise NotFound(code="exchange_not_found")
    if (
        user.member_id == redemption.member_id
        or redemption.product.merchant.staff.filter(pk=user.pk).exists()
    ):
        return redemption
    if access_has(user, Perm.EXCHANGE_MANAGE, redemption.member.home_region):
        return redemption
    raise NotFound(code="exchange_not_found")


def redemptions_for_shop(merchant: Merchant) -> QuerySet[Redemption]:
    return Redemption.objects.filter(product__merchant=merchant).select_related("member", "product")


def rights_awaiting(user: User) -> QuerySet[Redemption]:
    return Redemption.objects.filter(
        access_region_q(user, Perm.EXCHANGE_MANAGE, "member__home_region__path"), status="awaiting"
    ).select_related("member", "product", "product__merchant")


def purchases_visible(user: User) -> QuerySet[Purchase]:
    return Purchase.objects.filter(
        access_region_q(user, Perm.EXCHANGE_MANAGE, "member__home_region__path")
    ).select_related("member", "cashier")


def pool_of(region: Region) -> Account | None:
    policy = policy_for(region, clock.today())
    return Account.objects.filter(kind=AccountKind.POOL, region=policy.region).first()


@dataclass(frozen=True)
class Coverage:
    region: Region
    fund: GuaranteeFund | None
    outstanding_minutes: int  # what members of the region hold
    purchased_minutes: int  # of which bought with money (reported apart from volunteered time)
    covered_minutes: int  # what the guarantee buys at its cost of an hour of care

    @property
    def ratio_percent(self) -> int | None:
        if not self.outstanding_minutes:
            return None
        return self.covered_minutes * 100 // self.outstanding_minutes


def coverage(region: Region) -> Coverage:
    """The guarantee fund behind ``region`` (its own or the nearest above it) against the minutes its members
    hold: the answer to "could these deposits be honoured?"."""
    fund = (
        GuaranteeFund.objects.filter(region__path__in=region.ancestor_paths)
        .order_by("-region__depth", "-recorded_at", "-id")
        .first()
    )
    held = Account.objects.filter(
        kind=AccountKind.MEMBER, member__home_region__path__startswith=region.path, balance__gt=0
    ).aggregate(total=Sum("balance"))["total"]
    bought = Purchase.objects.filter(member__home_region__path__startswith=region.path).aggregate(
        total=Sum("minutes")
    )["total"]
    covered = fund.value_fen * 60 // fund.fen_per_hour if fund else 0
    return Coverage(
        region=region,
        fund=fund,
        outstanding_minutes=int(held or 0),
        purchased_minutes=int(bought or 0),
        covered_minutes=int(covered),
    )


def members_who_may_receive(giver: Member) -> QuerySet[Member]:
    """The giver's relatives and friends with a verified bond (the policy decides who of them may receive)."""
    from timebank.people.models import BondStatus, FamilyBond

    bonds = FamilyBond.objects.filter(Q(member=giver) | Q(relative=giver), status=BondStatus.VERIFIED)
    ids = {b.relative_id if b.member_id == giver.pk else b.member_id for b in bonds}
    return Member.objects.filter(pk__in=ids).order_by("name")


# --- for the API: the same rules, with the filters staff use ---------------------------------------------


def _in_scope_or(user: User, perm: Perm, path_field: str, other: Q) -> Q:
    """Rows in the user's scope for ``perm``, or matching ``other`` (everything for platform admins)."""
    if access_paths(user, perm) is None:
        return Q()
    return access_region_q(user, perm, path_field) | other


def exchange_region_get(user: User, code: str) -> Region:
    """A region whose exchange the user manages; another district's region is "not found"."""
    region = region_get(code)
    if not access_has(user, Perm.EXCHANGE_MANAGE, region):
        raise NotFound(code="region_not_found")
    return region


def merchants_for(user: User) -> QuerySet[Merchant]:
    """The shops a user may look into: those of their staff scope, and the active ones they work at."""
    return (
        Merchant.objects.filter(
            _in_scope_or(
                user, Perm.EXCHANGE_MANAGE, "region__path", Q(pk__in=merchants_of(user).values("pk"))
            )
        )
        .select_related("region")
        .order_by("region__path", "name")
    )


def merchant_get(user: User, merchant_id: int) -> Merchant:
    merchant = merchants_for(user).filter(pk=merchant_id).first()
    if merchant is None:
        raise NotFound(code="exchange_not_found")
    return merchant


def product_get(user: User, product_id: int) -> Product:
    """A product of a shop the user may look into (``merchants_for``)."""
    product = (
        Product.objects.filter(pk=product_id, merchant__in=merchants_for(user).values("pk"))
        .select_related("merchant", "merchant__region")
        .first()
    )
    if product is None:
        raise NotFound(code="exchange_not_found")
    return product


def redemptions_visible(
    user: User,
    *,
    status: str = "",
    merchant_id: int | None = None,
    member_id: int | None = None,
    region: Region | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> QuerySet[Redemption]:
    """The redemptions ``redemption_get`` shows the user — their own, their shops' and, for staff, those of
    members of their regions — optionally of one status, shop, member or region, ordered between two days."""
    own = Q(member_id=user.member_id) if user.member_id is not None else Q(pk__in=[])
    shops = Q(product__merchant__in=Merchant.objects.filter(staff=user).values("pk"))
    qs = Redemption.objects.filter(
        _in_scope_or(user, Perm.EXCHANGE_MANAGE, "member__home_region__path", own | shops)
    )
    if status:
        qs = qs.filter(status=status)
    if merchant_id is not None:
        qs = qs.filter(product__merchant_id=merchant_id)
    if member_id is not None:
        qs = qs.filter(member_id=member_id)
    if region is not None:
        qs = qs.filter(member__home_region__path__startswith=region.path)
    if since is not None:
        qs = qs.filter(created_at__date__gte=since)
    if until is not None:
        qs = qs.filter(created_at__date__lte=until)
    return qs.select_related("member", "product", "product__merchant")


def pickup_shown(user: User, redemption: Redemption) -> bool:
    """Whether the user is shown the order's pick-up code: the member, or staff who ordered for them, while
    it can still be picked up (never the shop, which must be shown the code by the member)."""
    return (
        redemption.status == RedemptionStatus.RESERVED
        and redemption.expires_at > clock.now()
        and (user.member_id == redemption.member_id or user.pk == redemption.ordered_by_id)
    )


def purchases_filtered(
    user: User,
    *,
    member_id: int | None = None,
    method: str = "",
    region: Region | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> QuerySet[Purchase]:
    """``purchases_visible``, optionally of one member, payment method or region, made between two days."""
    qs = purchases_visible(user)
    if member_id is not None:
        qs = qs.filter(member_id=member_id)
    if method:
        qs = qs.filter(method=method)
    if region is not None:
        qs = qs.filter(member__home_region__path__startswith=region.path)
    if since is not None:
        qs = qs.filter(created_at__date__gte=since)
    if until is not None:
        qs = qs.filter(created_at__date__lte=until)
    return qs
