from __future__ import annotations

from django.db.models import QuerySet

from timebank.notifications.models import Notification
from timebank.people.models import User


def notifications_for(user: User) -> QuerySet[Notification]:
    return Notification.objects.filter(recipient=user).order_by("-created_at", "-id")


def notifications_unread_count(user: User) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()
