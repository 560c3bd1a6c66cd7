"""Writes of the withdrawal side: transfers and gifts within the policy, donations to the mutual-aid pool and
allocations from it, goods and special rights at partner merchants, minutes bought with money, guarantee
funds, and moves between currency areas.

Each check names the policy rule that refused. Every movement of minutes is one idempotent ledger
transaction, posted through ``ledger.services``; every write is audit-logged; no path pays money out for
minutes (``Purchase`` records money coming in, and nothing records money going out).
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext as _

from timebank.audit.services import audit_record
from timebank.care import rules as care_rules
from timebank.common import clock
from timebank.common.errors import ApplicationError, Conflict, PermissionDenied, ValidationFailed
from timebank.common.kinship import Relation
from timebank.common.units import format_minutes
from timebank.exchange.models import (
    AccountMove,
    GuaranteeFund,
    Merchant,
    PaymentMethod,
    Product,
    ProductKind,
    Purchase,
    Redemption,
    RedemptionStatus,
)
from timebank.ledger import errors as ledger_errors
from timebank.ledger import services as ledger
from timebank.ledger.models import Account, AccountKind, Posting, Transaction, TransactionKind
from timebank.ledger.services import area_of
from timebank.notifications.services import in_each_language, notify
from timebank.people import services as people
from timebank.people.access import Perm, access_check, access_has
from timebank.people.models import Member, User
from timebank.regions.models import CapOverflow, Policy, Region

MAX_MINUTES = 10**9
MAX_FEN = 10**12
PICKUP_SALT = "timebank.exchange.pickup"
TRANSFER_KINDS = (TransactionKind.TRANSFER, TransactionKind.GIFT)


# --- small helpers ------------------------------------------------------------------------------------------


def _minutes(value: Any, field: str = "minutes") -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_MINUTES:
        raise ValidationFailed.field(
            field, _("A positive whole number of minutes."), code="exchange_bad_minutes"
        )
    return value


def _text(value: str, field: str, limit: int, *, required: bool = False) -> str:
    text = (value or "").strip()
    if required and not text:
        raise ValidationFailed.field(field, _("Say why."), code="exchange_reason_required")
    if len(text) > limit:
        raise ValidationFailed.field(field, _("At most %(n)d characters.") % {"n": limit})
    return text


def _key(value: str) -> str:
    key = (value or "").strip()
    if not key or len(key) > 80:
        raise ValidationFailed.field(
            "idempotency_key", _("A request key of 1 to 80 characters."), code="exchange_bad_key"
        )
    return key


def _policy(member: Member) -> Policy:
    return care_rules.policy_for(member.home_region, clock.today())


def _pool(policy: Policy) -> Account:
    return ledger.system_account(kind=AccountKind.POOL, region=policy.region)


def _account(member: Member) -> Account:
    if member.account_id is None:
        raise ValidationFailed.field("member", _("%(name)s has no time account.") % {"name": member.name})
    return Account.objects.get(pk=member.account_id)


def _for_holder(actor: User, holder: Member) -> str:
    """The holder acts for themselves; staff of their community act for a holder without a phone."""
    if actor.member_id == holder.pk:
        return "self"
    if access_has(actor, Perm.EXCHANGE_MANAGE, holder.home_region):
        return "staff"
    raise PermissionDenied(_("Only the holder, or station staff for them, may spend these minutes."))


def _short(account: Account, needed: int) -> ValidationFailed:
    return ValidationFailed.field(
        "minutes",
        _("%(available)s available; this needs %(needed)s.")
        % {"available": format_minutes(account.available), "needed": format_minutes(needed)},
        code="exchange_insufficient",
    )


def _post(request: ledger.PostRequest, *, source: Account, receiver_cap: int | None = None) -> ledger.Posted:
    """Post, turning the ledger's refusals into messages about this exchange."""
    try:
        return ledger.transaction_post(request)
    except ApplicationError as exc:
        if exc.code == "ledger_insufficient_funds":
            source.refresh_from_db()
            raise _short(source, -min(leg.amount for leg in request.legs)) from exc
        if exc.code == "ledger_over_cap":
            raise ValidationFailed.field(
                "minutes",
                _(
                    "The receiving account may hold at most %(cap)s under its policy, which refuses the "
                    "excess."
                )
                % {"cap": format_minutes(receiver_cap or 0)},
                code="exchange_over_cap",
            ) from exc
        if exc.code == "ledger_area_mismatch":
            raise ValidationFailed.field(
                "receiver",
                _(
                    "The other account belongs to another city's currency area; minutes cross areas only "
                    "when a "
                    "member moves."
                ),
                code="exchange_other_area",
            ) from exc
        raise


def _credit_into(
    *, source: Account, receiver: Member, minutes: int, kind: str, key: str, memo: str, actor: User
) -> tuple[ledger.Posted, int]:
    """Move minutes into a member's account under the receiver's policy: what exceeds a capped account goes
    to the pool where the policy routes it there, and is refused where it does not."""
    policy = _policy(receiver)
    destination = _account(receiver)
    earlier = Transaction.objects.filter(idempotency_key=key).first()
    if earlier is not None:
        # A retry: the answer is the first posting, whatever the receiver's room under a cap is now.
        sent = Posting.objects.filter(transaction=earlier, account=source).aggregate(total=Sum("amount"))[
            "total"
        ]
        if earlier.kind != kind or -(sent or 0) != minutes:
            raise ledger_errors.IdempotencyConflict(extra={"detail": f"key={key}"})
        overflow = minutes - int(
            Posting.objects.filter(transaction=earlier, account=destination).aggregate(total=Sum("amount"))[
                "total"
            ]
            or 0
        )
        return ledger.Posted(earlier.pk, False), overflow
    overflow_to = _pool(policy).pk if policy.cap_overflow == CapOverflow.POOL else None
    legs, overflow = ledger.credit_legs(
        source_id=source.pk, destination=destination, minutes=minutes, overflow_to=overflow_to
    )
    posted = _post(
        ledger.PostRequest(
            idempotency_key=key, kind=kind, legs=legs, memo=memo, actor_id=actor.pk, policy_id=policy.pk
        ),
        source=source,
        receiver_cap=destination.cap,
    )
    if overflow and posted.created:
        notify(
            kind="exchange.overflow",
            params={
                **in_each_language("minutes", lambda: format_minutes(minutes - overflow)),
                **in_each_language("overflow", lambda: format_minutes(overflow)),
                "policy": policy.name,
            },
            members=[receiver],
        )
    return posted, overflow


@dataclass(frozen=True)
class Moved:
    transaction_id: int
    created: bool
    overflow: int = 0


# --- transfers, gifts, donations, allocations ---------------------------------------------------------------


def _year_transferred(account: Account, year: int) -> int:
    start = dt.datetime(year, 1, 1, tzinfo=timezone.get_current_timezone())
    total = Posting.objects.filter(
        account=account,
        amount__lt=0,
        transaction__kind__in=TRANSFER_KINDS,
        transaction__created_at__gte=start,
        transaction__created_at__lt=start.replace(year=year + 1),
    ).aggregate(total=Sum("amount"))["total"]
    return -int(total or 0)


def transfer_create(
    *,
    actor: User,
    giver: Member,
    receiver: Member,
    minutes: int,
    idempotency_key: str,
    gift: bool = False,
    note: str = "",
) -> Moved:
    """Transfer (or give) minutes to a relative or friend with a verified bond, as far as the giver's policy
    allows: the relations it names, the receiver's minimum age, a yearly limit; group-earned time is only
    donated where the policy says so. A retry with the same key posts nothing new."""
    side = _for_holder(actor, giver)
    minutes = _minutes(minutes)
    key = _key(idempotency_key)
    note = _text(note, "note", 200)
    if giver.pk == receiver.pk:
        raise ValidationFailed.field("receiver", _("Choose somebody else."), code="exchange_self")
    policy = _policy(giver)
    if giver.is_group and policy.group_time_donation_only:
        raise ValidationFailed.field(
            "giver",
            _("Under %(policy)s time earned by a group may only be donated.") % {"policy": policy.name},
            code="exchange_group_donation_only",
        )
    relation = care_rules.verified_relation(giver, receiver)
    if relation is None:
        raise ValidationFailed.field(
            "receiver",
            _("%(giver)s and %(receiver)s have no verified family bond.")
            % {"giver": giver.name, "receiver": receiver.name},
            code="exchange_no_bond",
        )
    if relation not in policy.transfer_relations:
        raise ValidationFailed.field(
            "receiver",
            _("%(policy)s lets minutes pass only to: %(allowed)s; not to a %(relation)s.")
            % {
                "policy": policy.name,
                "allowed": "、".join(str(Relation(r).label) for r in policy.transfer_relations) or "—",
                "relation": Relation(relation).label,
            },
            code="exchange_relation_not_allowed",
        )
    minimum = policy.transfer_recipient_min_age
    age = care_rules.age_of(receiver, clock.today())
    if minimum is not None and (age is None or age < minimum):
        raise ValidationFailed.field(
            "receiver",
            _("%(policy)s lets minutes pass only to someone aged %(age)d or more.")
            % {"policy": policy.name, "age": minimum},
            code="exchange_recipient_age",
        )
    full_key = f"exchange:transfer:{giver.pk}:{key}"
    with transaction.atomic():
        source = Account.objects.select_for_update().get(pk=_account(giver).pk)
        limit = policy.transfer_annual_limit_minutes
        if limit is not None and not _is_retry(full_key):
            sent = _year_transferred(source, clock.today().year)
            if sent + minutes > limit:
                raise ValidationFailed.field(
                    "minutes",
                    _("%(policy)s allows %(limit)s of transfers and gifts a year; %(sent)s went already.")
                    % {"policy": policy.name, "limit": format_minutes(limit), "sent": format_minutes(sent)},
                    code="exchange_yearly_limit",
                )
        if source.available < minutes and not _is_retry(full_key):
            raise _short(source, minutes)
        kind = TransactionKind.GIFT if gift else TransactionKind.TRANSFER
        posted, overflow = _credit_into(
            source=source,
            receiver=receiver,
            minutes=minutes,
            kind=kind,
            key=full_key,
            memo="",
            actor=actor,
        )
        if posted.created:
            for region in {giver.home_region, receiver.home_region}:
                audit_record(
                    actor=actor,
                    event_type=f"exchange.{kind}",
                    subject=giver,
                    region=region,
                    new={
                        "receiver": receiver.pk,
                        "minutes": minutes,
                        "overflow": overflow,
                        "note": note,
                        "transaction": posted.transaction_id,
                        "by": side,
                    },
                    on_behalf_of=giver,
                )
            notify(
                kind="exchange.received",
                params={"giver": giver.name, **in_each_language("minutes", lambda: format_minutes(minutes))},
                members=[receiver],
            )
    return Moved(posted.transaction_id, posted.created, overflow)


def _is_retry(key: str) -> bool:
    return Transaction.objects.filter(idempotency_key=key).exists()


def donation_create(*, actor: User, giver: Member, minutes: int, idempotency_key: str) -> Moved:
    """Donate minutes to the mutual-aid pool of the giver's jurisdiction (where the policy allows it)."""
    side = _for_holder(actor, giver)
    minutes = _minutes(minutes)
    key = f"exchange:donation:{giver.pk}:{_key(idempotency_key)}"
    policy = _policy(giver)
    if not policy.donation_allowed:
        raise ValidationFailed.field(
            "minutes",
            _("%(policy)s does not take donations.") % {"policy": policy.name},
            code="exchange_donation_not_allowed",
        )
    pool = _pool(policy)
    with transaction.atomic():
        source = Account.objects.select_for_update().get(pk=_account(giver).pk)
        if source.available < minutes and not _is_retry(key):
            raise _short(source, minutes)
        posted = _post(
            ledger.PostRequest(
                idempotency_key=key,
                kind=TransactionKind.DONATION,
                legs=tuple(
                    sorted(
                        (ledger.Leg(source.pk, -minutes), ledger.Leg(pool.pk, minutes)),
                        key=lambda leg: leg.account_id,
                    )
                ),
                memo="",
                actor_id=actor.pk,
                policy_id=policy.pk,
            ),
            source=source,
        )
        if posted.created:
            audit_record(
                actor=actor,
                event_type="exchange.donation",
                subject=giver,
                region=giver.home_region,
                new={"minutes": minutes, "pool": pool.pk, "transaction": posted.transaction_id, "by": side},
                on_behalf_of=giver,
            )
    return Moved(posted.transaction_id, posted.created)


def pool_allocate(*, actor: User, elder: Member, minutes: int, reason: str, idempotency_key: str) -> Moved:
    """Station staff give pool minutes to a verified priority elder, with the reason."""
    access_check(actor, Perm.EXCHANGE_MANAGE, elder.home_region)
    if actor.member_id == elder.pk:
        raise PermissionDenied(_("Another staff member allocates to you."), code="exchange_own_allocation")
    minutes = _minutes(minutes)
    reason = _text(reason, "reason", 300, required=True)
    key = f"exchange:allocation:{elder.pk}:{_key(idempotency_key)}"
    if not care_rules.has_verified_priority(elder):
        raise ValidationFailed.field(
            "elder",
            _("Pool minutes go to verified priority elders; %(name)s is not one.") % {"name": elder.name},
            code="exchange_not_priority",
        )
    policy = _policy(elder)
    with transaction.atomic():
        pool = Account.objects.select_for_update().get(pk=_pool(policy).pk)
        if pool.available < minutes and not _is_retry(key):
            raise ValidationFailed.field(
                "minutes",
                _("The mutual-aid pool has %(available)s.") % {"available": format_minutes(pool.available)},
                code="exchange_pool_short",
            )
        posted, overflow = _credit_into(
            source=pool,
            receiver=elder,
            minutes=minutes,
            kind=TransactionKind.ALLOCATION,
            key=key,
            memo="",
            actor=actor,
        )
        if posted.created:
            audit_record(
                actor=actor,
                event_type="exchange.allocation",
                subject=elder,
                region=elder.home_region,
                new={"minutes": minutes, "reason": reason, "transaction": posted.transaction_id},
                on_behalf_of=elder,
            )
            notify(
                kind="exchange.allocated",
                params={"reason": reason, **in_each_language("minutes", lambda: format_minutes(minutes))},
                members=[elder],
            )
    return Moved(posted.transaction_id, posted.created, overflow)


# --- money into minutes -------------------------------------------------------------------------------------


def purchase_record(
    *, actor: User, member: Member, amount_fen: int, method: str, receipt_number: str
) -> Purchase:
    """A cashier records minutes bought with money at the policy's price. The amount must buy whole minutes
    (nothing is lost to rounding); the receipt number makes a retry harmless and a second use impossible."""
    access_check(actor, Perm.EXCHANGE_MANAGE, member.home_region)
    if actor.member_id == member.pk:
        raise PermissionDenied(_("Another cashier records your own purchase."), code="exchange_own_purchase")
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or not 0 < amount_fen <= MAX_FEN:
        raise ValidationFailed.field(
            "amount_fen", _("An amount in fen, more than zero."), code="exchange_bad_amount"
        )
    if method not in PaymentMethod.values:
        raise ValidationFailed.field("method", _("Choose how it was paid."), code="exchange_bad_method")
    receipt = (receipt_number or "").strip()
    if not re.fullmatch(r"[A-Za-z0-9-]{1,40}", receipt):
        raise ValidationFailed.field(
            "receipt_number",
            _("A receipt number of letters, digits and dashes."),
            code="exchange_bad_receipt",
        )
    policy = _policy(member)
    rate = policy.purchase_fen_per_coin
    if not policy.money_purchase_allowed or not rate:
        raise ValidationFailed.field(
            "amount_fen",
            _("%(policy)s does not sell time for money.") % {"policy": policy.name},
            code="exchange_purchase_not_allowed",
        )
    minutes = amount_fen * policy.minutes_per_coin // rate
    exact = -(-minutes * rate // policy.minutes_per_coin)
    if minutes <= 0 or exact != amount_fen:
        buys = max(minutes, 1)
        price = -(-buys * rate // policy.minutes_per_coin)
        raise ValidationFailed.field(
            "amount_fen",
            _("At ¥%(rate)s an hour, take an amount that buys whole minutes: %(minutes)s costs ¥%(price)s.")
            % {
                "rate": f"{rate * 60 / policy.minutes_per_coin / 100:.2f}",
                "minutes": format_minutes(buys),
                "price": f"{price / 100:.2f}",
            },
            code="exchange_not_whole_minutes",
        )
    existing = Purchase.objects.filter(receipt_number=receipt).first()
    if existing is not None:
        if (existing.member_id, existing.amount_fen, existing.method) == (member.pk, amount_fen, method):
            return existing  # the same receipt recorded again: a retry
        raise ValidationFailed.field(
            "receipt_number", _("This receipt number was already used."), code="exchange_receipt_used"
        )
    source = ledger.system_account(kind=AccountKind.PURCHASES, region=policy.region)
    try:
        with transaction.atomic():
            posted, overflow = _credit_into(
                source=source,
                receiver=member,
                minutes=minutes,
                kind=TransactionKind.PURCHASE,
                key=f"exchange:purchase:{receipt}",
                memo="",
                actor=actor,
            )
            purchase = Purchase.objects.create(
                member=member,
                amount_fen=amount_fen,
                method=method,
                receipt_number=receipt,
                fen_per_coin=rate,
                minutes=minutes,
                cashier=actor,
                transaction_id=posted.transaction_id,
            )
            audit_record(
                actor=actor,
                event_type="exchange.purchase",
                subject=member,
                region=member.home_region,
                new={
                    "amount_fen": amount_fen,
                    "method": method,
                    "receipt": receipt,
                    "minutes": minutes,
                    "overflow": overflow,
                    "transaction": posted.transaction_id,
                },
                on_behalf_of=member,
            )
    except IntegrityError as exc:  # the same receipt recorded at the same moment elsewhere
        raise ValidationFailed.field(
            "receipt_number", _("This receipt number was already used."), code="exchange_receipt_used"
        ) from exc
    return purchase


# --- guarantee funds ----------------------------------------------------------------------------------------


def guarantee_fund_record(
    *, actor: User, region: Region, value_fen: int, fen_per_hour: int, note: str = ""
) -> GuaranteeFund:
    """Record what the guarantee fund behind a jurisdiction is worth and what an hour of care costs."""
    access_check(actor, Perm.FUNDS_MANAGE, region)
    if not isinstance(value_fen, int) or isinstance(value_fen, bool) or not 0 <= value_fen <= MAX_FEN:
        raise ValidationFailed.field("value_fen", _("An amount in fen, 0 or more."))
    if not isinstance(fen_per_hour, int) or isinstance(fen_per_hour, bool) or not 0 < fen_per_hour <= 10**8:
        raise ValidationFailed.field("fen_per_hour", _("The cost of an hour of care in fen, more than zero."))
    note = _text(note, "note", 200)
    with transaction.atomic():
        fund = GuaranteeFund.objects.create(
            region=region, value_fen=value_fen, fen_per_hour=fen_per_hour, note=note, recorded_by=actor
        )
        audit_record(
            actor=actor,
            event_type="exchange.guarantee.recorded",
            subject=fund,
            region=region,
            new={"value_fen": value_fen, "fen_per_hour": fen_per_hour, "note": note},
        )
    return fund


# --- merchants and their products ---------------------------------------------------------------------------


def merchant_create(
    *, actor: User, name: str, region: Region, address: str = "", opening_hours: str = ""
) -> Merchant:
    access_check(actor, Perm.MERCHANTS_MANAGE, region)
    name = _text(name, "name", 100, required=True)
    with transaction.atomic():
        merchant = Merchant.objects.create(
            name=name,
            region=region,
            address=_text(address, "address", 200),
            opening_hours=_text(opening_hours, "opening_hours", 200),
        )
        audit_record(
            actor=actor,
            event_type="exchange.merchant.created",
            subject=merchant,
            region=region,
            new={"name": name},
        )
    return merchant


def merchant_staff_add(*, actor: User, merchant: Merchant, user: User) -> None:
    """Let a merchant's shop assistant sign in to hand goods over and keep stock."""
    access_check(actor, Perm.MERCHANTS_MANAGE, merchant.region)
    with transaction.atomic():
        merchant.staff.add(user)
        audit_record(
            actor=actor,
            event_type="exchange.merchant.staff_added",
            subject=merchant,
            region=merchant.region,
            new={"user": user.pk},
        )


def _works_at(actor: User, merchant: Merchant) -> bool:
    return merchant.staff.filter(pk=actor.pk).exists()


def product_save(
    *,
    actor: User,
    merchant: Merchant,
    name: str,
    price_minutes: int,
    stock: int,
    kind: str = ProductKind.GOODS,
    name_en: str = "",
    product: Product | None = None,
    is_active: bool = True,
) -> Product:
    """Add or change a product. Shop staff keep their own goods; only operators create special rights."""
    if kind not in ProductKind.values:
        raise ValidationFailed.field("kind", _("Goods or a special right."))
    is_right = kind == ProductKind.RIGHT or (product is not None and product.kind == ProductKind.RIGHT)
    if is_right and not access_has(actor, Perm.MERCHANTS_MANAGE, merchant.region):
        # a shop's staff keep goods; a special right (or turning one into goods) is the operator's
        raise PermissionDenied(
            _("Special rights are kept by the operator."), code="exchange_right_by_operator"
        )
    if not _works_at(actor, merchant):
        access_check(actor, Perm.MERCHANTS_MANAGE, merchant.region)
    name = _text(name, "name", 100, required=True)
    name_en = _text(name_en, "name_en", 150)
    price_minutes = _minutes(price_minutes, "price_minutes")
    if not isinstance(stock, int) or isinstance(stock, bool) or not 0 <= stock <= 1_000_000:
        raise ValidationFailed.field("stock", _("A whole number, 0 or more."))
    with transaction.atomic():
        if product is None:
            product = Product(merchant=merchant)
            old: dict[str, Any] = {}
        else:
            product = Product.objects.select_for_update().get(pk=product.pk, merchant=merchant)
            old = {
                "name": product.name,
                "price": product.price_minutes,
                "stock": product.stock,
                "active": product.is_active,
            }
        product.kind, product.name, product.name_en = kind, name, name_en
        product.price_minutes, product.stock, product.is_active = price_minutes, stock, is_active
        product.save()
        audit_record(
            actor=actor,
            event_type="exchange.product.saved",
            subject=product,
            region=merchant.region,
            old=old,
            new={"name": name, "price": price_minutes, "stock": stock, "active": is_active, "kind": kind},
        )
    return product


def product_restock(*, actor: User, product: Product, added: int) -> Product:
    """Goods arrived: add them to the stock (an increment, so an order placed meanwhile is not undone)."""
    merchant = product.merchant
    if not _works_at(actor, merchant):
        access_check(actor, Perm.MERCHANTS_MANAGE, merchant.region)
    if not isinstance(added, int) or isinstance(added, bool) or not 0 < added <= 1_000_000:
        raise ValidationFailed.field("added", _("How many arrived: a whole number, 1 or more."))
    with transaction.atomic():
        Product.objects.filter(pk=product.pk).update(stock=F("stock") + added)
        audit_record(
            actor=actor,
            event_type="exchange.product.restocked",
            subject=product,
            region=merchant.region,
            new={"added": added},
        )
    return Product.objects.get(pk=product.pk)


# --- redemptions --------------------------------------------------------------------------------------------


def pickup_token(redemption: Redemption) -> str:
    """What the member's pick-up QR code carries: the redemption and a secret only it knows, signed."""
    return signing.dumps({"r": redemption.pk, "n": redemption.pickup_nonce}, salt=PICKUP_SALT, compress=False)


def pickup_code(redemption: Redemption) -> str:
    """The same, short enough to read out or type when a scanner fails: the order number and six digits
    derived from the order's secret (a clerk of that shop, signed in, is the only one who can try it)."""
    digest = salted_hmac(PICKUP_SALT, redemption.pickup_nonce, algorithm="sha256").hexdigest()
    return f"{redemption.number}-{int(digest[:10], 16) % 1_000_000:06d}"


def _redemption_of_code(token: str) -> Redemption | None:
    """The redemption a scanned token or a typed short code names, if it is genuine."""
    text = (token or "").strip().upper()
    short = re.fullmatch(r"R(\d{1,12})-(\d{6})", text)
    if short is not None:
        found = Redemption.objects.filter(pk=int(short.group(1))).first()
        return found if found is not None and constant_time_compare(pickup_code(found), text) else None
    try:
        data = signing.loads((token or "").strip(), salt=PICKUP_SALT)
    except signing.BadSignature:
        return None
    number = data.get("r") if isinstance(data, dict) else None
    found = Redemption.objects.filter(pk=number).first() if isinstance(number, int) else None
    if found is None or not constant_time_compare(str(data.get("n", "")), found.pickup_nonce):
        return None
    return found


def _goods_account(merchant: Merchant) -> Account:
    return ledger.system_account(kind=AccountKind.GOODS, region=merchant.region)


def redemption_order(*, actor: User, member: Member, product: Product, quantity: int = 1) -> Redemption:
    """Order goods (or ask for a special right): the minutes are held and the stock is reserved at once, so
    two orders for the last item cannot both succeed."""
    _for_holder(actor, member)
    if not isinstance(quantity, int) or isinstance(quantity, bool) or not 1 <= quantity <= 99:
        raise ValidationFailed.field("quantity", _("1 to 99."), code="exchange_bad_quantity")
    product = Product.objects.select_related("merchant", "merchant__region").get(pk=product.pk)
    if not product.is_active or not product.merchant.is_active:
        raise ValidationFailed.field("product", _("This is no longer offered."), code="exchange_not_offered")
    policy = _policy(member)
    if product.kind == ProductKind.GOODS and not policy.goods_allowed:
        raise ValidationFailed.field(
            "product",
            _("%(policy)s does not allow goods for time.") % {"policy": policy.name},
            code="exchange_goods_not_allowed",
        )
    if product.kind == ProductKind.RIGHT:
        problem = care_rules.withdrawal_problem(policy, member, clock.today())
        if problem is not None:
            raise ValidationFailed.field("product", problem.message, code=problem.code)
    if area_of(product.merchant.region) != area_of(member.home_region):
        raise ValidationFailed.field(
            "product", _("This merchant is in another city's currency area."), code="exchange_other_area"
        )
    minutes = product.price_minutes * quantity
    now = clock.now()
    with transaction.atomic():
        taken = Product.objects.filter(pk=product.pk, stock__gte=quantity).update(stock=F("stock") - quantity)
        if not taken:
            raise ValidationFailed.field("quantity", _("Not enough in stock."), code="exchange_out_of_stock")
        account = _account(member)
        redemption = Redemption(
            member=member,
            product=product,
            quantity=quantity,
            minutes=minutes,
            ordered_by=actor,
            status=RedemptionStatus.AWAITING_APPROVAL
            if product.kind == ProductKind.RIGHT
            else RedemptionStatus.RESERVED,
            pickup_nonce=secrets.token_hex(8),
            expires_at=now + dt.timedelta(days=settings.EXCHANGE_PICKUP_DAYS),
        )
        try:
            held = ledger.hold_place(
                idempotency_key=f"exchange:redemption:{secrets.token_hex(8)}",
                account_id=account.pk,
                minutes=minutes,
                memo=f"goods {product.pk}x{quantity}",
                ref_type="exchange.redemption",
            )
        except ApplicationError as exc:
            if exc.code == "ledger_insufficient_funds":
                account.refresh_from_db()
                raise _short(account, minutes) from exc
            raise
        redemption.hold_id = held.hold_id
        redemption.save()
        audit_record(
            actor=actor,
            event_type="exchange.redemption.ordered",
            subject=redemption,
            region=member.home_region,
            new={
                "product": product.pk,
                "quantity": quantity,
                "minutes": minutes,
                "status": redemption.status,
            },
            on_behalf_of=member,
        )
    return redemption


def _locked_redemption(redemption: Redemption) -> Redemption:
    return (
        Redemption.objects.select_for_update(of=("self",))
        .select_related(
            "member", "product", "product__merchant", "product__merchant__region", "member__home_region"
        )
        .get(pk=redemption.pk)
    )


def _close(redemption: Redemption, status: str, actor: User | None, reason: str = "") -> None:
    """End a redemption without handing over: the hold is released and the stock comes back."""
    ledger.hold_release(hold_id=redemption.hold_id)
    Product.objects.filter(pk=redemption.product_id).update(stock=F("stock") + redemption.quantity)
    previous = redemption.status
    redemption.status = status
    redemption.closed_at = clock.now()
    redemption.closed_by = actor
    redemption.reason = reason
    redemption.save()
    audit_record(
        actor=actor,
        event_type=f"exchange.redemption.{status}",
        subject=redemption,
        region=redemption.member.home_region,
        old={"status": previous},
        new={"status": status, "reason": reason},
        on_behalf_of=redemption.member,
    )


def _capture(redemption: Redemption, actor: User, status: str) -> None:
    goods = _goods_account(redemption.product.merchant)
    account_id = redemption.member.account_id
    assert account_id is not None
    posted = ledger.hold_capture(
        hold_id=redemption.hold_id,
        request=ledger.PostRequest(
            idempotency_key=f"exchange:redemption:{redemption.pk}:capture",
            kind=TransactionKind.REDEMPTION,
            legs=tuple(
                sorted(
                    (ledger.Leg(account_id, -redemption.minutes), ledger.Leg(goods.pk, redemption.minutes)),
                    key=lambda leg: leg.account_id,
                )
            ),
            memo=f"{redemption.number}",
            actor_id=actor.pk,
            subject=redemption.number,
            ref_type="exchange.redemption",
            ref_id=str(redemption.pk),
        ),
    )
    previous = redemption.status
    redemption.status = status
    redemption.closed_at = clock.now()
    redemption.closed_by = actor
    redemption.transaction_id = posted.transaction_id
    redemption.save()
    audit_record(
        actor=actor,
        event_type=f"exchange.redemption.{status}",
        subject=redemption,
        region=redemption.member.home_region,
        old={"status": previous},
        new={"status": status, "transaction": posted.transaction_id},
        on_behalf_of=redemption.member,
    )


def redemption_hand_over(*, actor: User, token: str) -> Redemption:
    """The shop scans the member's pick-up code and hands the goods over: the held minutes are taken."""
    found = _redemption_of_code(token)
    if found is None:
        raise ValidationFailed.field(
            "token", _("This is not a valid pick-up code."), code="exchange_bad_pickup"
        )
    with transaction.atomic():
        redemption = _locked_redemption(found)
        if not _works_at(actor, redemption.product.merchant):
            raise PermissionDenied(_("This order is for another shop."), code="exchange_other_shop")
        if redemption.status != RedemptionStatus.RESERVED:
            raise Conflict(
                _("This order is %(status)s.") % {"status": redemption.get_status_display()},
                code="exchange_not_reserved",
            )
        if redemption.expires_at < clock.now():
            raise ValidationFailed.field(
                "token",
                _("This pick-up code expired; the member orders again."),
                code="exchange_pickup_expired",
            )
        _capture(redemption, actor, RedemptionStatus.HANDED_OVER)
        notify(
            kind="exchange.handed_over",
            params={
                "product": redemption.product.name,
                **in_each_language("minutes", lambda: format_minutes(redemption.minutes)),
            },
            members=[redemption.member],
        )
    return redemption


def redemption_cancel(*, actor: User, redemption: Redemption, reason: str = "") -> Redemption:
    """The member (or staff for them) cancels an order not yet handed over; minutes and stock come back."""
    _for_holder(actor, redemption.member)
    reason = _text(reason, "reason", 300)
    with transaction.atomic():
        locked = _locked_redemption(redemption)
        if locked.status not in (RedemptionStatus.RESERVED, RedemptionStatus.AWAITING_APPROVAL):
            raise Conflict(
                _("This order is %(status)s.") % {"status": locked.get_status_display()},
                code="exchange_not_open",
            )
        _close(locked, RedemptionStatus.CANCELLED, actor, reason)
    return locked


def redemption_decide(*, actor: User, redemption: Redemption, approve: bool, reason: str = "") -> Redemption:
    """Staff grant or refuse a special right (such as a care-home admission) a member asked for."""
    access_check(actor, Perm.EXCHANGE_MANAGE, redemption.member.home_region)
    if actor.member_id == redemption.member_id:
        raise PermissionDenied(
            _("Another staff member decides your own request."), code="exchange_own_request"
        )
    reason = _text(reason, "reason", 300, required=not approve)
    with transaction.atomic():
        locked = _locked_redemption(redemption)
        if locked.status != RedemptionStatus.AWAITING_APPROVAL:
            raise Conflict(
                _("This order is %(status)s.") % {"status": locked.get_status_display()},
                code="exchange_not_awaiting",
            )
        if approve:
            _capture(locked, actor, RedemptionStatus.GRANTED)
        else:
            _close(locked, RedemptionStatus.REFUSED, actor, reason)
        notify(
            kind="exchange.right_decided",
            params={
                "product": locked.product.name,
                "reason": reason,
                **in_each_language("status", lambda: RedemptionStatus(locked.status).label),
            },
            members=[locked.member],
        )
    return locked


def redemptions_expire(*, now: dt.datetime | None = None) -> int:
    """Orders nobody picked up in time expire: minutes and stock come back."""
    now = now or clock.now()
    count = 0
    for found in Redemption.objects.filter(status=RedemptionStatus.RESERVED, expires_at__lt=now)[:1000]:
        with transaction.atomic():
            locked = _locked_redemption(found)
            if locked.status != RedemptionStatus.RESERVED:
                continue
            _close(locked, RedemptionStatus.EXPIRED, None)
            count += 1
    return count


# --- moving home --------------------------------------------------------------------------------------------


def member_move(*, actor: User, member: Member, to_region: Region) -> Member:
    """Move a member to another community, district or city on this platform. Their balance and history
    stay theirs: within one currency area the account simply follows them; into another area (or under a
    policy with another unit) a new account is opened and the minutes cross through the clearing accounts in
    one recorded transaction, converted at the two policies' units. Both communities see it in the audit
    log."""
    old_region = member.home_region
    if to_region.pk == old_region.pk:
        raise ValidationFailed.field(
            "home_region", _("That is where they live now."), code="exchange_same_home"
        )
    old_policy = care_rules.policy_for(old_region, clock.today())
    new_policy = care_rules.policy_for(to_region, clock.today())
    crosses = (
        area_of(to_region) != area_of(old_region)
        or old_policy.minutes_per_coin != new_policy.minutes_per_coin
    )
    with transaction.atomic():
        moved = people.member_update(
            actor=actor, member=member, changes={"home_region": to_region}, account_moves=True
        )
        if not crosses:
            # the account follows them, under the new home's limits
            account = Account.objects.get(pk=_account(member).pk)
            Account.objects.filter(pk=account.pk).update(region=to_region)
            try:
                ledger.account_limits_set(
                    account=account, floor=-new_policy.credit_line_minutes, cap=new_policy.account_cap_minutes
                )
            except ApplicationError as exc:
                raise _over_new_limits(member, new_policy) from exc
            return moved
        old = Account.objects.select_for_update().get(pk=_account(member).pk)
        if old.held:
            raise ValidationFailed.field(
                "home_region",
                _(
                    "%(name)s has minutes held for services or goods not yet settled; settle or cancel "
                    "them first."
                )
                % {"name": member.name},
                code="exchange_move_with_holds",
            )
        if old.balance < 0:
            raise ValidationFailed.field(
                "home_region",
                _("%(name)s owes minutes; settle them before moving.") % {"name": member.name},
                code="exchange_move_in_debt",
            )
        new = ledger.account_open(
            kind=AccountKind.MEMBER,
            region=to_region,
            floor=-new_policy.credit_line_minutes,
            cap=new_policy.account_cap_minutes,
        )
        # Minutes are counted in the two policies' coins: at another unit a fraction of one destination minute
        # may not carry over; it is recorded in the move (the transaction's memo and the audit log).
        minutes_in = old.balance * new_policy.minutes_per_coin // old_policy.minutes_per_coin
        left_over = old.balance * new_policy.minutes_per_coin % old_policy.minutes_per_coin
        if new_policy.account_cap_minutes is not None and minutes_in > new_policy.account_cap_minutes:
            raise _over_new_limits(member, new_policy)
        posted = None
        if old.balance:
            clearing_out = ledger.system_account(kind=AccountKind.CLEARING, region=_province(old_region))
            clearing_in = ledger.system_account(kind=AccountKind.CLEARING, region=_province(to_region))
            legs: dict[int, int] = {}
            for account_id, amount in (
                (old.pk, -old.balance),
                (clearing_out.pk, old.balance),
                (clearing_in.pk, -minutes_in),
                (new.pk, minutes_in),
            ):
                legs[account_id] = legs.get(account_id, 0) + amount
            posted = ledger.transaction_post(
                ledger.PostRequest(
                    idempotency_key=f"exchange:move:{old.pk}",
                    kind=TransactionKind.CLEARING,
                    legs=tuple(ledger.Leg(a, m) for a, m in sorted(legs.items()) if m),
                    memo=f"move {old_policy.minutes_per_coin}->{new_policy.minutes_per_coin} min/coin"
                    + (f", {left_over}/{old_policy.minutes_per_coin} min not carried" if left_over else ""),
                    actor_id=actor.pk,
                    policy_id=new_policy.pk,
                )
            )
        ledger.account_close(account=old)
        Member.objects.filter(pk=member.pk).update(account=new)
        AccountMove.objects.create(
            member=member,
            from_account=old,
            to_account=new,
            from_region=old_region,
            to_region=to_region,
            minutes_out=old.balance,
            minutes_in=minutes_in,
            transaction_id=posted.transaction_id if posted else None,
            moved_by=actor,
        )
        for region in (old_region, to_region):
            audit_record(
                actor=actor,
                event_type="exchange.account.moved",
                subject=member,
                region=region,
                old={"account": old.pk, "minutes": old.balance},
                new={
                    "account": new.pk,
                    "minutes": minutes_in,
                    "fraction_not_carried": f"{left_over}/{old_policy.minutes_per_coin}" if left_over else "",
                    "transaction": posted.transaction_id if posted else None,
                },
                on_behalf_of=member,
            )
    return Member.objects.get(pk=member.pk)


def _over_new_limits(member: Member, policy: Policy) -> ValidationFailed:
    return ValidationFailed.field(
        "home_region",
        _(
            "%(name)s holds more than %(policy)s lets an account hold (%(cap)s); donate or spend the rest "
            "first."
        )
        % {
            "name": member.name,
            "policy": policy.name,
            "cap": format_minutes(policy.account_cap_minutes or 0),
        },
        code="exchange_move_over_cap",
    )


def _province(region: Region) -> Region:
    return Region.objects.get(code=area_of(region))


# --- background ---------------------------------------------------------------------------------------------


def exchange_tick(*, now: dt.datetime | None = None) -> int:
    return redemptions_expire(now=now)


__all__ = [
    "Moved",
    "donation_create",
    "exchange_tick",
    "guarantee_fund_record",
    "member_move",
    "merchant_create",
    "merchant_staff_add",
    "pickup_code",
    "pickup_token",
    "pool_allocate",
    "product_restock",
    "product_save",
    "purchase_record",
    "redemption_cancel",
    "redemption_decide",
    "redemption_hand_over",
    "redemption_order",
    "redemptions_expire",
    "transfer_create",
]
