"""The staff console's dispatch board: open requests of the staff member's subtree, soonest first, each with
the volunteers who could take it, and a button to assign each of them."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from timebank.care import selectors
from timebank.care import services as care
from timebank.common.errors import ApplicationError, NotFound
from timebank.people import selectors as people
from timebank.people.access import Perm, access_has
from timebank.people.models import User
from timebank.web.views.console import staff_with

BOARD_SIZE = 15
SUGGESTIONS = 5


class DispatchAssignForm(forms.Form):
    """The suggestion a button stands for (and the board page to come back to)."""

    volunteer = forms.IntegerField(min_value=1, max_value=2**62)
    page = forms.IntegerField(min_value=1, max_value=10**6, required=False)


def _board(
    request: HttpRequest,
    user: User,
    *,
    page_number: int | None = None,
    refused: tuple[int, list[str]] | None = None,
    status: int = 200,
) -> HttpResponse:
    orders = selectors.orders_to_dispatch(user)
    page = Paginator(orders, BOARD_SIZE).get_page(page_number or request.GET.get("page"))
    rows = [(order, selectors.volunteers_for(order, user, limit=SUGGESTIONS)) for order in page.object_list]
    return render(
        request,
        "web/console/care/dispatch.html",
        {
            "page": page,
            "rows": rows,
            "refused_order": refused[0] if refused else None,
            "refusals": refused[1] if refused else [],
        },
        status=status,
    )


@login_required
@require_GET
def board(request: HttpRequest) -> HttpResponse:
    user = staff_with(request, Perm.CARE_MANAGE)
    return _board(request, user)


def _reasons(exc: ApplicationError) -> list[str]:
    reasons = [str(exc.message)]
    for messages_ in exc.fields.values():
        reasons += [m for m in messages_ if m not in reasons]
    return reasons


@login_required
@require_POST
def assign(request: HttpRequest, order_id: int) -> HttpResponse:
    user = staff_with(request, Perm.CARE_MANAGE)
    order = selectors.order_get(user, order_id)
    if not access_has(user, Perm.CARE_VIEW, order.region):
        raise NotFound(code="care_order_not_found")
    form = DispatchAssignForm(request.POST)
    if not form.is_valid():
        return _board(request, user, refused=(order.pk, [_("Choose a volunteer.")]), status=422)
    page = form.cleaned_data["page"]
    volunteer = people.member_get(user, form.cleaned_data["volunteer"])
    try:
        care.order_assign(actor=user, order=order, volunteer=volunteer)
    except ApplicationError as exc:
        return _board(request, user, page_number=page, refused=(order.pk, _reasons(exc)), status=exc.status)
    messages.success(
        request, _("%(number)s assigned to %(name)s.") % {"number": order.number, "name": volunteer.name}
    )
    target = reverse("web:console-care-dispatch")
    return redirect(f"{target}?page={page}" if page and page > 1 else target)
