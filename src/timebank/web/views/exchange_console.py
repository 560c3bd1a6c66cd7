"""The staff console's exchange pages: the mutual-aid pool and its allocations, time bought with money,
special rights awaiting a decision, partner merchants with their clerks and products, guarantee funds with
the coverage ratio, and moving a member to another community (on the person's page)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from timebank.common.errors import ApplicationError, NotFound, PermissionDenied
from timebank.common.units import format_minutes
from timebank.exchange import selectors
from timebank.exchange import services as exchange
from timebank.exchange.models import Merchant, Product
from timebank.ledger.models import Account
from timebank.people import selectors as people
from timebank.people.access import Perm, access_anywhere, access_has, access_paths, access_region_q
from timebank.people.models import Member, User
from timebank.regions.models import Region
from timebank.web.care_forms import add_care_errors
from timebank.web.exchange_forms import (
    FUND_FIELDS,
    PURCHASE_FIELDS,
    AllocateForm,
    ClerkForm,
    CoverageForm,
    DecideForm,
    FundForm,
    MerchantForm,
    MoveForm,
    PurchaseForm,
    yuan_to_fen,
)
from timebank.web.forms import add_service_errors
from timebank.web.views.console import _communities, _person_form, signed_in, staff_with
from timebank.web.views.exchange import product_form_page

PAGE_SIZE = 50


def _exchange_staff(request: HttpRequest, perm: Perm = Perm.EXCHANGE_MANAGE) -> User:
    return staff_with(request, perm)


def _roots(user: User, perm: Perm) -> list[Region]:
    """The regions at the top of the staff member's scope for ``perm`` (every province for admins)."""
    paths = access_paths(user, perm)
    qs = (
        Region.objects.filter(parent__isnull=True) if paths is None else Region.objects.filter(path__in=paths)
    )
    return list(qs.order_by("path"))


def _pools(user: User) -> list[Account]:
    """The mutual-aid pools of the jurisdictions at the top of the staff member's scope."""
    found: dict[int, Account] = {}
    for region in _roots(user, Perm.EXCHANGE_MANAGE):
        try:
            pool = selectors.pool_of(region)
        except ApplicationError:  # no policy in force there
            continue
        if pool is not None:
            found[pool.pk] = pool
    return list(found.values())


# --- the hub ------------------------------------------------------------------------------------------------


@login_required
def hub(request: HttpRequest) -> HttpResponse:
    user = _exchange_staff(request)
    return render(
        request,
        "web/console/exchange/hub.html",
        {
            "pools": _pools(user),
            "rights_waiting": selectors.rights_awaiting(user).count(),
            "can_merchants": access_anywhere(user, Perm.MERCHANTS_MANAGE),
            "can_funds": access_anywhere(user, Perm.FUNDS_MANAGE),
        },
    )


# --- the mutual-aid pool ------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def pool(request: HttpRequest) -> HttpResponse:
    """Give pool minutes to a verified priority elder, with the reason (the elder is told both)."""
    user = _exchange_staff(request)
    elders = people.members_visible(user, role="elder").filter(is_active=True)
    initial: dict[str, Any] = {}
    chosen = request.GET.get("elder", "")
    if chosen.isdigit() and len(chosen) < 12:
        initial["elder"] = int(chosen)
    form = AllocateForm(request.POST or None, user=user, elders=elders, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            moved = exchange.pool_allocate(
                actor=user,
                elder=data["elder"],
                minutes=data["total"],
                reason=data["reason"],
                idempotency_key=data["idempotency_key"],
            )
        except ApplicationError as exc:
            add_service_errors(form, exc)
        else:
            text = _("%(minutes)s from the pool went to %(name)s.") % {
                "minutes": format_minutes(data["total"]),
                "name": data["elder"].name,
            }
            if moved.overflow:
                text += " " + _("%(overflow)s beyond the cap of the account went back to the pool.") % {
                    "overflow": format_minutes(moved.overflow)
                }
            messages.success(request, text)
            return redirect("web:console-exchange-pool")
    return render(
        request,
        "web/console/exchange/pool.html",
        {"form": form, "pools": _pools(user)},
        status=422 if request.method == "POST" else 200,
    )


# --- time bought with money ---------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def purchases(request: HttpRequest) -> HttpResponse:
    """The cashier records a purchase; the list shows purchases apart from volunteered time."""
    user = _exchange_staff(request)
    initial: dict[str, Any] = {}
    chosen = request.GET.get("member", "")
    if chosen.isdigit() and len(chosen) < 12:
        initial["member"] = int(chosen)
    form = PurchaseForm(request.POST or None, user=user, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            purchase = exchange.purchase_record(
                actor=user,
                member=data["member"],
                amount_fen=yuan_to_fen(data["amount_yuan"]),
                method=data["method"],
                receipt_number=data["receipt_number"],
            )
        except ApplicationError as exc:
            add_care_errors(form, exc, PURCHASE_FIELDS)
        else:
            messages.success(
                request,
                _("Receipt %(receipt)s: %(minutes)s bought for %(name)s.")
                % {
                    "receipt": purchase.receipt_number,
                    "minutes": format_minutes(purchase.minutes),
                    "name": purchase.member.name,
                },
            )
            return redirect("web:console-exchange-purchases")
    visible = selectors.purchases_visible(user).order_by("-created_at", "-id")
    totals = visible.aggregate(minutes=Sum("minutes"), fen=Sum("amount_fen"))
    page = Paginator(visible, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "web/console/exchange/purchases.html",
        {
            "form": form,
            "page": page,
            "total_minutes": totals["minutes"] or 0,
            "total_fen": totals["fen"] or 0,
        },
        status=422 if request.method == "POST" else 200,
    )


# --- special rights -----------------------------------------------------------------------------------------


def _rights_page(
    request: HttpRequest,
    user: User,
    *,
    bound: tuple[int, DecideForm] | None = None,
    page_error: str = "",
    status: int = 200,
) -> HttpResponse:
    rows = []
    for redemption in selectors.rights_awaiting(user).order_by("created_at", "id"):
        if bound is not None and bound[0] == redemption.pk:
            rows.append((redemption, bound[1]))
        else:
            rows.append((redemption, DecideForm(auto_id=f"id_r{redemption.pk}_%s")))
    return render(
        request,
        "web/console/exchange/rights.html",
        {"rows": rows, "page_error": page_error},
        status=status,
    )


@login_required
def rights(request: HttpRequest) -> HttpResponse:
    user = _exchange_staff(request)
    return _rights_page(request, user)


@login_required
@require_POST
def right_decide(request: HttpRequest, redemption_id: int) -> HttpResponse:
    user = _exchange_staff(request)
    redemption = selectors.redemption_get(user, redemption_id)
    if not access_has(user, Perm.EXCHANGE_MANAGE, redemption.member.home_region):
        raise NotFound(code="exchange_not_found")  # the shop's own staff decide nothing here
    form = DecideForm(request.POST, auto_id=f"id_r{redemption.pk}_%s")
    if not form.is_valid():
        return _rights_page(request, user, bound=(redemption.pk, form), status=422)
    try:
        decided = exchange.redemption_decide(
            actor=user,
            redemption=redemption,
            approve=form.cleaned_data["decision"] == "grant",
            reason=form.cleaned_data["reason"],
        )
    except ApplicationError as exc:
        if not any(name in form.fields for name in exc.fields):
            return _rights_page(
                request, user, page_error=f"{redemption.number}: {exc.message}", status=exc.status
            )
        add_service_errors(form, exc)
        return _rights_page(request, user, bound=(redemption.pk, form), status=exc.status)
    messages.success(
        request,
        _("%(number)s: %(status)s.") % {"number": decided.number, "status": decided.get_status_display()},
    )
    return redirect("web:console-exchange-rights")


# --- merchants ----------------------------------------------------------------------------------------------


def _merchant_regions(user: User) -> QuerySet[Region]:
    return Region.objects.filter(access_region_q(user, Perm.MERCHANTS_MANAGE, "path")).order_by("path")


@login_required
@require_http_methods(["GET", "POST"])
def merchants(request: HttpRequest) -> HttpResponse:
    user = _exchange_staff(request)
    can_create = access_anywhere(user, Perm.MERCHANTS_MANAGE)
    if request.method == "POST" and not can_create:
        raise PermissionDenied()
    form = MerchantForm(request.POST or None, regions=_merchant_regions(user)) if can_create else None
    if request.method == "POST" and form is not None and form.is_valid():
        data = form.cleaned_data
        try:
            merchant = exchange.merchant_create(
                actor=user,
                name=data["name"],
                region=data["region"],
                address=data["address"],
                opening_hours=data["opening_hours"],
            )
        except ApplicationError as exc:
            add_service_errors(form, exc)
        else:
            return redirect("web:console-exchange-merchant", merchant_id=merchant.pk)
    return render(
        request,
        "web/console/exchange/merchants.html",
        {"merchants": selectors.merchants_visible(user).order_by("region__path", "name"), "form": form},
        status=422 if request.method == "POST" else 200,
    )


def _merchant(user: User, merchant_id: int) -> Merchant:
    merchant = selectors.merchants_visible(user).filter(pk=merchant_id).first()
    if merchant is None:
        raise NotFound(code="exchange_not_found")
    return merchant


def _merchant_page(
    request: HttpRequest,
    user: User,
    merchant: Merchant,
    *,
    clerk_form: ClerkForm | None = None,
    status: int = 200,
) -> HttpResponse:
    can_manage = access_has(user, Perm.MERCHANTS_MANAGE, merchant.region)
    return render(
        request,
        "web/console/exchange/merchant.html",
        {
            "merchant": merchant,
            "clerks": merchant.staff.order_by("username"),
            "products": merchant.products.order_by("kind", "name"),
            "orders": selectors.redemptions_for_shop(merchant).order_by("-created_at", "-id")[:PAGE_SIZE],
            "can_manage": can_manage,
            "clerk_form": clerk_form or ClerkForm(),
        },
        status=status,
    )


@login_required
def merchant_detail(request: HttpRequest, merchant_id: int) -> HttpResponse:
    user = _exchange_staff(request)
    return _merchant_page(request, user, _merchant(user, merchant_id))


@login_required
@require_POST
def merchant_clerk_add(request: HttpRequest, merchant_id: int) -> HttpResponse:
    user = _exchange_staff(request)
    merchant = _merchant(user, merchant_id)
    form = ClerkForm(request.POST)
    if form.is_valid():
        try:
            exchange.merchant_staff_add(actor=user, merchant=merchant, user=form.cleaned_data["username"])
        except ApplicationError as exc:
            add_service_errors(form, exc)
        else:
            return redirect("web:console-exchange-merchant", merchant_id=merchant.pk)
    return _merchant_page(request, user, merchant, clerk_form=form, status=422)


def _product(merchant: Merchant, product_id: int) -> Product:
    product = merchant.products.filter(pk=product_id).first()
    if product is None:
        raise NotFound(code="exchange_not_found")
    return product


@login_required
@require_http_methods(["GET", "POST"])
def product_new(request: HttpRequest, merchant_id: int) -> HttpResponse:
    user = _exchange_staff(request)
    merchant = _merchant(user, merchant_id)
    if not access_has(user, Perm.MERCHANTS_MANAGE, merchant.region):
        raise PermissionDenied()
    return product_form_page(
        request,
        user,
        merchant,
        None,
        with_kind=True,
        template="web/console/exchange/product.html",
        done="web:console-exchange-merchant",
        done_kwargs={"merchant_id": merchant.pk},
    )


@login_required
@require_http_methods(["GET", "POST"])
def product_edit(request: HttpRequest, merchant_id: int, product_id: int) -> HttpResponse:
    user = _exchange_staff(request)
    merchant = _merchant(user, merchant_id)
    if not access_has(user, Perm.MERCHANTS_MANAGE, merchant.region):
        raise PermissionDenied()
    return product_form_page(
        request,
        user,
        merchant,
        _product(merchant, product_id),
        with_kind=True,
        template="web/console/exchange/product.html",
        done="web:console-exchange-merchant",
        done_kwargs={"merchant_id": merchant.pk},
    )


# --- guarantee funds and coverage ---------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def funds(request: HttpRequest) -> HttpResponse:
    """How far the guarantee fund behind each jurisdiction covers the minutes its members hold."""
    user = _exchange_staff(request)
    can_record = access_anywhere(user, Perm.FUNDS_MANAGE)
    if request.method == "POST" and not can_record:
        raise PermissionDenied()
    regions = _roots(user, Perm.EXCHANGE_MANAGE)
    lookup = CoverageForm(request.GET or None, auto_id="id_lookup_%s")
    if lookup.is_bound and lookup.is_valid():
        region = lookup.cleaned_data["region"]
        if not access_has(user, Perm.EXCHANGE_MANAGE, region):
            raise NotFound(code="region_not_found")
        regions = [region]
    form = FundForm(request.POST or None) if can_record else None
    if request.method == "POST" and form is not None and form.is_valid():
        data = form.cleaned_data
        try:
            exchange.guarantee_fund_record(
                actor=user,
                region=data["region"],
                value_fen=yuan_to_fen(data["value_yuan"]),
                fen_per_hour=yuan_to_fen(data["hour_cost_yuan"]),
                note=data["note"],
            )
        except ApplicationError as exc:
            add_care_errors(form, exc, FUND_FIELDS)
        else:
            return redirect(f"{request.path}?region={data['region'].code}")
    return render(
        request,
        "web/console/exchange/funds.html",
        {"coverages": [selectors.coverage(r) for r in regions], "form": form, "lookup": lookup},
        status=422 if request.method == "POST" else 200,
    )


# --- moving home --------------------------------------------------------------------------------------------


@login_required
@require_POST
def person_move(request: HttpRequest, member_id: int) -> HttpResponse:
    """Move a member to another community; their minutes and history go with them (the person's page)."""
    user = signed_in(request)

    def move(user: User, member: Member, data: dict[str, Any]) -> object:
        return exchange.member_move(actor=user, member=member, to_region=data["home_region"])

    def form(data: Any) -> MoveForm:
        return MoveForm(data, communities=_communities(user, Perm.PEOPLE_MANAGE))

    return _person_form(request, member_id, form, "move_form", move)
