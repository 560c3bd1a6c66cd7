from django.contrib import admin

from timebank.common.admin import ReadOnlyAdmin
from timebank.regions.models import Policy, Region, ServiceCategory


@admin.register(Region)
class RegionAdmin(ReadOnlyAdmin):
    """Regions come from `timebank regions import`, which validates every code."""

    list_display = ["code", "name", "name_en", "level"]
    list_filter = ["level"]
    search_fields = ["code", "name", "name_en"]


class CategoryInline(admin.TabularInline):  # type: ignore[type-arg]
    model = ServiceCategory
    extra = 0
    can_delete = False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False

    def has_add_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(Policy)
class PolicyAdmin(ReadOnlyAdmin):
    """Policy versions come from `timebank policies`, which validates every field; versions never change."""

    list_display = ["name", "region", "version", "effective_from", "preset"]
    inlines = [CategoryInline]
