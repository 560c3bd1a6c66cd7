"""How pages look for the reader: the large-text switch of elder mode, which does not rely on browser zoom.

Elder mode is the default for elders (members who receive services) and one tap away for everyone: a button
on every page sets a cookie, and the page is drawn with ``<html class="large-text">``."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

COOKIE = "tb_large_text"
ONE_YEAR = 365 * 24 * 3600


def large_text_wanted(request: HttpRequest) -> bool:
    """The reader's choice if they made one; otherwise on for elders."""
    chosen = request.COOKIES.get(COOKIE)
    if chosen in ("on", "off"):
        return chosen == "on"
    user = getattr(request, "user", None)
    member = getattr(user, "member", None) if user is not None and user.is_authenticated else None
    return bool(member is not None and member.is_elder)


@require_POST
def large_text(request: HttpRequest) -> HttpResponse:
    """Switch large text on or off, and go back to the page the reader was on."""
    target = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        target = "/"
    response = HttpResponseRedirect(target)
    value = "off" if large_text_wanted(request) else "on"
    response.set_cookie(COOKIE, value, max_age=ONE_YEAR, samesite="Lax", httponly=True)
    return response
