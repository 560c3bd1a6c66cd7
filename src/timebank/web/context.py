from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from timebank.people.access import Perm, access_anywhere, access_is_staff


def site(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"is_staff_member": False, "can_view_audit": False, "can_grant": False}
    return {
        "can_grant": access_anywhere(user, Perm.STAFF_GRANT),
        "is_staff_member": access_is_staff(user),
        "can_view_audit": access_anywhere(user, Perm.AUDIT_VIEW),
    }
