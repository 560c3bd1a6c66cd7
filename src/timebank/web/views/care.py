"""Care services for members: asking for help, taking requests, checking in and out, confirming, rating and
complaining; the page a service card's QR code opens; the notification centre.

Pages are large and simple (elders use them, and volunteers use them on a phone at the elder's door). Each
form posts to its own address, calls one service and goes back to the service's page; a refusal shows the
page again with the reason next to the field, or at the top."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from timebank.care import selectors
from timebank.care import services as care
from timebank.care.models import ConfirmMethod, Funding, ServiceOrder, Side, Status
from timebank.care.rules import verified_relation, weighted
from timebank.care.states import ALLOWED, DONE
from timebank.common.errors import ApplicationError, NotFound, PermissionDenied, ValidationFailed
from timebank.common.units import format_minutes
from timebank.notifications import selectors as notices
from timebank.notifications.services import notifications_mark_read
from timebank.notifications.services import render as render_notice
from timebank.people import selectors as people
from timebank.people.access import access_is_staff
from timebank.people.models import BondStatus, Member, User
from timebank.regions.models import Region, ServiceCategory
from timebank.regions.selectors import policy_in_force
from timebank.web.care_forms import (
    ASK_FIELDS,
    AskForm,
    CardCodeConfirmForm,
    CardTokenForm,
    ComplaintForm,
    NoShowForm,
    PinConfirmForm,
    RateForm,
    ReasonForm,
    add_care_errors,
    category_choices,
    request_post,
)
from timebank.web.forms import add_service_errors
from timebank.web.views.console import signed_in

PAGE_SIZE = 30


def _chosen(request: HttpRequest, name: str, choices: list[int]) -> int:
    """A choice preselected by a link (``?elder=12``) if it is one of the reader's; else the first."""
    raw = request.GET.get(name, "")
    wanted = int(raw) if raw.isdigit() and len(raw) < 12 else None
    return wanted if wanted in choices else choices[0]


def _member(request: HttpRequest) -> tuple[User, Member]:
    user = signed_in(request)
    if user.member_id is None or user.member is None:
        raise NotFound(_("This sign-in has no member profile."), code="no_member")
    return user, user.member


def _elders_for(member: Member) -> list[Member]:
    """Whom the member may ask help for: themselves if an elder, and the elders of their verified family."""
    elders = [member] if member.is_elder and member.is_active else []
    for view in people.member_bonds(member):
        if view.bond.status == BondStatus.VERIFIED and view.other.is_elder and view.other.is_active:
            elders.append(view.other)
    return elders


# --- asking for help ----------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def ask(request: HttpRequest) -> HttpResponse:
    user, member = _member(request)
    elders = _elders_for(member)
    if not elders:
        raise PermissionDenied(
            _(
                "Elders and their verified family ask for help here. Your community station can post a "
                "request for you."
            )
        )
    today = timezone.localdate()
    categories = []
    for elder in elders:
        policy = policy_in_force(elder.home_region, today)
        if policy is not None:
            categories += list(policy.categories.all())
    form = AskForm(
        request.POST or None,
        elders=elders,
        me=member,
        categories=category_choices(categories),
        initial={
            "elder": _chosen(request, "elder", [e.pk for e in elders]),
            "funding": Funding.OWN,
            "repeat_weeks": 1,
        },
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        elder = next(e for e in elders if e.pk == data["elder"])
        try:
            order = request_post(
                actor=user,
                elder=elder,
                data=data,
                payer=member if data["funding"] == Funding.FAMILY else None,
            )
        except ApplicationError as exc:
            add_care_errors(form, exc, ASK_FIELDS)
        else:
            return redirect("web:care-service", order_id=order.pk)
    status = 422 if request.method == "POST" else 200
    return render(request, "web/care/ask.html", {"form": form}, status=status)


# --- lists --------------------------------------------------------------------------------------------------


def _volunteer(request: HttpRequest) -> tuple[User, Member]:
    user, member = _member(request)
    if not member.is_volunteer:
        raise PermissionDenied(_("Only registered volunteers take requests."), code="not_volunteer")
    return user, member


def _open_page(request: HttpRequest, member: Member, *, error: str = "", status: int = 200) -> HttpResponse:
    orders = selectors.orders_open_for(member)
    return render(request, "web/care/open.html", {"orders": orders, "error": error}, status=status)


@login_required
def open_requests(request: HttpRequest) -> HttpResponse:
    _user, member = _volunteer(request)
    return _open_page(request, member)


@login_required
@require_POST
def accept(request: HttpRequest, order_id: int) -> HttpResponse:
    """Take an open request. Only requests offered to this volunteer on the list can be taken here."""
    user, member = _volunteer(request)
    order = next((o for o in selectors.orders_open_for(member) if o.pk == order_id), None)
    if order is None:
        return _open_page(request, member, error=_("This request is no longer open to you."), status=409)
    try:
        care.order_accept(actor=user, order=order)
    except ApplicationError as exc:
        return _open_page(request, member, error=f"{order.number}: {exc.message}", status=exc.status)
    return redirect("web:care-service", order_id=order.pk)


RECENT = 50


@login_required
def mine(request: HttpRequest) -> HttpResponse:
    _user, member = _member(request)
    proxied = [
        (elder, list(selectors.orders_of_elder(elder)[:RECENT]))
        for elder in _elders_for(member)
        if elder.pk != member.pk
    ]
    return render(
        request,
        "web/care/mine.html",
        {
            "member": member,
            "given": list(selectors.orders_of_volunteer(member)[:RECENT]) if member.is_volunteer else [],
            "received": list(selectors.orders_of_elder(member)[:RECENT]) if member.is_elder else [],
            "proxied": proxied,
        },
    )


# --- one service --------------------------------------------------------------------------------------------


def _service_context(user: User, order: ServiceOrder) -> dict[str, Any]:
    """What this person may do with this service now (the services check again when they do it)."""
    mine = user.member_id
    member = user.member if mine is not None else None
    is_volunteer = mine is not None and mine == order.volunteer_id
    is_elder = mine is not None and mine == order.elder_id
    is_proxy = member is not None and not is_elder and verified_relation(order.elder, member) is not None
    elder_side = is_elder or is_proxy or order.requested_by_id == user.pk
    moves = ALLOWED.get(order.status, frozenset())
    ratings = list(order.ratings.all())
    side = Side.VOLUNTEER if is_volunteer else Side.ELDER if (is_elder or is_proxy) else None
    started = timezone.now() >= order.window_start
    return {
        "order": order,
        "is_volunteer": is_volunteer,
        "ratings": ratings,
        "disputes": list(order.disputes.order_by("opened_at")),
        "can": {
            "check_in": is_volunteer and order.status == Status.ASSIGNED,
            "check_out": is_volunteer and order.status == Status.IN_PROGRESS,
            "withdraw": is_volunteer and order.status == Status.ASSIGNED,
            "confirm_code": is_volunteer and order.status == Status.COMPLETED,
            "confirm_device": is_elder and order.status == Status.COMPLETED,
            "confirm_proxy": is_proxy and not is_volunteer and order.status == Status.COMPLETED,
            "cancel": elder_side and Status.CANCELLED in moves,
            "no_show": elder_side and order.status == Status.ASSIGNED and started,
            "rate": side is not None and order.status in DONE and not any(r.side == side for r in ratings),
            "complain": (is_volunteer or elder_side) and Status.DISPUTED in moves,
        },
        "forms": {
            "cancel": ReasonForm(),
            "withdraw": ReasonForm(),
            "no_show": NoShowForm(),
            "pin": PinConfirmForm(),
            "code": CardCodeConfirmForm(),
            "rate": RateForm(),
            "complain": ComplaintForm(),
        },
        "page_error": "",
    }


def _service_page(
    request: HttpRequest,
    user: User,
    order: ServiceOrder,
    *,
    form_key: str = "",
    form: forms.Form | None = None,
    page_error: str = "",
    status: int = 200,
) -> HttpResponse:
    context = _service_context(user, order)
    if form_key and form is not None:
        context["forms"][form_key] = form
    context["page_error"] = page_error
    return render(request, "web/care/service.html", context, status=status)


@login_required
def service(request: HttpRequest, order_id: int) -> HttpResponse:
    user = signed_in(request)
    order = selectors.order_get(user, order_id)
    return _service_page(request, user, order)


def _act(
    request: HttpRequest,
    order_id: int,
    act: Callable[[User, ServiceOrder, dict[str, Any]], object],
    form_class: type[forms.Form] | None = None,
    form_key: str = "",
) -> HttpResponse:
    """Run one service on one service order, then back to its page; or the page again with the reason."""
    user = signed_in(request)
    order = selectors.order_get(user, order_id)
    form = form_class(request.POST) if form_class is not None else None
    if form is None or form.is_valid():
        try:
            act(user, order, form.cleaned_data if form is not None else {})
        except ApplicationError as exc:
            order = selectors.order_get(user, order_id)
            if form is None or not any(name in form.fields for name in exc.fields):
                # a reason that is about the service, not a field: at the top, where it is always seen
                return _service_page(request, user, order, page_error=str(exc.message), status=exc.status)
            add_service_errors(form, exc)
            return _service_page(request, user, order, form_key=form_key, form=form, status=exc.status)
        return redirect("web:care-service", order_id=order.pk)
    return _service_page(request, user, order, form_key=form_key, form=form, status=422)


def _recorded(request: HttpRequest, order_id: int, record: Callable[..., ServiceOrder]) -> HttpResponse:
    """Check in or out; from a scanned card's page the card's token comes along and errors show there."""
    user = signed_in(request)
    order = selectors.order_get(user, order_id)
    form = CardTokenForm(request.POST)
    if not form.is_valid():  # never fall back to an in-app check-in when a card was meant
        raise ValidationFailed.field(
            "token", _("This is not a valid service card."), code="care_card_invalid"
        )
    token = form.cleaned_data["token"]
    try:
        record(actor=user, order=order, token=token)
    except ApplicationError as exc:
        if token:
            return _card_page(request, token, error=str(exc.message), status=exc.status)
        order = selectors.order_get(user, order_id)
        return _service_page(request, user, order, page_error=str(exc.message), status=exc.status)
    return redirect("web:care-service", order_id=order.pk)


@login_required
@require_POST
def check_in(request: HttpRequest, order_id: int) -> HttpResponse:
    return _recorded(request, order_id, care.order_check_in)


@login_required
@require_POST
def check_out(request: HttpRequest, order_id: int) -> HttpResponse:
    return _recorded(request, order_id, care.order_check_out)


@login_required
@require_POST
def confirm_pin(request: HttpRequest, order_id: int) -> HttpResponse:
    def confirm(user: User, order: ServiceOrder, data: dict[str, Any]) -> object:
        return care.order_confirm(actor=user, order=order, method=ConfirmMethod.PIN, secret=data["pin"])

    return _act(request, order_id, confirm, PinConfirmForm, "pin")


@login_required
@require_POST
def confirm_code(request: HttpRequest, order_id: int) -> HttpResponse:
    def confirm(user: User, order: ServiceOrder, data: dict[str, Any]) -> object:
        return care.order_confirm(
            actor=user, order=order, method=ConfirmMethod.CARD_CODE, secret=data["code"]
        )

    return _act(request, order_id, confirm, CardCodeConfirmForm, "code")


@login_required
@require_POST
def confirm_device(request: HttpRequest, order_id: int) -> HttpResponse:
    def confirm(user: User, order: ServiceOrder, data: dict[str, Any]) -> object:
        return care.order_confirm(actor=user, order=order, method=ConfirmMethod.DEVICE)

    return _act(request, order_id, confirm)


@login_required
@require_POST
def confirm_proxy(request: HttpRequest, order_id: int) -> HttpResponse:
    def confirm(user: User, order: ServiceOrder, data: dict[str, Any]) -> object:
        return care.order_confirm(actor=user, order=order, method=ConfirmMethod.PROXY)

    return _act(request, order_id, confirm)


@login_required
@require_POST
def cancel(request: HttpRequest, order_id: int) -> HttpResponse:
    def act(user: User, order: ServiceOrder, data: dict[str, Any]) -> object:
        return care.order_cancel(actor=user, order=order, reason=data["reason"])

    return _act(request, order_id, act, ReasonForm, "cancel")


@login_required
@require_POST
def withdraw(request: HttpRequest, order_id: int) -> HttpResponse:
    def act(user: User, order: ServiceOrder, data: dict[str, Any]) -> object:
        return care.order_withdraw(actor=user, order=order, reason=data["reason"])

    return _act(request, order_id, act, ReasonForm, "withdraw")


@login_required
@require_POST
def no_show(request: HttpRequest, order_id: int) -> HttpResponse:
    def act(user: User, order: ServiceOrder, data: dict[str, Any]) -> object:
        return care.order_no_show(actor=user, order=order, note=data["note"])

    return _act(request, order_id, act, NoShowForm, "no_show")


@login_required
@require_POST
def rate(request: HttpRequest, order_id: int) -> HttpResponse:
    def act(user: User, order: ServiceOrder, data: dict[str, Any]) -> object:
        return care.order_rate(actor=user, order=order, stars=data["stars"], comment=data["comment"])

    return _act(request, order_id, act, RateForm, "rate")


@login_required
@require_POST
def complain(request: HttpRequest, order_id: int) -> HttpResponse:
    def act(user: User, order: ServiceOrder, data: dict[str, Any]) -> object:
        return care.order_dispute(actor=user, order=order, reason=data["reason"])

    return _act(request, order_id, act, ComplaintForm, "complain")


# --- the service card's page --------------------------------------------------------------------------------


def _card_page(request: HttpRequest, token: str, *, error: str = "", status: int = 200) -> HttpResponse:
    _unused, member = _volunteer(request)
    card = selectors.card_from_token(token)
    orders = list(
        selectors.orders_of_volunteer(member)
        .filter(elder=card.elder, status__in=[Status.ASSIGNED, Status.IN_PROGRESS])
        .order_by("window_start", "pk")
    )
    return render(
        request,
        "web/care/card.html",
        {"elder": card.elder, "orders": orders, "token": token, "error": error},
        status=status,
    )


@login_required
def card(request: HttpRequest, token: str) -> HttpResponse:
    return _card_page(request, token)


# --- notifications ------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"^S(\d{1,12})$")


def _notice_link(params: dict[str, Any], *, staff: bool) -> str:
    """Care notices name their service (``S000012``) but carry no link: the link is made from the number."""
    found = _NUMBER.match(str(params.get("number", "")))
    if not found:
        return ""
    name = "web:console-care-order" if staff else "web:care-service"
    return reverse(name, kwargs={"order_id": int(found.group(1))})


@login_required
def notifications(request: HttpRequest) -> HttpResponse:
    user = signed_in(request)
    page = Paginator(notices.notifications_for(user), PAGE_SIZE).get_page(request.GET.get("page"))
    staff = access_is_staff(user)
    items = []
    for notice in page.object_list:
        title, body = render_notice(notice.kind, notice.params)
        items.append(
            {
                "notice": notice,
                "title": title,
                "body": body,
                "link": notice.link or _notice_link(notice.params, staff=staff),
            }
        )
    return render(
        request,
        "web/care/notifications.html",
        {"page": page, "items": items, "unread": notices.notifications_unread_count(user)},
    )


@login_required
@require_POST
def notifications_read(request: HttpRequest) -> HttpResponse:
    notifications_mark_read(user=signed_in(request))
    return redirect("web:notifications")


# --- the catalogue ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _CatalogueRow:
    category: ServiceCategory
    coefficient: str
    hour_earns: str


@login_required
def catalogue(request: HttpRequest) -> HttpResponse:
    """The service categories, tiers and coefficients of the policy in force where the reader chooses
    (by default their own community)."""
    user = signed_in(request)
    error = ""
    member = user.member
    region = member.home_region if member is not None else Region.objects.order_by("depth", "path").first()
    code = (request.GET.get("region") or "").strip()
    if code:
        found = Region.objects.filter(code=code).first()
        if found is None:
            error = _("There is no region with the code %(code)s.") % {"code": code}
        else:
            region = found
    day = None
    if request.GET.get("on"):
        try:
            day = dt.date.fromisoformat(request.GET["on"])
        except ValueError:
            error = _("Give the day as YYYY-MM-DD.")
    if region is None:
        raise NotFound(code="region_not_found")
    result = selectors.catalogue(region, on=day)
    rows = [
        _CatalogueRow(
            category=category,
            coefficient=f"{category.coefficient_permille / 1000:g}",
            hour_earns=format_minutes(weighted(60, category.coefficient_permille)),
        )
        for category in result.categories
    ]
    return render(request, "web/care/catalogue.html", {"catalogue": result, "rows": rows, "error": error})
