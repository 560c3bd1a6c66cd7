from django.contrib import admin

from timebank.audit.models import AuditEvent
from timebank.common.admin import ReadOnlyAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "event_type", "actor_label", "subject_type", "subject_id", "ip", "channel"]
    list_filter = ["event_type", "channel"]
    search_fields = ["event_type", "subject_id", "actor_label"]
