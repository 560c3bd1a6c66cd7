"""Writes of the notification centre: notify people in the app, by email and (for members without the app) by
SMS. In-app rows are written in the caller's transaction; email and SMS go out only after it commits."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone, translation
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from timebank.notifications.models import Notification
from timebank.people.models import Member, User

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    title: Any  # lazy translatable, formatted with the notification's params
    body: Any


MESSAGES: dict[str, Message] = {}


def messages_register(messages: Mapping[str, Message]) -> None:
    """Domains register the kinds of notification they send (in their AppConfig.ready)."""
    MESSAGES.update(messages)


def in_each_language(key: str, make: Callable[[], Any]) -> dict[str, str]:
    """A notice parameter that depends on the language (minutes, a status's label), made in Chinese and in
    English: ``key`` and ``key_en``."""
    with translation.override("zh-hans"):
        zh = str(make())
    with translation.override("en"):
        en = str(make())
    return {key: zh, f"{key}_en": en}


def render(kind: str, params: Mapping[str, Any]) -> tuple[str, str]:
    """Title and body in the active language."""
    message = MESSAGES.get(kind)
    if message is None:
        return str(_("Notice")), ""
    if (translation.get_language() or "").startswith("en"):
        params = {key: params.get(f"{key}_en", value) for key, value in params.items()}
    return str(message.title) % params, str(message.body) % params


class SmsSender(Protocol):
    def send(self, mobile: str, text: str) -> None: ...


class LogSms:
    """Writes messages to the log: the embedded default, where no SMS gateway is set up."""

    def send(self, mobile: str, text: str) -> None:
        log.info("sms to %s: %s", mobile, text)


class MemorySms:
    """Keeps messages in memory (tests read ``outbox``)."""

    outbox: list[tuple[str, str]] = []

    def send(self, mobile: str, text: str) -> None:
        self.outbox.append((mobile, text))


def sms_sender() -> SmsSender:
    sender: SmsSender = import_string(settings.SMS_BACKEND)()
    return sender


def notify(
    *,
    kind: str,
    params: Mapping[str, Any],
    users: Iterable[User] = (),
    members: Iterable[Member | None] = (),
    link: str = "",
) -> list[Notification]:
    """Tell ``users`` and ``members``. A member with a sign-in is told in the app (and by email if they gave
    one); a member without one but with a mobile number gets an SMS."""
    recipients: dict[int, User] = {u.pk: u for u in users if u is not None and u.is_active}
    texts: list[str] = []
    named = {member.pk: member for member in members if member is not None}  # each person told once
    for member in named.values():
        user = User.objects.filter(member=member, is_active=True).first()
        if user is not None:
            recipients.setdefault(user.pk, user)
        elif member.mobile and member.mobile not in texts:
            texts.append(member.mobile)
    params = dict(params)
    created = Notification.objects.bulk_create(
        Notification(recipient=user, kind=kind, params=params, link=link) for user in recipients.values()
    )
    emails = [u.email for u in recipients.values() if u.email]

    def deliver() -> None:
        with translation.override(settings.LANGUAGE_CODE):
            title, body = render(kind, params)
        for address in emails:
            try:
                send_mail(title, body, None, [address])
            except Exception:  # a mail server being down must not undo or hide the service's own work
                log.exception("email to %s failed", address)
        sender = sms_sender()
        for mobile in texts:
            try:
                sender.send(mobile, f"{title}：{body}")
            except Exception:
                log.exception("sms to %s failed", mobile)

    transaction.on_commit(deliver)
    return created


def notifications_mark_read(*, user: User, ids: Iterable[int] | None = None) -> int:
    """Mark the user's notifications read (all, or the given ones). Returns how many changed."""
    unread = Notification.objects.filter(recipient=user, read_at__isnull=True)
    if ids is not None:
        unread = unread.filter(pk__in=list(ids))
    return unread.update(read_at=timezone.now())
