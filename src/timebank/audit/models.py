from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from timebank.common.errors import Conflict


class AuditEvent(models.Model):
    """One thing that happened: who did it, for whom, what changed, when (UTC) and from where.

    Append-only: this model refuses to update or delete itself, and the database refuses it too
    (triggers installed by the migration on both PostgreSQL and SQLite)."""

    at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("who"),
    )
    actor_label = models.CharField(_("who"), max_length=150, blank=True)
    on_behalf_of = models.ForeignKey(
        "people.Member",
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("on behalf of"),
    )
    event_type = models.CharField(_("event"), max_length=64, db_index=True)
    subject_type = models.CharField(_("subject type"), max_length=40)
    subject_id = models.CharField(_("subject"), max_length=40)
    region = models.ForeignKey(
        "regions.Region", models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("region")
    )
    region_path = models.CharField(max_length=100, blank=True, db_index=True)
    old = models.JSONField(_("old values"), null=True, blank=True)
    new = models.JSONField(_("new values"), null=True, blank=True)
    ip = models.GenericIPAddressField(_("from"), null=True, blank=True)
    channel = models.CharField(_("channel"), max_length=8)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(
                fields=["region_path", "-at"], name="audit_region_at", opclasses=["varchar_pattern_ops", ""]
            ),
            models.Index(fields=["subject_type", "subject_id"], name="audit_subject"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.event_type} {self.subject_type}:{self.subject_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise Conflict(_("The audit log cannot be changed."), code="audit_append_only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise Conflict(_("The audit log cannot be changed."), code="audit_append_only")
