from __future__ import annotations

import getpass
from typing import TYPE_CHECKING, Any

from django.db import models

from timebank.audit.models import AuditEvent
from timebank.common.context import current_origin

if TYPE_CHECKING:
    from timebank.people.models import Member, User
    from timebank.regions.models import Region


def audit_record(
    *,
    actor: User | None,
    event_type: str,
    subject: models.Model,
    region: Region | None,
    old: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
    on_behalf_of: Member | None = None,
) -> AuditEvent:
    """Record an event inside the caller's transaction, so the record and the change commit together."""
    origin = current_origin()
    return AuditEvent.objects.create(
        actor=actor if actor is not None and actor.pk else None,
        actor_label=actor.get_username()
        if actor is not None and actor.pk
        else _unnamed_actor(origin.channel),
        on_behalf_of=on_behalf_of,
        event_type=event_type,
        subject_type=subject._meta.label_lower,
        subject_id=str(subject.pk),
        region=region,
        region_path=region.path if region is not None else "",
        old=_jsonable(old),
        new=_jsonable(new),
        ip=origin.ip,
        channel=origin.channel,
    )


def _jsonable(values: dict[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, models.Model):
            out[key] = value.pk
        elif isinstance(value, (str, int, float, bool, type(None), list, dict)):
            out[key] = value
        else:
            out[key] = str(value)
    return out


def _unnamed_actor(channel: str) -> str:
    """Who acted when no sign-in did: for the command line, the operating-system user who ran it."""
    if channel != "cli":
        return channel
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"
