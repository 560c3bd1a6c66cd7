from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import models
from django.http import HttpRequest


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """For records that change only through validated, audited services."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AuditedAdminMixin:
    """Admin writes go to the audit log like every other staff write: changes with old and new values
    (passwords masked), password changes and deletions too."""

    def save_model(self, request: HttpRequest, obj: models.Model, form: Any, change: bool) -> None:
        from timebank.audit.services import audit_record

        super().save_model(request, obj, form, change)  # type: ignore[misc]
        fields = list(form.changed_data)
        old = {f: _shown(f, form.initial.get(f)) for f in fields} if change else None
        new = {f: _shown(f, form.cleaned_data.get(f)) for f in fields}
        audit_record(
            actor=_actor(request),
            event_type="admin.changed" if change else "admin.added",
            subject=obj,
            region=None,
            old=old,
            new=new,
        )
        request._timebank_audited = True  # type: ignore[attr-defined]

    def log_change(self, request: HttpRequest, obj: models.Model, message: Any) -> Any:
        from timebank.audit.services import audit_record

        if not getattr(request, "_timebank_audited", False):  # e.g. the admin's own password-change form
            audit_record(
                actor=_actor(request),
                event_type="admin.changed",
                subject=obj,
                region=None,
                new={"change": str(message)[:500]},
            )
        return super().log_change(request, obj, message)  # type: ignore[misc]

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        from timebank.audit.services import audit_record

        for obj in queryset:
            audit_record(
                actor=_actor(request),
                event_type="admin.deleted",
                subject=obj,
                region=None,
                old={"object": str(obj)},
            )
        return super().log_deletions(request, queryset)  # type: ignore[misc]


def _actor(request: HttpRequest) -> Any:
    return request.user if request.user.is_authenticated else None


def _shown(field: str, value: Any) -> Any:
    if "password" in field:
        return "…"
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, (list, tuple)) or (hasattr(value, "__iter__") and not isinstance(value, str)):
        return [v.pk if isinstance(v, models.Model) else str(v) for v in value]
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
