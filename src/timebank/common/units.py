"""Time is money-like here: always integer minutes. Helpers to show it the way each language expects."""

from __future__ import annotations

from django.utils.translation import gettext as _


def format_minutes(minutes: int) -> str:
    """``210`` → "3 小时 30 分" in Chinese, "3 h 30 min" in English; negative amounts keep their sign."""
    sign = "-" if minutes < 0 else ""
    hours, rest = divmod(abs(minutes), 60)
    if hours and rest:
        return sign + _("%(hours)d h %(minutes)d min") % {"hours": hours, "minutes": rest}
    if hours:
        return sign + _("%(hours)d h") % {"hours": hours}
    return sign + _("%(minutes)d min") % {"minutes": rest}
