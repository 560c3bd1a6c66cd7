from __future__ import annotations

from typing import Any

from django import template

from timebank.audit.models import AuditEvent

register = template.Library()


@register.filter
def changes(event: AuditEvent) -> list[tuple[str, Any, Any]]:
    """(field, old, new) for each value an audit event records; a missing side is None."""
    old = event.old or {}
    new = event.new or {}
    keys = list(dict.fromkeys([*old, *new]))
    return [(key, old.get(key), new.get(key)) for key in keys]
