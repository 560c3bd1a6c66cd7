from __future__ import annotations

from django.db.models import QuerySet

from timebank.notifications.models import Notification
from timebank.people.models import User


def notifications_for(user: User, *, unread: bool = False) -> QuerySet[Notification]:
    """The user's notifications, newest first (only those not yet read, with ``unread``)."""
    qs = Notification.objects.filter(recipient=user)
    if unread:
        qs = qs.filter(read_at__isnull=True)
    return qs.order_by("-created_at", "-id")


def notifications_unread_count(user: User) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()
