from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from timebank.exchange.selectors import merchants_of
from timebank.notifications.selectors import notifications_unread_count
from timebank.people.access import Perm, access_anywhere, access_is_staff
from timebank.web.views.display import large_text_wanted


def site(request: HttpRequest) -> dict[str, Any]:
    return {"large_text": large_text_wanted(request), **_roles(request)}


def _roles(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {
            "is_staff_member": False,
            "can_view_audit": False,
            "can_grant": False,
            "can_care_view": False,
            "can_care_review": False,
            "can_care_manage": False,
            "can_exchange": False,
            "is_shop_clerk": False,
            "unread_notices": 0,
        }
    return {
        "can_grant": access_anywhere(user, Perm.STAFF_GRANT),
        "is_staff_member": access_is_staff(user),
        "can_view_audit": access_anywhere(user, Perm.AUDIT_VIEW),
        "can_care_view": access_anywhere(user, Perm.CARE_VIEW),
        "can_care_review": access_anywhere(user, Perm.CARE_REVIEW),
        "can_care_manage": access_anywhere(user, Perm.CARE_MANAGE),
        "can_exchange": access_anywhere(user, Perm.EXCHANGE_MANAGE),
        "is_shop_clerk": SimpleLazyObject(lambda: merchants_of(user).exists()),  # asked only where shown
        "unread_notices": notifications_unread_count(user),
    }
