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
    """Admin writes go to the audit log like every other staff write."""

    def save_model(self, request: HttpRequest, obj: models.Model, form: Any, change: bool) -> None:
        from timebank.audit.services import audit_record

        super().save_model(request, obj, form, change)  # type: ignore[misc]
        changed = list(form.changed_data) if change else ["(new)"]
        audit_record(
            actor=request.user if request.user.is_authenticated else None,
            event_type="admin.changed" if change else "admin.added",
            subject=obj,
            region=None,
            new={
                "fields": [f for f in changed if f != "password"]
                + (["password"] if "password" in changed else [])
            },
        )
