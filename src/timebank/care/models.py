"""Care services: what an elder needs, who serves, when it happened, who confirmed it and what was credited.

One ``ServiceOrder`` row follows a service through its whole life (the state machine is in ``states.py``):
posted as a request, assigned to a volunteer, checked in and out, confirmed by the elder, reviewed by the
station and credited through the ledger. Time is in integer minutes throughout.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from timebank.common.models import TimeStampedModel
from timebank.people.models import Member
from timebank.regions.models import Policy, Region, ServiceCategory


class Funding(models.TextChoices):
    OWN = "own", _("The elder's own savings")
    FAMILY = "family", _("A family member's savings")
    POOL = "pool", _("The mutual-aid pool")
    PUBLIC = "public", _("The public service fund")


class Status(models.TextChoices):
    OPEN = "open", _("Open")
    ASSIGNED = "assigned", _("Assigned")
    IN_PROGRESS = "in_progress", _("In progress")
    COMPLETED = "completed", _("Completed")
    CONFIRMED = "confirmed", _("Confirmed")
    APPROVED = "approved", _("Approved")
    CREDITED = "credited", _("Credited")
    CANCELLED = "cancelled", _("Cancelled")
    EXPIRED = "expired", _("Expired")
    NO_SHOW = "no_show", _("No-show")
    DISPUTED = "disputed", _("Disputed")
    REJECTED = "rejected", _("Rejected")
    REVERSED = "reversed", _("Reversed")


class Source(models.TextChoices):
    APP = "app", _("Posted in the app")
    STAFF = "staff", _("Posted by station staff")
    PAPER = "paper", _("Entered from a paper card")
    IMPORT = "import", _("Imported from paper records")
    SENSORS = "sensors", _("Recorded from proximity sensors")


class TimeMethod(models.TextChoices):
    APP = "app", _("In the app")
    QR = "qr", _("Service-card QR code")
    PAPER = "paper", _("From a paper card")
    STAFF = "staff", _("Entered by staff")
    SENSORS = "sensors", _("Measured by proximity sensors")


class ConfirmMethod(models.TextChoices):
    PIN = "pin", _("Elder's PIN")
    CARD_CODE = "card_code", _("One-time code from the service card")
    DEVICE = "device", _("On the elder's own device")
    PROXY = "proxy", _("By a family member")
    PAPER = "paper", _("Signed paper card")
    STAFF = "staff", _("By station staff after calling the elder")


class ServiceOrder(TimeStampedModel):
    elder = models.ForeignKey(
        Member, models.PROTECT, related_name="services_received", verbose_name=_("elder")
    )
    region = models.ForeignKey(Region, models.PROTECT, related_name="+", verbose_name=_("community"))
    address = models.CharField(_("address"), max_length=200, blank=True)
    category = models.ForeignKey(
        ServiceCategory, models.PROTECT, related_name="+", verbose_name=_("service category")
    )
    window_start = models.DateTimeField(_("from"))
    window_end = models.DateTimeField(_("until"))
    notes = models.CharField(_("notes"), max_length=500, blank=True)
    funding = models.CharField(_("paid from"), max_length=8, choices=Funding.choices)
    payer = models.ForeignKey(
        Member, models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("paid by")
    )
    source = models.CharField(_("source"), max_length=8, choices=Source.choices, default=Source.APP)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, null=True, blank=True, related_name="+"
    )
    series = models.UUIDField(null=True, blank=True, db_index=True)
    occurrence = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.OPEN)
    status_changed_at = models.DateTimeField(_("status changed"))

    volunteer = models.ForeignKey(
        Member,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="services_given",
        verbose_name=_("volunteer"),
    )
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, null=True, blank=True, related_name="+"
    )
    assigned_at = models.DateTimeField(null=True, blank=True)
    hold = models.OneToOneField(
        "ledger.Hold", models.PROTECT, null=True, blank=True, related_name="service_order"
    )
    budget = models.ForeignKey(
        "care.FundBudget", models.PROTECT, null=True, blank=True, related_name="orders"
    )
    reserved_minutes = models.PositiveIntegerField(_("minutes reserved"), default=0)

    checked_in_at = models.DateTimeField(_("checked in"), null=True, blank=True)
    check_in_method = models.CharField(max_length=8, choices=TimeMethod.choices, blank=True)
    checked_out_at = models.DateTimeField(_("checked out"), null=True, blank=True)
    check_out_method = models.CharField(max_length=8, choices=TimeMethod.choices, blank=True)
    travel_minutes = models.PositiveIntegerField(_("travel time excluded (minutes)"), default=0)
    service_minutes = models.PositiveIntegerField(_("service time (minutes)"), null=True, blank=True)
    overlap_flag = models.BooleanField(_("overlaps another service"), default=False)
    paper_card_ref = models.CharField(_("paper card"), max_length=40, blank=True)
    times_entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, null=True, blank=True, related_name="+"
    )

    confirmed_at = models.DateTimeField(_("confirmed"), null=True, blank=True)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, null=True, blank=True, related_name="+"
    )
    confirmation_method = models.CharField(
        _("confirmed by"), max_length=10, choices=ConfirmMethod.choices, blank=True
    )
    escalated_at = models.DateTimeField(_("escalated to the station"), null=True, blank=True)

    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.CharField(_("reason"), max_length=300, blank=True)
    policy = models.ForeignKey(Policy, models.PROTECT, null=True, blank=True, related_name="+")
    coefficient_permille = models.PositiveIntegerField(null=True, blank=True)
    credited_minutes = models.PositiveIntegerField(_("credited (minutes)"), null=True, blank=True)
    capped_minutes = models.PositiveIntegerField(_("not credited over the daily cap"), default=0)
    overflow_minutes = models.PositiveIntegerField(_("routed to the pool over the account cap"), default=0)
    credit_transaction = models.OneToOneField(
        "ledger.Transaction", models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("service")
        verbose_name_plural = _("services")
        ordering = ["-window_start", "-id"]
        indexes = [
            models.Index(fields=["status", "window_start"], name="care_order_status_start"),
            models.Index(fields=["volunteer", "status"], name="care_order_volunteer_status"),
            models.Index(fields=["elder", "status"], name="care_order_elder_status"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(window_end__gt=models.F("window_start")), name="care_window"),
            models.CheckConstraint(
                condition=Q(checked_out_at__isnull=True) | Q(checked_out_at__gte=models.F("checked_in_at")),
                name="care_check_out_after_in",
            ),
            models.CheckConstraint(condition=~Q(volunteer=models.F("elder")), name="care_not_self"),
        ]

    def __str__(self) -> str:
        return f"S{self.pk} {self.category.code} {self.status}"

    @property
    def number(self) -> str:
        return f"S{self.pk:06d}"


class Certification(models.Model):
    """A volunteer's certification (care worker, counsellor, lawyer…) that opens gated categories."""

    member = models.ForeignKey(Member, models.PROTECT, related_name="certifications")
    code = models.SlugField(_("certification"), max_length=40)
    valid_until = models.DateField(_("valid until"), null=True, blank=True)
    granted_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.PROTECT, related_name="+")
    granted_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("certification")
        verbose_name_plural = _("certifications")
        constraints = [
            models.UniqueConstraint(
                fields=["member", "code"],
                condition=Q(revoked_at__isnull=True),
                name="care_cert_active_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.member} · {self.code}"


class FundBudget(models.Model):
    """The public service fund's budget for a jurisdiction and year, in minutes. ``committed`` counts minutes
    reserved for assigned services and minutes credited; it changes only under a row lock."""

    region = models.ForeignKey(Region, models.PROTECT, related_name="+", verbose_name=_("region"))
    year = models.PositiveSmallIntegerField(_("year"))
    limit_minutes = models.PositiveBigIntegerField(_("budget (minutes)"))
    committed_minutes = models.BigIntegerField(_("committed (minutes)"), default=0)
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("public fund budget")
        verbose_name_plural = _("public fund budgets")
        constraints = [
            models.UniqueConstraint(fields=["region", "year"], name="care_budget_region_year"),
            models.CheckConstraint(condition=Q(committed_minutes__gte=0), name="care_budget_committed"),
        ]

    def __str__(self) -> str:
        return f"{self.region} {self.year}"

    @property
    def remaining_minutes(self) -> int:
        return int(self.limit_minutes) - int(self.committed_minutes)


class ServiceCard(models.Model):
    """The elder's printed service card: a signed QR code volunteers scan to check in, and numbered one-time
    codes the elder can read out to confirm a service. Reissuing a card revokes the old one."""

    elder = models.ForeignKey(Member, models.PROTECT, related_name="service_cards")
    serial = models.CharField(max_length=16, unique=True)
    issued_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.PROTECT, related_name="+")
    issued_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    used_codes = models.JSONField(default=list)

    class Meta:
        verbose_name = _("service card")
        verbose_name_plural = _("service cards")
        constraints = [
            models.UniqueConstraint(
                fields=["elder"], condition=Q(revoked_at__isnull=True), name="care_one_live_card"
            )
        ]

    def __str__(self) -> str:
        return f"{self.elder} · {self.serial}"


class ElderSecret(models.Model):
    """The elder's confirmation PIN (hashed) and the lockout against guessing it or the card's codes."""

    elder = models.OneToOneField(Member, models.PROTECT, related_name="care_secret")
    pin_hash = models.CharField(max_length=200, blank=True)
    pin_set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, null=True, blank=True, related_name="+"
    )
    failed_attempts = models.PositiveSmallIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)
    # locks in a row without a right code since: each lasts twice as long as the one before
    lockouts = models.PositiveSmallIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.elder}"


class Side(models.TextChoices):
    ELDER = "elder", _("Elder's side")
    VOLUNTEER = "volunteer", _("Volunteer")


class Rating(models.Model):
    order = models.ForeignKey(ServiceOrder, models.PROTECT, related_name="ratings")
    side = models.CharField(_("rated by"), max_length=10, choices=Side.choices)
    stars = models.PositiveSmallIntegerField(_("stars"))
    comment = models.CharField(_("comment"), max_length=300, blank=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("rating")
        verbose_name_plural = _("ratings")
        constraints = [
            models.UniqueConstraint(fields=["order", "side"], name="care_rating_once_per_side"),
            models.CheckConstraint(condition=Q(stars__gte=1, stars__lte=5), name="care_rating_stars"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id} {self.side} {self.stars}"


class Outcome(models.TextChoices):
    STANDS = "stands", _("The record stands")
    CORRECTED = "corrected", _("Time corrected")
    VOID = "void", _("No credit: the service is void")


class Dispute(models.Model):
    order = models.ForeignKey(ServiceOrder, models.PROTECT, related_name="disputes")
    raised_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.PROTECT, related_name="+")
    reason = models.CharField(_("complaint"), max_length=500)
    from_status = models.CharField(max_length=12, choices=Status.choices)
    opened_at = models.DateTimeField(auto_now_add=True)
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices, blank=True)
    corrected_minutes = models.PositiveIntegerField(
        _("corrected service time (minutes)"), null=True, blank=True
    )
    resolution = models.CharField(_("resolution"), max_length=500, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    reversal = models.OneToOneField(
        "ledger.Transaction", models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("dispute")
        verbose_name_plural = _("disputes")
        constraints = [
            models.UniqueConstraint(
                fields=["order"], condition=Q(resolved_at__isnull=True), name="care_one_open_dispute"
            )
        ]

    def __str__(self) -> str:
        return f"D{self.pk} S{self.order_id}"


__all__ = [
    "Certification",
    "ConfirmMethod",
    "Dispute",
    "ElderSecret",
    "FundBudget",
    "Funding",
    "Outcome",
    "Rating",
    "ServiceCard",
    "ServiceOrder",
    "Side",
    "Source",
    "Status",
    "TimeMethod",
]
