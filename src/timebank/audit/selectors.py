from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet

from timebank.audit.models import AuditEvent
from timebank.people.access import Perm, access_paths, access_region_q
from timebank.people.models import User


def audit_events_visible(
    user: User,
    *,
    event_type: str = "",
    subject_type: str = "",
    subject_id: str = "",
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> QuerySet[AuditEvent]:
    """Events in the user's subtree. Events tied to no region (platform-wide) are for platform admins only."""
    qs = AuditEvent.objects.all()
    if access_paths(user, Perm.AUDIT_VIEW) is not None:
        qs = qs.filter(access_region_q(user, Perm.AUDIT_VIEW, "region_path")).exclude(region_path="")
    if event_type:
        qs = qs.filter(event_type__startswith=event_type)
    if subject_type:
        qs = qs.filter(subject_type=subject_type)
    if subject_id:
        qs = qs.filter(subject_id=subject_id)
    if since is not None:
        qs = qs.filter(at__gte=since)
    if until is not None:
        qs = qs.filter(at__lt=until)
    return qs.select_related("actor", "on_behalf_of").order_by("-at", "-id")
