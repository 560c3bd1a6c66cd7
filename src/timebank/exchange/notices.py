"""What the exchange tells people."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from timebank.notifications.services import Message

MESSAGES = {
    "exchange.received": Message(
        _("%(minutes)s from %(giver)s"),
        _("%(giver)s gave you %(minutes)s of time; they are in your time account."),
    ),
    "exchange.overflow": Message(
        _("Your account reached its cap"),
        _(
            "%(minutes)s went into your account and %(overflow)s, beyond its cap, to the mutual-aid pool, as "
            "%(policy)s says."
        ),
    ),
    "exchange.allocated": Message(
        _("%(minutes)s from the mutual-aid pool"),
        _("The station gave you %(minutes)s from the mutual-aid pool: %(reason)s"),
    ),
    "exchange.handed_over": Message(
        _("%(product)s picked up"),
        _("You picked up %(product)s; %(minutes)s were taken from your time account."),
    ),
    "exchange.right_decided": Message(
        _("Your request for %(product)s: %(status)s"),
        _("%(product)s — %(status)s. %(reason)s"),
    ),
}
