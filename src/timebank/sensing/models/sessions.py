"""Co-presence sessions and unplanned-help candidates.

- A ``PresenceSession`` is an interval in which a volunteer's and an elder's devices saw each other (derived
  by ``sensing.sessions`` from the stored events). It is matched to the service it belongs to; one that
  belongs to no service is a *candidate* of unplanned help, which the elder or station staff record as a
  service or dismiss.
- ``SessionCursor`` is one row: how far the derivation has read (the last event id) and the newest event time
  it has seen (the watermark), so each run continues where the last stopped.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from timebank.common.models import TimeStampedModel
from timebank.people.models import Member
from timebank.regions.models import Policy, Region

__all__ = ["Candidate", "PresenceSession", "SessionCursor", "SessionStatus"]


class SessionStatus(models.TextChoices):
    OPEN = "open", _("Open")
    CLOSED = "closed", _("Closed")
    BLIP = "blip", _("Too short to count")


class Candidate(models.TextChoices):
    NONE = "", _("Not a candidate")
    PENDING = "pending", _("Waiting for a decision")
    RECORDED = "recorded", _("Recorded as a service")
    DISMISSED = "dismissed", _("Dismissed")


class PresenceSession(TimeStampedModel):
    volunteer = models.ForeignKey(Member, models.PROTECT, related_name="+", verbose_name=_("volunteer"))
    elder = models.ForeignKey(
        Member, models.PROTECT, related_name="presence_sessions", verbose_name=_("elder")
    )
    region = models.ForeignKey(
        Region, models.PROTECT, related_name="+", verbose_name=_("community")
    )  # the elder's community when the session began: whose staff see it
    started_at = models.DateTimeField(_("from"))
    last_seen_at = models.DateTimeField(_("last seen together"))
    ended_at = models.DateTimeField(_("until"), null=True, blank=True)  # set when it closes
    status = models.CharField(
        _("status"), max_length=8, choices=SessionStatus.choices, default=SessionStatus.OPEN
    )
    measured_seconds = models.PositiveIntegerField(_("measured time (seconds)"), default=0)
    volunteer_sightings = models.PositiveIntegerField(_("sightings by the volunteer's devices"), default=0)
    elder_sightings = models.PositiveIntegerField(_("sightings by the elder's devices"), default=0)
    first_event_id = models.BigIntegerField()
    last_event_id = models.BigIntegerField()
    # how far behind the watermark its first sighting arrived (ms): it stays open that much longer
    arrival_lag_ms = models.BigIntegerField(default=0)
    merge_gap_seconds = models.PositiveIntegerField()
    min_duration_seconds = models.PositiveIntegerField()
    policy = models.ForeignKey(Policy, models.PROTECT, null=True, blank=True, related_name="+")
    order = models.ForeignKey(
        "care.ServiceOrder",
        models.PROTECT,
        null=True,
        blank=True,
        related_name="presence_sessions",
        verbose_name=_("service"),
    )
    candidate = models.CharField(
        _("unplanned help"), max_length=10, choices=Candidate.choices, default=Candidate.NONE, blank=True
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    dismiss_reason = models.CharField(_("reason"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("co-presence session")
        verbose_name_plural = _("co-presence sessions")
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["volunteer", "elder", "started_at"], name="sensing_session_pair"),
            models.Index(fields=["status"], name="sensing_session_status"),
            models.Index(fields=["candidate", "started_at"], name="sensing_session_candidate"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(last_seen_at__gte=F("started_at")), name="sensing_session_forward"
            ),
            models.CheckConstraint(
                condition=Q(status="open", ended_at__isnull=True)
                | (~Q(status="open") & Q(ended_at__isnull=False)),
                name="sensing_session_ended_when_closed",
            ),
            models.CheckConstraint(
                condition=~Q(candidate="recorded") | Q(order__isnull=False),
                name="sensing_session_recorded_has_order",
            ),
            models.CheckConstraint(condition=~Q(volunteer=F("elder")), name="sensing_session_not_self"),
        ]

    def __str__(self) -> str:
        return f"P{self.pk} {self.volunteer_id}→{self.elder_id} {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def number(self) -> str:
        return f"P{self.pk:06d}"

    @property
    def measured_minutes(self) -> int:
        return self.measured_seconds // 60


class SessionCursor(models.Model):
    """One row (``name="presence"``): the last event id the derivation read and its watermark (the newest
    event time seen, in milliseconds since the epoch)."""

    name = models.CharField(max_length=20, unique=True)
    last_event_id = models.BigIntegerField(default=0)
    watermark_ms = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_event_id}"
