from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from timebank.common.admin import AuditedAdminMixin, ReadOnlyAdmin
from timebank.people.models import FamilyBond, Member, PriorityStatus, StaffGrant, User


@admin.register(User)
class UserAdmin(AuditedAdminMixin, DjangoUserAdmin):  # type: ignore[type-arg]
    list_display = ["username", "mobile", "member", "is_superuser", "is_active", "locked_until"]
    fieldsets = (*(DjangoUserAdmin.fieldsets or ()), ("TimeBank", {"fields": ("mobile", "member")}))
    raw_id_fields = ["member"]


@admin.register(Member)
class MemberAdmin(ReadOnlyAdmin):
    """Read-only here: members change in the console, where every change is validated and audited."""

    list_display = ["name", "home_region", "id_number_masked", "is_volunteer", "is_elder", "is_active"]
    list_filter = ["is_volunteer", "is_elder", "is_active"]
    search_fields = ["name", "mobile"]
    exclude = ["health_notes_cipher", "id_number_cipher", "id_number_hash"]


@admin.register(StaffGrant)
class StaffGrantAdmin(ReadOnlyAdmin):
    list_display = ["user", "role", "region", "granted_at", "revoked_at"]
    list_filter = ["role"]


@admin.register(FamilyBond)
class FamilyBondAdmin(ReadOnlyAdmin):
    list_display = ["member", "relative", "relation", "status"]


@admin.register(PriorityStatus)
class PriorityStatusAdmin(ReadOnlyAdmin):
    list_display = ["member", "group", "verified_by", "verified_at"]
