from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.db.models.functions import Greatest, Least
from django.utils.translation import gettext_lazy as _

from timebank.common.kinship import INVERSE_RELATION, Relation
from timebank.common.models import TimeStampedModel
from timebank.regions.models import Region


class Sex(models.TextChoices):
    MALE = "M", _("Male")
    FEMALE = "F", _("Female")


class Member(TimeStampedModel):
    """A person the time bank serves or who serves in it: a volunteer, an elder and a family member at once
    if life makes them so. A member needs no sign-in: staff can manage everything on their behalf."""

    name = models.CharField(_("name"), max_length=50)
    mobile = models.CharField(_("mobile number"), max_length=11, blank=True, db_index=True)
    id_number_cipher = models.TextField(blank=True, editable=False)
    id_number_hash = models.CharField(max_length=64, blank=True, editable=False)
    id_number_masked = models.CharField(_("ID number"), max_length=18, blank=True, editable=False)
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    sex = models.CharField(_("sex"), max_length=1, choices=Sex.choices, blank=True)
    home_region = models.ForeignKey(
        Region, models.PROTECT, related_name="members", verbose_name=_("home community")
    )
    address = models.CharField(_("address"), max_length=200, blank=True)
    emergency_contact_name = models.CharField(_("emergency contact"), max_length=50, blank=True)
    emergency_contact_mobile = models.CharField(_("emergency contact's mobile"), max_length=11, blank=True)
    languages = models.JSONField(_("languages"), default=list, blank=True)
    skills = models.JSONField(_("skills"), default=list, blank=True)
    health_notes_cipher = models.TextField(blank=True, editable=False)
    is_volunteer = models.BooleanField(_("volunteer"), default=False)
    is_elder = models.BooleanField(_("elder (receives services)"), default=False)
    is_group = models.BooleanField(
        _("a group (a team or an organisation that volunteers together)"), default=False
    )
    is_active = models.BooleanField(_("active"), default=True)
    account = models.OneToOneField(
        "ledger.Account",
        models.PROTECT,
        null=True,
        blank=True,
        related_name="member",
        verbose_name=_("time account"),
    )

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["id_number_hash"], condition=~Q(id_number_hash=""), name="member_id_number_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def has_health_notes(self) -> bool:
        return bool(self.health_notes_cipher)


class User(AbstractUser):
    """A sign-in: staff, merchant staff, or a member using the app. Staff serve members without one."""

    mobile = models.CharField(_("mobile number"), max_length=11, unique=True, null=True, blank=True)
    member = models.OneToOneField(
        Member, models.PROTECT, null=True, blank=True, related_name="user", verbose_name=_("member")
    )
    failed_sign_ins = models.PositiveSmallIntegerField(_("failed sign-ins"), default=0, editable=False)
    last_failed_sign_in = models.DateTimeField(
        _("last failed sign-in"), null=True, blank=True, editable=False
    )
    locked_until = models.DateTimeField(_("locked until"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    @property
    def display_name(self) -> str:
        if self.member_id is not None and self.member is not None:
            return self.member.name
        return self.get_full_name() or self.get_username()


class PriorityGroup(models.TextChoices):
    LIVING_ALONE = "living_alone", _("Living alone or empty-nest")
    DISABLED = "disabled", _("Disabled or dependent")
    LOW_INCOME = "low_income", _("Low-income")
    ADVANCED_AGE = "advanced_age", _("Advanced age")


class PriorityStatus(models.Model):
    """A priority group an elder belongs to. Only a verified status opens publicly funded service."""

    member = models.ForeignKey(Member, models.CASCADE, related_name="priority_statuses")
    group = models.CharField(_("priority group"), max_length=20, choices=PriorityGroup.choices)
    note = models.CharField(_("note"), max_length=200, blank=True)
    claimed_at = models.DateTimeField(auto_now_add=True)
    verified_by = models.ForeignKey(User, models.PROTECT, null=True, blank=True, related_name="+")
    verified_at = models.DateTimeField(_("verified at"), null=True, blank=True)

    class Meta:
        verbose_name = _("priority status")
        verbose_name_plural = _("priority statuses")
        constraints = [
            models.UniqueConstraint(fields=["member", "group"], name="priority_member_group_unique")
        ]

    def __str__(self) -> str:
        return f"{self.member} · {self.get_group_display()}"

    @property
    def is_verified(self) -> bool:
        return self.verified_at is not None


class BondStatus(models.TextChoices):
    PROPOSED = "proposed", _("Proposed")
    VERIFIED = "verified", _("Verified")
    REJECTED = "rejected", _("Rejected")


class FamilyBond(models.Model):
    """``relative`` is ``member``'s <relation>: proposed by one side, verified by staff."""

    member = models.ForeignKey(Member, models.PROTECT, related_name="bonds")
    relative = models.ForeignKey(Member, models.PROTECT, related_name="bonds_as_relative")
    relation = models.CharField(_("relation"), max_length=12, choices=Relation.choices)
    status = models.CharField(
        _("status"), max_length=10, choices=BondStatus.choices, default=BondStatus.PROPOSED
    )
    proposed_by = models.ForeignKey(User, models.PROTECT, null=True, blank=True, related_name="+")
    proposed_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(User, models.PROTECT, null=True, blank=True, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(_("reason"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("family bond")
        verbose_name_plural = _("family bonds")
        constraints = [
            models.CheckConstraint(condition=~Q(member=models.F("relative")), name="bond_not_self"),
            # One live bond per pair, whichever way round it was proposed.
            models.UniqueConstraint(
                Least("member", "relative"),
                Greatest("member", "relative"),
                condition=~Q(status="rejected"),
                name="bond_pair_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.relative} → {self.member} ({self.get_relation_display()})"

    def seen_from(self, member: Member) -> tuple[Member, str]:
        """The other member of the bond and what they are to ``member`` (e.g. "child")."""
        if member.pk == self.member_id:
            return self.relative, self.relation
        return self.member, INVERSE_RELATION[self.relation]


class Role(models.TextChoices):
    STATION_STAFF = "station_staff", _("Station staff")
    COMMUNITY_STAFF = "community_staff", _("Community staff")
    OPERATOR = "operator", _("Operator")
    AUDITOR = "auditor", _("Auditor")
    PLATFORM_ADMIN = "platform_admin", _("Platform administrator")
    MERCHANT_STAFF = "merchant_staff", _("Merchant staff")


class StaffGrant(models.Model):
    """A role on a region node, valid for its whole subtree, until revoked."""

    user = models.ForeignKey(User, models.PROTECT, related_name="grants", verbose_name=_("user"))
    role = models.CharField(_("role"), max_length=20, choices=Role.choices)
    region = models.ForeignKey(Region, models.PROTECT, related_name="grants", verbose_name=_("region"))
    granted_by = models.ForeignKey(
        User, models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("granted by")
    )
    granted_at = models.DateTimeField(_("granted at"), auto_now_add=True)
    revoked_by = models.ForeignKey(
        User, models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("revoked by")
    )
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("staff grant")
        verbose_name_plural = _("staff grants")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "role", "region"],
                condition=Q(revoked_at__isnull=True),
                name="grant_active_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.get_role_display()} @ {self.region}"


__all__ = [
    "INVERSE_RELATION",
    "BondStatus",
    "FamilyBond",
    "Member",
    "PriorityGroup",
    "PriorityStatus",
    "Relation",
    "Role",
    "Sex",
    "StaffGrant",
    "User",
]
