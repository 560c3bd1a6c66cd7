"""The withdrawal side: transfers and gifts, donations to the mutual-aid pool and allocations from it, goods
and special rights with their pick-up codes, time bought with money, partner merchants and their products,
guarantee funds and coverage, and moving a member's home.

Each endpoint parses, calls one service or selector, and answers; who may do what is decided there. A request
that moves minutes (posts a ledger transaction, or places, takes or releases a hold) needs an
``Idempotency-Key``; other writes honour one when sent."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Schema, Status
from pydantic import Field

from timebank.api.common import Strict, caller, caller_member, page, region_or_none, staff_with
from timebank.api.main import api, idempotency_key, idempotent, scope_check
from timebank.common.errors import NotFound, ValidationFailed
from timebank.exchange import selectors
from timebank.exchange import services as exchange
from timebank.exchange.models import (
    GuaranteeFund,
    Merchant,
    PaymentMethod,
    Product,
    ProductKind,
    Purchase,
    Redemption,
    RedemptionStatus,
)
from timebank.ledger.selectors import account_balance
from timebank.people import selectors as people
from timebank.people.access import Perm
from timebank.people.models import Member, User
from timebank.regions.selectors import region_get

TAGS = ["exchange"]


def _holder(request: HttpRequest, member_id: int | None) -> Member:
    """The caller's own member record, or (for staff acting for a holder without a phone) the one named."""
    if member_id is None:
        return caller_member(request)
    return people.member_get(caller(request), member_id)


# --- transfers and gifts ------------------------------------------------------------------------------------


class TransferIn(Strict):
    receiver_id: int
    minutes: int = Field(gt=0, le=10**9)
    gift: bool = False
    note: str = Field("", max_length=200)


class TransferOut(Schema):
    transaction_id: int
    overflow_minutes: int


@api.post("/exchange/transfers", response={201: TransferOut}, tags=TAGS)
@idempotent()
def transfer(request: HttpRequest, payload: TransferIn) -> Status[Any]:
    """Transfer or give minutes to a relative or friend (the policy decides who may receive). Requires an
    Idempotency-Key: a retry returns the first answer; the same key with another body is a 409."""
    scope_check(request, "write")
    giver = caller_member(request)
    receiver = Member.objects.filter(pk=payload.receiver_id).first()
    if receiver is None:
        raise ValidationFailed.field(
            "receiver_id",
            _("No member with this number has a verified bond with you."),
            code="exchange_no_bond",
        )
    moved = exchange.transfer_create(
        actor=caller(request),
        giver=giver,
        receiver=receiver,
        minutes=payload.minutes,
        idempotency_key=idempotency_key(request),
        gift=payload.gift,
        note=payload.note,
    )
    return Status(201, {"transaction_id": moved.transaction_id, "overflow_minutes": moved.overflow})


# --- the mutual-aid pool ------------------------------------------------------------------------------------


class DonationIn(Strict):
    minutes: int
    member_id: int | None = Field(None, description="staff donating for a holder without a phone")


class DonationOut(Schema):
    transaction_id: int
    donated_minutes: int


@api.post("/exchange/donations", response={201: DonationOut}, tags=TAGS)
@idempotent()
def donation(request: HttpRequest, payload: DonationIn) -> Status[Any]:
    """Donate minutes to the mutual-aid pool of the giver's jurisdiction, where its policy takes donations.
    Requires an Idempotency-Key."""
    scope_check(request, "write")
    moved = exchange.donation_create(
        actor=caller(request),
        giver=_holder(request, payload.member_id),
        minutes=payload.minutes,
        idempotency_key=idempotency_key(request),
    )
    return Status(201, {"transaction_id": moved.transaction_id, "donated_minutes": payload.minutes})


class AllocationIn(Strict):
    elder_id: int
    minutes: int
    reason: str = Field(max_length=300)


@api.post("/exchange/pool/allocations", response={201: TransferOut}, tags=TAGS)
@idempotent()
def allocation(request: HttpRequest, payload: AllocationIn) -> Status[Any]:
    """Station staff give pool minutes to a verified priority elder of their region, saying why (the elder is
    told both). What exceeds a capped account stays in the pool. Requires an Idempotency-Key."""
    scope_check(request, "write")
    user = staff_with(request, Perm.EXCHANGE_MANAGE)
    moved = exchange.pool_allocate(
        actor=user,
        elder=people.member_get(user, payload.elder_id),
        minutes=payload.minutes,
        reason=payload.reason,
        idempotency_key=idempotency_key(request),
    )
    return Status(201, {"transaction_id": moved.transaction_id, "overflow_minutes": moved.overflow})


class PoolOut(Schema):
    region: str
    jurisdiction: str | None = Field(description="the region whose policy keeps this pool")
    balance_minutes: int
    held_minutes: int
    available_minutes: int


@api.get("/exchange/pool", response=PoolOut, tags=TAGS)
def pool(request: HttpRequest, region: str) -> dict[str, Any]:
    """The mutual-aid pool of the jurisdiction ``region`` (a code) belongs to, for staff of that region."""
    user = staff_with(request, Perm.EXCHANGE_MANAGE)
    found = selectors.exchange_region_get(user, region)
    account = selectors.pool_of(found)
    return {
        "region": found.code,
        "jurisdiction": account.region.code if account else None,
        "balance_minutes": account.balance if account else 0,
        "held_minutes": account.held if account else 0,
        "available_minutes": account.available if account else 0,
    }


# --- time bought with money ---------------------------------------------------------------------------------


class PurchaseIn(Strict):
    member_id: int
    amount_fen: int
    method: str = Field(max_length=20, description="cash, bank_card or mobile")
    receipt_number: str = Field(max_length=60)


class PurchaseOut(Schema):
    id: int
    member_id: int
    amount_fen: int
    method: str
    receipt_number: str
    fen_per_coin: int
    bought_minutes: int
    cashier_id: int
    transaction_id: int
    created_at: dt.datetime


class PurchasesOut(Schema):
    purchases: list[PurchaseOut]
    next_cursor: str | None


def _purchase_out(purchase: Purchase) -> dict[str, Any]:
    return {
        "id": purchase.pk,
        "member_id": purchase.member_id,
        "amount_fen": purchase.amount_fen,
        "method": purchase.method,
        "receipt_number": purchase.receipt_number,
        "fen_per_coin": purchase.fen_per_coin,
        "bought_minutes": purchase.minutes,
        "cashier_id": purchase.cashier_id,
        "transaction_id": purchase.transaction_id,
        "created_at": purchase.created_at,
    }


@api.post("/exchange/purchases", response={201: PurchaseOut}, tags=TAGS)
@idempotent()
def purchase(request: HttpRequest, payload: PurchaseIn) -> Status[Any]:
    """A cashier records minutes a member of their region bought with money, at the policy's price: the amount
    in fen must buy whole minutes; a receipt number is used once (the same receipt again is the same
    purchase). Requires an Idempotency-Key."""
    scope_check(request, "write")
    user = staff_with(request, Perm.EXCHANGE_MANAGE)
    recorded = exchange.purchase_record(
        actor=user,
        member=people.member_get(user, payload.member_id),
        amount_fen=payload.amount_fen,
        method=payload.method,
        receipt_number=payload.receipt_number,
    )
    return Status(201, _purchase_out(recorded))


@api.get("/exchange/purchases", response=PurchasesOut, tags=TAGS)
def purchases(
    request: HttpRequest,
    member_id: int | None = None,
    method: PaymentMethod | None = None,
    region: str = "",
    since: dt.date | None = None,
    until: dt.date | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """Purchases with money by members of the staff member's regions, newest first; optionally of one member,
    payment method or region (a code), made between two days (inclusive)."""
    user = staff_with(request, Perm.EXCHANGE_MANAGE)
    qs = selectors.purchases_filtered(
        user,
        member_id=member_id,
        method=method or "",
        region=region_or_none(region),
        since=since,
        until=until,
    )
    rows, next_cursor = page(qs, cursor, limit, _purchase_out)
    return {"purchases": rows, "next_cursor": next_cursor}


# --- merchants and their products ---------------------------------------------------------------------------


class MerchantOut(Schema):
    id: int
    name: str
    region: str
    address: str
    opening_hours: str
    is_active: bool


class MerchantsOut(Schema):
    merchants: list[MerchantOut]
    next_cursor: str | None


class ProductOut(Schema):
    id: int
    merchant_id: int
    merchant_name: str
    kind: str
    name: str
    name_en: str
    price_minutes: int
    stock: int
    is_active: bool


class ProductsOut(Schema):
    products: list[ProductOut]
    next_cursor: str | None


class MerchantDetailOut(MerchantOut):
    products: list[ProductOut]


def _merchant_out(merchant: Merchant) -> dict[str, Any]:
    return {
        "id": merchant.pk,
        "name": merchant.name,
        "region": merchant.region.code,
        "address": merchant.address,
        "opening_hours": merchant.opening_hours,
        "is_active": merchant.is_active,
    }


def _product_out(product: Product) -> dict[str, Any]:
    return {
        "id": product.pk,
        "merchant_id": product.merchant_id,
        "merchant_name": product.merchant.name,
        "kind": product.kind,
        "name": product.name,
        "name_en": product.name_en,
        "price_minutes": product.price_minutes,
        "stock": product.stock,
        "is_active": product.is_active,
    }


@api.get("/exchange/merchants", response=MerchantsOut, tags=TAGS)
def merchants(
    request: HttpRequest, region: str = "", cursor: str | None = None, limit: int = 50
) -> dict[str, Any]:
    """Partner merchants of the staff member's regions and the shops the caller works at, newest first;
    optionally those in one region (a code). Members find what they may order under ``/exchange/products``."""
    qs = selectors.merchants_for(caller(request))
    if region:
        qs = qs.filter(region__path__startswith=region_get(region).path)
    rows, next_cursor = page(qs, cursor, limit, _merchant_out)
    return {"merchants": rows, "next_cursor": next_cursor}


@api.get("/exchange/merchants/{merchant_id}", response=MerchantDetailOut, tags=TAGS)
def merchant_detail(request: HttpRequest, merchant_id: int) -> dict[str, Any]:
    """A merchant with all its products, offered or not, and their stock (for its clerks and staff)."""
    merchant = selectors.merchant_get(caller(request), merchant_id)
    products = merchant.products.select_related("merchant").order_by("kind", "name")
    return {**_merchant_out(merchant), "products": [_product_out(p) for p in products]}


class MerchantIn(Strict):
    name: str = Field(max_length=100)
    region: str = Field(max_length=12, description="the code of the merchant's region")
    address: str = Field("", max_length=200)
    opening_hours: str = Field("", max_length=200)


@api.post("/exchange/merchants", response={201: MerchantOut}, tags=TAGS)
@idempotent(required=False)
def merchant_create(request: HttpRequest, payload: MerchantIn) -> Status[Any]:
    """An operator adds a partner merchant in their region."""
    scope_check(request, "write")
    user = staff_with(request, Perm.MERCHANTS_MANAGE)
    merchant = exchange.merchant_create(
        actor=user,
        name=payload.name,
        region=region_get(payload.region),
        address=payload.address,
        opening_hours=payload.opening_hours,
    )
    return Status(201, _merchant_out(merchant))


class ClerkIn(Strict):
    username: str = Field(max_length=150, description="the shop assistant's sign-in")


class ClerkOut(Schema):
    merchant_id: int
    user_id: int
    username: str


@api.post("/exchange/merchants/{merchant_id}/clerks", response={201: ClerkOut}, tags=TAGS)
@idempotent(required=False)
def merchant_clerk_add(request: HttpRequest, merchant_id: int, payload: ClerkIn) -> Status[Any]:
    """An operator lets a shop assistant's sign-in hand goods over and keep the stock of this merchant."""
    scope_check(request, "write")
    user = staff_with(request, Perm.MERCHANTS_MANAGE)
    merchant = selectors.merchant_get(user, merchant_id)
    # as the web's form: no selector finds a sign-in by name; this reads only whether an active one exists
    clerk = User.objects.filter(username=payload.username.strip(), is_active=True).first()
    if clerk is None:
        raise ValidationFailed.field("username", _("No sign-in with this username."), code="exchange_no_user")
    exchange.merchant_staff_add(actor=user, merchant=merchant, user=clerk)
    return Status(201, {"merchant_id": merchant.pk, "user_id": clerk.pk, "username": clerk.get_username()})


class ProductIn(Strict):
    kind: Literal["goods", "right"] = "goods"
    name: str = Field(max_length=100)
    name_en: str = Field("", max_length=150)
    price_minutes: int
    stock: int
    is_active: bool = True


def _product_save(
    request: HttpRequest, merchant: Merchant, product: Product | None, payload: ProductIn
) -> Product:
    return exchange.product_save(
        actor=caller(request),
        merchant=merchant,
        product=product,
        kind=payload.kind,
        name=payload.name,
        name_en=payload.name_en,
        price_minutes=payload.price_minutes,
        stock=payload.stock,
        is_active=payload.is_active,
    )


@api.post("/exchange/merchants/{merchant_id}/products", response={201: ProductOut}, tags=TAGS)
@idempotent(required=False)
def product_create(request: HttpRequest, merchant_id: int, payload: ProductIn) -> Status[Any]:
    """The shop's assistant adds goods; an operator adds goods or special rights."""
    scope_check(request, "write")
    merchant = selectors.merchant_get(caller(request), merchant_id)
    return Status(201, _product_out(_product_save(request, merchant, None, payload)))


@api.put("/exchange/products/{product_id}", response=ProductOut, tags=TAGS)
@idempotent(required=False)
def product_change(request: HttpRequest, product_id: int, payload: ProductIn) -> dict[str, Any]:
    """Change a product (every field; stock set as given). The shop's assistant keeps its goods; special
    rights are kept by the operator."""
    scope_check(request, "write")
    user = caller(request)
    product = selectors.product_get(user, product_id)
    return _product_out(_product_save(request, product.merchant, product, payload))


class RestockIn(Strict):
    added: int


@api.post("/exchange/products/{product_id}/restock", response=ProductOut, tags=TAGS)
@idempotent(required=False)
def product_restock(request: HttpRequest, product_id: int, payload: RestockIn) -> dict[str, Any]:
    """Goods arrived: add them to the stock (an increment; send an Idempotency-Key to make a retry safe)."""
    scope_check(request, "write")
    user = caller(request)
    product = selectors.product_get(user, product_id)
    return _product_out(exchange.product_restock(actor=user, product=product, added=payload.added))


@api.get("/exchange/products", response=ProductsOut, tags=TAGS)
def products(
    request: HttpRequest,
    kind: ProductKind | None = None,
    merchant_id: int | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """What the member may order now: special rights, and goods where their policy allows goods, at active
    merchants of their currency area with stock left; optionally of one kind (goods, right) or merchant."""
    qs = selectors.products_for(caller_member(request))
    if kind:
        qs = qs.filter(kind=kind)
    if merchant_id is not None:
        qs = qs.filter(merchant_id=merchant_id)
    rows, next_cursor = page(qs, cursor, limit, _product_out)
    return {"products": rows, "next_cursor": next_cursor}


# --- goods and special rights -------------------------------------------------------------------------------


class RedemptionOut(Schema):
    id: int
    number: str
    status: str
    member_id: int
    member_name: str
    product_id: int
    product_name: str
    product_kind: str
    merchant_id: int
    quantity: int
    total_minutes: int
    created_at: dt.datetime
    expires_at: dt.datetime
    closed_at: dt.datetime | None
    reason: str
    transaction_id: int | None
    pickup_code: str | None = Field(
        description="to read out or type at the shop; shown to the member (or staff who ordered for them)"
    )
    pickup_token: str | None = Field(description="what the pick-up QR code carries; shown as pickup_code")


class RedemptionsOut(Schema):
    redemptions: list[RedemptionOut]
    next_cursor: str | None


def _redemption_out(user: User, redemption: Redemption) -> dict[str, Any]:
    shown = selectors.pickup_shown(user, redemption)
    return {
        "id": redemption.pk,
        "number": redemption.number,
        "status": redemption.status,
        "member_id": redemption.member_id,
        "member_name": redemption.member.name,
        "product_id": redemption.product_id,
        "product_name": redemption.product.name,
        "product_kind": redemption.product.kind,
        "merchant_id": redemption.product.merchant_id,
        "quantity": redemption.quantity,
        "total_minutes": redemption.minutes,
        "created_at": redemption.created_at,
        "expires_at": redemption.expires_at,
        "closed_at": redemption.closed_at,
        "reason": redemption.reason,
        "transaction_id": redemption.transaction_id,
        "pickup_code": exchange.pickup_code(redemption) if shown else None,
        "pickup_token": exchange.pickup_token(redemption) if shown else None,
    }


class RedemptionIn(Strict):
    product_id: int
    quantity: int = 1
    member_id: int | None = Field(None, description="staff ordering for a holder without a phone")


@api.post("/exchange/redemptions", response={201: RedemptionOut}, tags=TAGS)
@idempotent()
def redemption_order(request: HttpRequest, payload: RedemptionIn) -> Status[Any]:
    """Order goods (or ask for a special right) of ``/exchange/products``: the minutes are held and the stock
    reserved at once. Goods answer with the pick-up code for the shop; a right waits for staff. Requires an
    Idempotency-Key."""
    scope_check(request, "write")
    member = _holder(request, payload.member_id)
    product = selectors.products_for(member).filter(pk=payload.product_id).first()
    if product is None:
        raise NotFound(
            _("This is not offered to you now; it may have sold out."), code="exchange_not_offered"
        )
    user = caller(request)
    ordered = exchange.redemption_order(actor=user, member=member, product=product, quantity=payload.quantity)
    return Status(201, _redemption_out(user, ordered))


@api.get("/exchange/redemptions", response=RedemptionsOut, tags=TAGS)
def redemptions(
    request: HttpRequest,
    status: RedemptionStatus | None = None,
    merchant_id: int | None = None,
    member_id: int | None = None,
    region: str = "",
    since: dt.date | None = None,
    until: dt.date | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """Orders of goods and rights, newest first: the caller's own, their shop's and, for staff, those of
    members of their regions (``status=awaiting``: the rights waiting for a decision). Optionally of one
    status, merchant, member or region (a code), ordered between two days (inclusive)."""
    user = caller(request)
    qs = selectors.redemptions_visible(
        user,
        status=status or "",
        merchant_id=merchant_id,
        member_id=member_id,
        region=region_or_none(region),
        since=since,
        until=until,
    )
    rows, next_cursor = page(qs, cursor, limit, lambda r: _redemption_out(user, r))
    return {"redemptions": rows, "next_cursor": next_cursor}


# before "/exchange/redemptions/{redemption_id}", which would take "hand-over" for an id
class HandOverIn(Strict):
    token: str = Field(max_length=500, description="the scanned pick-up token, or the short code typed")


@api.post("/exchange/redemptions/hand-over", response=RedemptionOut, tags=TAGS)
@idempotent()
def redemption_hand_over(request: HttpRequest, payload: HandOverIn) -> dict[str, Any]:
    """The shop's assistant scans the member's pick-up code (or types the short one) and hands the goods over:
    the held minutes are taken. Requires an Idempotency-Key."""
    scope_check(request, "write")
    user = caller(request)
    return _redemption_out(user, exchange.redemption_hand_over(actor=user, token=payload.token))


@api.get("/exchange/redemptions/{redemption_id}", response=RedemptionOut, tags=TAGS)
def redemption_detail(request: HttpRequest, redemption_id: int) -> dict[str, Any]:
    """One order, for its member, its shop and staff of the member's region."""
    user = caller(request)
    return _redemption_out(user, selectors.redemption_get(user, redemption_id))


class CancelIn(Strict):
    reason: str = Field("", max_length=300)


@api.post("/exchange/redemptions/{redemption_id}/cancel", response=RedemptionOut, tags=TAGS)
@idempotent()
def redemption_cancel(request: HttpRequest, redemption_id: int, payload: CancelIn) -> dict[str, Any]:
    """The member (or staff for them) cancels an order not yet handed over: the held minutes and the stock
    come back. Requires an Idempotency-Key."""
    scope_check(request, "write")
    user = caller(request)
    found = selectors.redemption_get(user, redemption_id)
    return _redemption_out(
        user, exchange.redemption_cancel(actor=user, redemption=found, reason=payload.reason)
    )


class DecideIn(Strict):
    decision: Literal["grant", "refuse"]
    reason: str = Field("", max_length=300, description="needed to refuse; the member reads it")


@api.post("/exchange/redemptions/{redemption_id}/decide", response=RedemptionOut, tags=TAGS)
@idempotent()
def redemption_decide(request: HttpRequest, redemption_id: int, payload: DecideIn) -> dict[str, Any]:
    """Staff of the member's region grant a special right (its held minutes are taken) or refuse it with a
    reason (they come back). Requires an Idempotency-Key."""
    scope_check(request, "write")
    user = staff_with(request, Perm.EXCHANGE_MANAGE)
    found = selectors.redemption_get(user, redemption_id)
    decided = exchange.redemption_decide(
        actor=user, redemption=found, approve=payload.decision == "grant", reason=payload.reason
    )
    return _redemption_out(user, decided)


# --- guarantee funds and coverage ---------------------------------------------------------------------------


class FundOut(Schema):
    id: int
    region: str
    value_fen: int
    fen_per_hour: int
    note: str
    recorded_at: dt.datetime


class CoverageOut(Schema):
    region: str
    fund: FundOut | None
    outstanding_minutes: int
    purchased_minutes: int
    covered_minutes: int
    ratio_percent: int | None


def _fund_out(fund: GuaranteeFund) -> dict[str, Any]:
    return {
        "id": fund.pk,
        "region": fund.region.code,
        "value_fen": fund.value_fen,
        "fen_per_hour": fund.fen_per_hour,
        "note": fund.note,
        "recorded_at": fund.recorded_at,
    }


@api.get("/exchange/coverage", response=CoverageOut, tags=TAGS)
def coverage(request: HttpRequest, region: str) -> dict[str, Any]:
    """How far the guarantee fund behind ``region`` (its own or the nearest above) covers the minutes its
    members hold, with the minutes bought with money reported apart."""
    user = staff_with(request, Perm.EXCHANGE_MANAGE)
    return coverage_out(selectors.coverage(selectors.exchange_region_get(user, region)))


def coverage_out(found: selectors.Coverage) -> dict[str, Any]:
    return {
        "region": found.region.code,
        "fund": _fund_out(found.fund) if found.fund else None,
        "outstanding_minutes": found.outstanding_minutes,
        "purchased_minutes": found.purchased_minutes,
        "covered_minutes": found.covered_minutes,
        "ratio_percent": found.ratio_percent,
    }


class FundIn(Strict):
    region: str = Field(max_length=12)
    value_fen: int
    fen_per_hour: int
    note: str = Field("", max_length=200)


@api.post("/exchange/guarantee-funds", response={201: FundOut}, tags=TAGS)
@idempotent(required=False)
def guarantee_fund(request: HttpRequest, payload: FundIn) -> Status[Any]:
    """An operator records what the guarantee fund behind a region is worth and what an hour of care costs
    (each record is a new statement of the fund; the latest counts)."""
    scope_check(request, "write")
    user = staff_with(request, Perm.FUNDS_MANAGE)
    fund = exchange.guarantee_fund_record(
        actor=user,
        region=region_get(payload.region),
        value_fen=payload.value_fen,
        fen_per_hour=payload.fen_per_hour,
        note=payload.note,
    )
    return Status(201, _fund_out(fund))


# --- moving home --------------------------------------------------------------------------------------------


class MoveIn(Strict):
    member_id: int
    home_region: str = Field(max_length=12, description="the code of the new home community")


class MoveOut(Schema):
    member_id: int
    from_region: str
    home_region: str
    account_id: int | None
    balance_minutes: int | None


@api.post("/exchange/moves", response={201: MoveOut}, tags=TAGS)
@idempotent()
def move(request: HttpRequest, payload: MoveIn) -> Status[Any]:
    """Staff move a member to another community: within one currency area the account follows them; into
    another its minutes cross in one recorded transaction. Requires an Idempotency-Key."""
    scope_check(request, "write")
    user = staff_with(request, Perm.PEOPLE_MANAGE)
    member = people.member_get(user, payload.member_id)
    from_region = member.home_region.code
    moved = exchange.member_move(actor=user, member=member, to_region=region_get(payload.home_region))
    account_id = moved.account_id
    return Status(
        201,
        {
            "member_id": moved.pk,
            "from_region": from_region,
            "home_region": moved.home_region.code,
            "account_id": account_id,
            "balance_minutes": account_balance(account_id).balance if account_id is not None else None,
        },
    )
