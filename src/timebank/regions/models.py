from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from timebank.regions.codes import Level


class Region(models.Model):
    """A node of the administrative tree. ``path`` is the chain of codes from the root, so a subtree is one
    indexed prefix match and the ancestors are known without a query."""

    code = models.CharField(_("code"), max_length=12, unique=True)
    name = models.CharField(_("name"), max_length=64)
    name_en = models.CharField(_("English name"), max_length=128, blank=True)
    level = models.CharField(_("level"), max_length=16, choices=Level.choices)
    parent = models.ForeignKey("self", models.PROTECT, null=True, blank=True, related_name="children")
    path = models.CharField(max_length=100, unique=True, editable=False)
    depth = models.PositiveSmallIntegerField(editable=False)

    class Meta:
        verbose_name = _("region")
        verbose_name_plural = _("regions")
        ordering = ["path"]
        indexes = [
            models.Index(fields=["path"], name="region_path_prefix", opclasses=["varchar_pattern_ops"])
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        if (get_language() or "").startswith("en") and self.name_en:
            return self.name_en
        return self.name

    @property
    def ancestor_codes(self) -> list[str]:
        """Codes from the root down to and including this node."""
        return [c for c in self.path.split("/") if c]

    @property
    def ancestor_paths(self) -> list[str]:
        """Paths of the nodes from the root down to and including this one (for ``path__in`` lookups)."""
        return path_prefixes(self.path)

    def contains(self, other: Region) -> bool:
        return other.path.startswith(self.path)


def path_prefixes(path: str) -> list[str]:
    """``"310000/310100/"`` → ``["310000/", "310000/310100/"]``: the path of each node above and at it."""
    codes = [c for c in path.split("/") if c]
    return ["".join(f"{c}/" for c in codes[:n]) for n in range(1, len(codes) + 1)]


class CapOverflow(models.TextChoices):
    REFUSE = "refuse", _("Refuse the deposit")
    POOL = "pool", _("Route the excess to the mutual-aid pool")


class Rounding(models.TextChoices):
    DOWN = "down", _("Round down")
    NEAREST = "nearest", _("Round to nearest")
    UP = "up", _("Round up")


class Policy(models.Model):
    """One version of a jurisdiction's rules. Versions are never edited: a change is a new version with
    a later ``effective_from``, so a service is always credited under the rules in force when it happened."""

    region = models.ForeignKey(Region, models.PROTECT, related_name="policies")
    version = models.PositiveIntegerField(editable=False)
    name = models.CharField(_("name"), max_length=120)
    preset = models.CharField(_("preset"), max_length=40, blank=True)
    source = models.TextField(_("source of the rules"), blank=True)
    effective_from = models.DateField(_("effective from"))
    minutes_per_coin = models.PositiveIntegerField(_("minutes per time coin"), default=60)
    min_volunteer_age = models.PositiveSmallIntegerField(_("minimum volunteer age"), default=18)
    withdrawal_age = models.PositiveSmallIntegerField(_("withdrawal age for holders"), default=60)
    hardship_withdrawal_age = models.PositiveSmallIntegerField(
        _("withdrawal age in special hardship"), null=True, blank=True
    )
    spouse_may_withdraw = models.BooleanField(_("spouse may withdraw"), default=False)
    transfer_relations = models.JSONField(_("relations that may receive transfers"), default=list, blank=True)
    transfer_recipient_min_age = models.PositiveSmallIntegerField(
        _("minimum age of a transfer recipient"), null=True, blank=True
    )
    transfer_annual_limit_minutes = models.PositiveIntegerField(
        _("yearly limit of transfers and gifts per holder (minutes)"), null=True, blank=True
    )
    donation_allowed = models.BooleanField(_("donation to the mutual-aid pool allowed"), default=True)
    group_time_donation_only = models.BooleanField(_("group-earned time may only be donated"), default=False)
    goods_allowed = models.BooleanField(_("goods redemption allowed"), default=False)
    money_purchase_allowed = models.BooleanField(_("buying time with money allowed"), default=False)
    purchase_fen_per_coin = models.PositiveIntegerField(_("price of one coin in fen"), null=True, blank=True)
    account_cap_minutes = models.PositiveIntegerField(_("account cap (minutes)"), null=True, blank=True)
    cap_overflow = models.CharField(
        _("over the cap"), max_length=8, choices=CapOverflow.choices, default=CapOverflow.REFUSE
    )
    daily_earning_cap_minutes = models.PositiveIntegerField(
        _("daily earning cap (minutes)"), null=True, blank=True
    )
    credit_line_minutes = models.PositiveIntegerField(_("credit line (minutes)"), default=0)
    rounding_minutes = models.PositiveSmallIntegerField(_("round service time to (minutes)"), default=1)
    rounding_mode = models.CharField(
        _("rounding"), max_length=8, choices=Rounding.choices, default=Rounding.DOWN
    )
    star_thresholds_hours = models.JSONField(_("star-level thresholds (hours)"), default=list)
    # Smart timing (``timebank.sensing``): how proximity sightings become co-presence sessions, and when a
    # service whose sensors agree with its claimed time is approved without a reviewer.
    sensing_rssi_threshold_dbm = models.SmallIntegerField(
        _("weakest signal that counts as together (dBm)"), default=-75
    )
    sensing_merge_gap_seconds = models.PositiveIntegerField(
        _("gap merged into one session (seconds)"), default=120
    )
    sensing_min_duration_seconds = models.PositiveIntegerField(
        _("shortest session kept (seconds)"), default=300
    )
    sensing_tolerance_minutes = models.PositiveIntegerField(
        _("measured and claimed time agree within (minutes)"), default=10
    )
    sensing_auto_approve = models.BooleanField(
        _("approve confirmed services the sensors agree with automatically"), default=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("jurisdiction policy")
        verbose_name_plural = _("jurisdiction policies")
        ordering = ["region__path", "-effective_from", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["region", "version"], name="policy_region_version_unique"),
            models.CheckConstraint(condition=models.Q(minutes_per_coin__gt=0), name="policy_unit_positive"),
            models.CheckConstraint(
                condition=models.Q(rounding_minutes__gt=0), name="policy_rounding_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(sensing_rssi_threshold_dbm__lte=0, sensing_rssi_threshold_dbm__gte=-127),
                name="policy_sensing_rssi_range",
            ),
            models.CheckConstraint(
                condition=models.Q(sensing_merge_gap_seconds__gt=0), name="policy_sensing_gap_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version} ({self.effective_from})"


class ServiceCategory(models.Model):
    """A category of service in a policy version, in a tier with an intensity coefficient (per mille)."""

    policy = models.ForeignKey(Policy, models.CASCADE, related_name="categories")
    code = models.SlugField(_("code"), max_length=40)
    name = models.CharField(_("name"), max_length=64)
    name_en = models.CharField(_("English name"), max_length=128)
    tier = models.PositiveSmallIntegerField(_("tier"), default=1)
    coefficient_permille = models.PositiveIntegerField(_("coefficient (‰)"), default=1000)
    requires_certification = models.SlugField(_("required certification"), max_length=40, blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = _("service category")
        verbose_name_plural = _("service categories")
        ordering = ["policy", "position"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "code"], name="category_policy_code_unique"),
            models.CheckConstraint(
                condition=models.Q(coefficient_permille__gt=0), name="category_coefficient_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.name_en if (get_language() or "").startswith("en") else self.name


__all__ = ["CapOverflow", "Policy", "Region", "Rounding", "ServiceCategory", "path_prefixes"]
