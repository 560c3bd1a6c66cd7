"""My notifications: the in-app notices, told in the language of the request, and marking them read."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Schema
from pydantic import Field, model_validator

from timebank.api.common import Id, Strict, caller, page
from timebank.api.main import api, idempotent, scope_check
from timebank.notifications.models import Notification
from timebank.notifications.selectors import notifications_for, notifications_unread_count
from timebank.notifications.services import notifications_mark_read, render


class NotificationOut(Schema):
    id: int
    kind: str
    title: str
    body: str
    params: dict[str, Any]
    link: str
    created_at: dt.datetime
    read_at: dt.datetime | None


class NotificationsOut(Schema):
    notifications: list[NotificationOut]
    unread_count: int
    next_cursor: str | None


def _notification_out(notice: Notification) -> dict[str, Any]:
    title, body = render(notice.kind, notice.params)
    return {
        "id": notice.pk,
        "kind": notice.kind,
        "title": title,
        "body": body,
        "params": notice.params,
        "link": notice.link,
        "created_at": notice.created_at,
        "read_at": notice.read_at,
    }


@api.get("/notifications", response=NotificationsOut, tags=["notifications"])
def notifications(
    request: HttpRequest, unread: bool = False, cursor: str | None = None, limit: int = 50
) -> dict[str, Any]:
    """My notifications, newest first (only the unread ones with ``unread=true``), and how many are unread."""
    user = caller(request)
    rows, next_cursor = page(notifications_for(user, unread=unread), cursor, limit, _notification_out)
    return {
        "notifications": rows,
        "unread_count": notifications_unread_count(user),
        "next_cursor": next_cursor,
    }


class MarkRead(Strict):
    """Either ``ids`` (of my notifications; others are ignored) or ``"all": true``."""

    ids: list[Id] | None = Field(None, min_length=1, max_length=500)
    all: bool = False

    @model_validator(mode="after")
    def _one_of(self) -> MarkRead:
        if (self.ids is None) == (not self.all):
            raise ValueError(_("Send either ids or all."))
        return self


class MarkedOut(Schema):
    marked: int
    unread_count: int


@api.post("/notifications/read", response=MarkedOut, tags=["notifications"])
@idempotent(required=False)
def notifications_read(request: HttpRequest, payload: MarkRead) -> dict[str, Any]:
    """Mark my notifications read: the given ones, or all. Answers how many changed and how many are left."""
    scope_check(request, "write")
    user = caller(request)
    marked = notifications_mark_read(user=user, ids=None if payload.all else payload.ids)
    return {"marked": marked, "unread_count": notifications_unread_count(user)}
