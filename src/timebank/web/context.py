from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from timebank.people.access import Perm, access_is_staff, access_paths


def site(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"is_staff_member": False, "can_view_audit": False, "can_grant": False}
    audit_paths = access_paths(user, Perm.AUDIT_VIEW)
    grant_paths = access_paths(user, Perm.STAFF_GRANT)
    return {
        "can_grant": grant_paths is None or bool(grant_paths),
        "is_staff_member": access_is_staff(user),
        "can_view_audit": audit_paths is None or bool(audit_paths),
    }
