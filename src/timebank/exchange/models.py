"""The withdrawal side: what a time account can be spent on, besides care (``care``), and the records that
go with those ledger transactions — merchants and their goods, redemptions with pick-up codes, purchases with
money recorded by a cashier, guarantee funds, and moves between communities."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from timebank.common.models import TimeStampedModel
from timebank.people.models import Member
from timebank.regions.models import Region


class Merchant(TimeStampedModel):
    """A partner shop (or, for special rights, a public care home) that hands out goods against minutes."""

    name = models.CharField(_("name"), max_length=100)
    region = models.ForeignKey(Region, models.PROTECT, related_name="+", verbose_name=_("region"))
    address = models.CharField(_("address"), max_length=200, blank=True)
    opening_hours = models.CharField(_("opening hours"), max_length=200, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    staff = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="merchants", blank=True)

    class Meta:
        verbose_name = _("partner merchant")
        verbose_name_plural = _("partner merchants")
        ordering = ["region__path", "name"]

    def __str__(self) -> str:
        return self.name


class ProductKind(models.TextChoices):
    GOODS = "goods", _("Goods")
    RIGHT = "right", _("Special right")


class Product(TimeStampedModel):
    """Something a merchant hands out for minutes: daily necessities, or a special right (such as admission to
    a public care home) that staff approve."""

    merchant = models.ForeignKey(
        Merchant, models.PROTECT, related_name="products", verbose_name=_("merchant")
    )
    kind = models.CharField(_("kind"), max_length=8, choices=ProductKind.choices, default=ProductKind.GOODS)
    name = models.CharField(_("name"), max_length=100)
    name_en = models.CharField(_("English name"), max_length=150, blank=True)
    price_minutes = models.PositiveIntegerField(_("price (minutes)"))
    stock = models.PositiveIntegerField(_("in stock"), default=0)
    is_active = models.BooleanField(_("offered"), default=True)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["merchant", "kind", "name"]
        constraints = [
            models.CheckConstraint(condition=Q(price_minutes__gt=0), name="exchange_price_positive"),
            models.CheckConstraint(condition=Q(stock__gte=0), name="exchange_stock_nonnegative"),
        ]

    def __str__(self) -> str:
        return self.name


class RedemptionStatus(models.TextChoices):
    RESERVED = "reserved", _("Reserved: waiting to be picked up")
    AWAITING_APPROVAL = "awaiting", _("Waiting for staff approval")
    HANDED_OVER = "handed_over", _("Handed over")
    GRANTED = "granted", pgettext_lazy("a right asked for", "Granted")
    CANCELLED = "cancelled", _("Cancelled")
    EXPIRED = "expired", _("Expired")
    REFUSED = "refused", _("Refused")


class Redemption(TimeStampedModel):
    member = models.ForeignKey(Member, models.PROTECT, related_name="redemptions", verbose_name=_("member"))
    product = models.ForeignKey(
        Product, models.PROTECT, related_name="redemptions", verbose_name=_("product")
    )
    quantity = models.PositiveSmallIntegerField(_("quantity"), default=1)
    minutes = models.PositiveIntegerField(_("minutes"))
    status = models.CharField(
        _("status"), max_length=12, choices=RedemptionStatus.choices, default=RedemptionStatus.RESERVED
    )
    hold = models.OneToOneField("ledger.Hold", models.PROTECT, related_name="redemption")
    pickup_nonce = models.CharField(max_length=32, editable=False)
    expires_at = models.DateTimeField(_("pick up by"))
    ordered_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.PROTECT, related_name="+")
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, null=True, blank=True, related_name="+"
    )
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    transaction = models.OneToOneField(
        "ledger.Transaction", models.PROTECT, null=True, blank=True, related_name="redemption"
    )

    class Meta:
        verbose_name = _("redemption")
        verbose_name_plural = _("redemptions")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="exchange_quantity_positive")
        ]

    def __str__(self) -> str:
        return f"R{self.pk} {self.product_id} {self.status}"

    @property
    def number(self) -> str:
        return f"R{self.pk:06d}"


class PaymentMethod(models.TextChoices):
    CASH = "cash", _("Cash at the counter")
    BANK_CARD = "bank_card", _("Bank card")
    MOBILE = "mobile", _("Mobile payment")


class Purchase(models.Model):
    """Minutes bought with money where a policy allows it, recorded by a cashier. Money only ever comes in:
    nothing in TimeBank pays money out for minutes."""

    member = models.ForeignKey(Member, models.PROTECT, related_name="purchases", verbose_name=_("member"))
    amount_fen = models.PositiveBigIntegerField(_("amount paid (fen)"))
    method = models.CharField(_("paid by"), max_length=10, choices=PaymentMethod.choices)
    receipt_number = models.CharField(_("receipt number"), max_length=40, unique=True)
    fen_per_coin = models.PositiveIntegerField(_("price of one coin (fen)"))
    minutes = models.PositiveIntegerField(_("minutes bought"))
    cashier = models.ForeignKey(settings.AUTH_USER_MODEL, models.PROTECT, related_name="+")
    transaction = models.OneToOneField("ledger.Transaction", models.PROTECT, related_name="purchase")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("purchase with money")
        verbose_name_plural = _("purchases with money")
        constraints = [
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="exchange_purchase_positive")
        ]

    def __str__(self) -> str:
        return self.receipt_number


class GuaranteeFund(models.Model):
    """A government guarantee (兜底) behind a jurisdiction's deposits, in money, and what an hour of care
    costs to buy with it. Each record is a new statement of the fund; the latest counts."""

    region = models.ForeignKey(Region, models.PROTECT, related_name="+", verbose_name=_("region"))
    value_fen = models.PositiveBigIntegerField(_("value (fen)"))
    fen_per_hour = models.PositiveIntegerField(_("cost of an hour of care (fen)"))
    note = models.CharField(_("note"), max_length=200, blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("guarantee fund")
        verbose_name_plural = _("guarantee funds")
        ordering = ["region__path", "-recorded_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(fen_per_hour__gt=0), name="exchange_guarantee_rate")
        ]

    def __str__(self) -> str:
        return f"{self.region} {self.value_fen}"


class AccountMove(models.Model):
    """A member's time account carried to another currency area when they moved: the old account closed,
    the new one opened, the minutes through the clearing accounts in one transaction."""

    member = models.ForeignKey(Member, models.PROTECT, related_name="account_moves")
    from_account = models.OneToOneField("ledger.Account", models.PROTECT, related_name="moved_out")
    to_account = models.OneToOneField("ledger.Account", models.PROTECT, related_name="moved_in")
    from_region = models.ForeignKey(Region, models.PROTECT, related_name="+")
    to_region = models.ForeignKey(Region, models.PROTECT, related_name="+")
    minutes_out = models.BigIntegerField()
    minutes_in = models.BigIntegerField()
    transaction = models.OneToOneField(
        "ledger.Transaction", models.PROTECT, null=True, blank=True, related_name="+"
    )
    moved_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.PROTECT, related_name="+")
    moved_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.member} {self.from_region} → {self.to_region}"
