"""What the care services tell people, and the parameters every notice about a service carries."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from timebank.care.models import ServiceOrder
from timebank.common.units import format_minutes
from timebank.notifications.services import Message, in_each_language

MESSAGES = {
    "care.assigned": Message(
        _("Service %(number)s is arranged"),
        _("%(category)s at %(when)s: volunteer %(volunteer)s will come."),
    ),
    "care.offered": Message(
        _("You were assigned service %(number)s"),
        _("%(category)s for %(elder)s at %(when)s, %(place)s."),
    ),
    "care.unassigned": Message(
        _("Service %(number)s is looking for a volunteer again"),
        _("The volunteer withdrew from %(category)s at %(when)s; the request is open again."),
    ),
    "care.checked_in": Message(
        _("Volunteer %(volunteer)s has arrived"),
        _("Service %(number)s (%(category)s) has started."),
    ),
    "care.completed": Message(
        _("Please confirm service %(number)s"),
        _(
            "%(volunteer)s recorded %(minutes)s of %(category)s. Confirm it, or tell the station if it is "
            "wrong."
        ),
    ),
    "care.confirmed": Message(
        _("Service %(number)s was confirmed"),
        _("%(elder)s confirmed %(minutes)s of %(category)s; the station will review it."),
    ),
    "care.credited": Message(
        _("%(credited)s credited for service %(number)s"),
        _("%(category)s for %(elder)s was approved and credited to your time account."),
    ),
    "care.rejected": Message(
        _("Service %(number)s was not approved"),
        _("The station did not approve %(category)s at %(when)s: %(reason)s"),
    ),
    "care.cancelled": Message(
        _("Service %(number)s was cancelled"),
        _("%(category)s at %(when)s will not take place: %(reason)s"),
    ),
    "care.no_show": Message(
        _("Service %(number)s: the volunteer did not come"),
        _("%(category)s at %(when)s was recorded as a no-show."),
    ),
    "care.expired": Message(
        _("Request %(number)s expired"),
        _("Nobody took %(category)s at %(when)s in time. Post it again or call the station."),
    ),
    "care.escalated": Message(
        _("Service %(number)s is still unconfirmed"),
        _("%(volunteer)s recorded %(minutes)s of %(category)s for %(elder)s and nobody has confirmed it."),
    ),
    "care.not_started": Message(
        _("Service %(number)s did not start"),
        _(
            "%(volunteer)s has not checked in for %(category)s with %(elder)s at %(when)s. Enter the times "
            "from the card, or record a no-show."
        ),
    ),
    "care.not_checked_out": Message(
        _("Service %(number)s was never checked out"),
        _(
            "%(volunteer)s checked in for %(category)s with %(elder)s at %(when)s and has not checked out. "
            "Enter the times from the card, or cancel the service."
        ),
    ),
    "care.paid": Message(
        _("%(credited)s paid for service %(number)s"),
        _("%(category)s by %(volunteer)s for %(elder)s at %(when)s was approved and paid."),
    ),
    "care.taken_off": Message(
        _("You were taken off service %(number)s"),
        _("The station gave %(category)s for %(elder)s at %(when)s to someone else: %(reason)s"),
    ),
    "care.paper_entered": Message(
        _("A paper card was entered: service %(number)s"),
        _("%(minutes)s of %(category)s for %(elder)s, from a signed paper card; the station will review it."),
    ),
    "care.confirm_locked": Message(
        _("Confirmation for %(elder)s is locked"),
        _(
            "Too many wrong PINs or card codes were typed for %(elder)s; confirmation is locked until "
            "%(until)s. Check with the elder that nobody is guessing their code."
        ),
    ),
    "care.disputed": Message(
        _("A complaint about service %(number)s"),
        _("%(category)s at %(when)s: %(reason)s"),
    ),
    "care.dispute_resolved": Message(
        _("The complaint about service %(number)s is resolved"),
        _("%(outcome)s: %(reason)s"),
    ),
}


def order_params(order: ServiceOrder, **extra: Any) -> dict[str, Any]:
    """Parameters for a notice, with English variants (``*_en``) for readers who chose English."""
    params: dict[str, Any] = {
        "number": order.number,
        "elder": order.elder.name,
        "volunteer": order.volunteer.name if order.volunteer else "",
        "when": timezone.localtime(order.window_start).strftime("%Y-%m-%d %H:%M"),
        "place": order.address or order.region.name,
        "place_en": order.address or order.region.display_name,
        "category": order.category.name,
        "category_en": order.category.name_en,
        "reason": "",
    }
    params.update(extra)
    for key in ("minutes", "credited"):
        value = params.get(key)
        if isinstance(value, int):
            params.update(in_each_language(key, partial(format_minutes, value)))
    return params


def in_both_languages(key: str, text: Any) -> dict[str, str]:
    """A translatable phrase (e.g. an outcome's label) as a notice parameter, in Chinese and English."""
    return in_each_language(key, lambda: text)
