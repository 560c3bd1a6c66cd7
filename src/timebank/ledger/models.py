"""The time ledger: double-entry, integer minutes, append-only.

Sign convention: every posting's ``amount`` is added to its account's ``balance``, and the postings of a
transaction sum to zero. A member's positive balance is the minutes they hold. System accounts may run
negative: the public service fund's negative balance is the minutes it has funded.

No personal data lives here. A member account is known by its number; who holds it is recorded on the
member (``people.Member.account``), so erasing a person never touches the ledger.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from timebank.common.errors import Conflict
from timebank.regions.models import Policy, Region


class AccountKind(models.TextChoices):
    MEMBER = "member", _("Member time account")
    PUBLIC_FUND = "public_fund", _("Public service fund")
    GUARANTEE_FUND = "guarantee_fund", _("Guarantee fund")
    POOL = "pool", _("Mutual-aid donation pool")
    GOODS = "goods", _("Goods redemption")
    PURCHASES = "purchases", _("Money purchases")
    CLEARING = "clearing", _("Clearing")


class Side(models.TextChoices):
    DEBIT = "debit", _("Debit")
    CREDIT = "credit", _("Credit")


NORMAL_SIDE: dict[str, str] = {
    AccountKind.MEMBER: Side.CREDIT,
    AccountKind.POOL: Side.CREDIT,
    AccountKind.GOODS: Side.CREDIT,
    AccountKind.GUARANTEE_FUND: Side.CREDIT,
    AccountKind.PURCHASES: Side.CREDIT,
    AccountKind.PUBLIC_FUND: Side.DEBIT,
    AccountKind.CLEARING: Side.DEBIT,
}


class AccountStatus(models.TextChoices):
    OPEN = "open", _("Open")
    CLOSED = "closed", _("Closed")


class Account(models.Model):
    """A time account. ``balance`` and ``held`` change only through postings and holds (on PostgreSQL the
    database refuses any other change); available = balance − held, never below ``floor`` where one is set."""

    kind = models.CharField(_("kind"), max_length=16, choices=AccountKind.choices)
    normal_side = models.CharField(_("normal side"), max_length=6, choices=Side.choices)
    region = models.ForeignKey(Region, models.PROTECT, related_name="+", verbose_name=_("region"))
    area = models.CharField(_("currency area"), max_length=6, db_index=True)
    status = models.CharField(
        _("status"), max_length=6, choices=AccountStatus.choices, default=AccountStatus.OPEN
    )
    balance = models.BigIntegerField(_("balance (minutes)"), default=0)
    held = models.BigIntegerField(_("held (minutes)"), default=0)
    entries = models.BigIntegerField(_("entries"), default=0)
    floor = models.BigIntegerField(_("lowest available balance"), null=True, blank=True)
    cap = models.BigIntegerField(_("highest balance"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("account")
        verbose_name_plural = _("accounts")
        constraints = [
            models.CheckConstraint(condition=Q(held__gte=0), name="ledger_account_held_nonnegative"),
            models.CheckConstraint(
                condition=Q(floor__isnull=True) | Q(balance__gte=models.F("held") + models.F("floor")),
                name="ledger_account_no_overdraft",
            ),
            models.CheckConstraint(
                condition=Q(cap__isnull=True) | Q(balance__lte=models.F("cap")),
                name="ledger_account_within_cap",
            ),
            models.UniqueConstraint(
                fields=["kind", "region"],
                condition=~Q(kind="member"),
                name="ledger_one_system_account_per_region",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} {self.region_id}"

    @property
    def available(self) -> int:
        return self.balance - self.held


class TransactionKind(models.TextChoices):
    SERVICE_CREDIT = "service_credit", _("Service credit")
    SERVICE_PAYMENT = "service_payment", _("Service payment")
    TRANSFER = "transfer", _("Transfer")
    GIFT = "gift", _("Gift")
    DONATION = "donation", _("Donation")
    ALLOCATION = "allocation", _("Pool allocation")
    REDEMPTION = "redemption", _("Goods redemption")
    PURCHASE = "purchase", _("Purchase with money")
    FUNDING = "funding", _("Funding")
    OPENING = "opening", _("Opening balance")
    CLEARING = "clearing", _("Clearing")
    REVERSAL = "reversal", _("Reversal")


class AppendOnly(models.Model):
    """Rows that are written once. Python refuses to change them; the database does too (triggers)."""

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise Conflict(_("Ledger records cannot be changed; post a reversal."), code="ledger_append_only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise Conflict(_("Ledger records cannot be changed; post a reversal."), code="ledger_append_only")


class Transaction(AppendOnly):
    kind = models.CharField(_("kind"), max_length=20, choices=TransactionKind.choices)
    memo = models.CharField(_("memo"), max_length=200, blank=True)
    actor_id = models.BigIntegerField(_("acting user"), null=True, blank=True)
    subject = models.CharField(_("subject"), max_length=64, blank=True)
    ref_type = models.CharField(max_length=40, blank=True)
    ref_id = models.CharField(max_length=64, blank=True)
    policy = models.ForeignKey(Policy, models.PROTECT, null=True, blank=True, related_name="+")
    area = models.CharField(max_length=6)
    idempotency_key = models.CharField(max_length=100, unique=True)
    request_hash = models.CharField(max_length=64)
    reverses = models.OneToOneField(
        "self", models.PROTECT, null=True, blank=True, related_name="reversed_by", db_constraint=True
    )
    created_at = models.DateTimeField(_("when"))

    class Meta:
        verbose_name = _("transaction")
        verbose_name_plural = _("transactions")

    def __str__(self) -> str:
        return f"T{self.pk} {self.kind}"


class Posting(AppendOnly):
    transaction = models.ForeignKey(Transaction, models.PROTECT, related_name="postings")
    account = models.ForeignKey(Account, models.PROTECT, related_name="postings")
    amount = models.BigIntegerField(_("minutes"))
    account_seq = models.BigIntegerField(_("entry number"))
    balance_after = models.BigIntegerField(_("balance after"))

    class Meta:
        verbose_name = _("posting")
        verbose_name_plural = _("postings")
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="ledger_posting_nonzero"),
            # An account's entries are numbered 1, 2, 3…: statements page by it, verify finds any gap.
            models.UniqueConstraint(fields=["account", "account_seq"], name="ledger_posting_account_seq"),
        ]

    def __str__(self) -> str:
        return f"P{self.pk} {self.account_id} {self.amount:+d}"


class HoldStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    CAPTURED = "captured", _("Captured")
    RELEASED = "released", _("Released")


class Hold(models.Model):
    """Minutes reserved on an account for a pending service or goods order (two-phase, like a pending
    transfer): captured into a transaction later, or released."""

    account = models.ForeignKey(Account, models.PROTECT, related_name="holds")
    amount = models.BigIntegerField(_("minutes"))
    status = models.CharField(
        _("status"), max_length=8, choices=HoldStatus.choices, default=HoldStatus.PENDING
    )
    memo = models.CharField(_("memo"), max_length=200, blank=True)
    ref_type = models.CharField(max_length=40, blank=True)
    ref_id = models.CharField(max_length=64, blank=True)
    idempotency_key = models.CharField(max_length=100, unique=True)
    request_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    capture = models.OneToOneField(Transaction, models.PROTECT, null=True, blank=True, related_name="hold")

    class Meta:
        verbose_name = _("hold")
        verbose_name_plural = _("holds")
        indexes = [models.Index(fields=["account", "status"], name="ledger_hold_account_status")]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="ledger_hold_positive")]

    def __str__(self) -> str:
        return f"H{self.pk} {self.account_id} {self.amount} {self.status}"


class SigningKey(AppendOnly):
    """A public key that signs blocks and statements; its private half never enters the database."""

    key_id = models.CharField(max_length=32, unique=True)
    public_key = models.CharField(max_length=64)  # raw Ed25519 public key, hex
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.key_id


class Block(AppendOnly):
    """A sealed batch of transactions: the Merkle root of their hashes, chained to the previous block and
    signed with the platform's Ed25519 key."""

    seq = models.PositiveBigIntegerField(primary_key=True)
    prev_hash = models.CharField(max_length=64)
    root = models.CharField(max_length=64)
    tx_count = models.PositiveIntegerField()
    first_txn_id = models.BigIntegerField()
    last_txn_id = models.BigIntegerField()
    created_at = models.DateTimeField()
    hash = models.CharField(max_length=64, unique=True)
    signature = models.CharField(max_length=128)
    key_id = models.CharField(max_length=32)

    class Meta:
        verbose_name = _("sealed block")
        verbose_name_plural = _("sealed blocks")

    def __str__(self) -> str:
        return f"B{self.seq}"


class BlockEntry(AppendOnly):
    transaction = models.OneToOneField(
        Transaction, models.PROTECT, primary_key=True, related_name="block_entry"
    )
    block = models.ForeignKey(Block, models.PROTECT, related_name="entries")
    position = models.PositiveIntegerField()
    leaf = models.CharField(max_length=64)  # the transaction's leaf hash when sealed

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["block", "position"], name="ledger_block_position_unique")
        ]

    def __str__(self) -> str:
        return f"B{self.block_id}:{self.position}"
