"""The life of a service, as a table of allowed moves. Anything not listed is refused with a clear error."""

from __future__ import annotations

from django.utils.translation import gettext as _

from timebank.care.models import Status
from timebank.common.errors import Conflict

S = Status

ALLOWED: dict[str, frozenset[str]] = {
    S.OPEN: frozenset({S.ASSIGNED, S.CANCELLED, S.EXPIRED}),
    # back to open when the volunteer withdraws; straight to completed when staff enter a paper card's times
    S.ASSIGNED: frozenset({S.IN_PROGRESS, S.OPEN, S.CANCELLED, S.NO_SHOW, S.COMPLETED}),
    S.IN_PROGRESS: frozenset({S.COMPLETED, S.CANCELLED}),  # cancelled by staff when a visit broke off
    S.COMPLETED: frozenset({S.CONFIRMED, S.DISPUTED, S.REJECTED}),
    S.CONFIRMED: frozenset({S.APPROVED, S.DISPUTED, S.REJECTED}),
    S.APPROVED: frozenset({S.CREDITED}),
    S.CREDITED: frozenset({S.DISPUTED}),
    # only the dispute's resolution moves a disputed service (see RESOLUTIONS)
    S.DISPUTED: frozenset(),
    S.CANCELLED: frozenset(),
    S.EXPIRED: frozenset(),
    S.NO_SHOW: frozenset(),
    S.REJECTED: frozenset(),
    S.REVERSED: frozenset(),
}

# A resolved dispute returns the service to where it was, or ends it (``dispute_resolve`` alone).
RESOLUTIONS = frozenset({S.COMPLETED, S.CONFIRMED, S.CREDITED, S.REJECTED, S.REVERSED})

TERMINAL = frozenset(s for s, moves in ALLOWED.items() if not moves and s != S.DISPUTED)
# Services a volunteer is busy with (their windows must not overlap)
BUSY = frozenset({S.ASSIGNED, S.IN_PROGRESS})
# Services whose time was spent (they count for overlaps of recorded times)
DONE = frozenset({S.COMPLETED, S.CONFIRMED, S.APPROVED, S.CREDITED, S.DISPUTED})


class IllegalTransition(Conflict):
    code = "care_illegal_transition"


def transition_check(current: str, target: str, *, resolving: bool = False) -> None:
    allowed = RESOLUTIONS if resolving and current == S.DISPUTED else ALLOWED.get(current, frozenset())
    if target not in allowed:
        raise IllegalTransition(
            _("A service that is “%(current)s” cannot become “%(target)s”.")
            % {"current": Status(current).label, "target": Status(target).label},
            extra={"from": current, "to": target},
        )
