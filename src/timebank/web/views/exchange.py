"""Spending time, for members and for partner shops: giving time to family, donating to the mutual-aid pool,
goods and special rights with their pick-up codes, and the shop's page where the code is scanned.

Like the care pages: each form posts to its own address, calls one service, and goes on to the page that
shows the result; a refusal shows the form again with the policy's reason next to the field it is about."""

from __future__ import annotations

from typing import Any

import segno
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from timebank.care.rules import verified_relation
from timebank.common.errors import ApplicationError, NotFound, PermissionDenied
from timebank.common.kinship import Relation
from timebank.common.units import format_minutes
from timebank.exchange import selectors
from timebank.exchange import services as exchange
from timebank.exchange.models import Merchant, Product, ProductKind, Redemption, RedemptionStatus
from timebank.ledger.selectors import account_balance
from timebank.people.models import Member, User
from timebank.regions.selectors import policy_in_force
from timebank.web.care_forms import add_care_errors
from timebank.web.exchange_forms import (
    CancelForm,
    DonateForm,
    GiveForm,
    HandOverForm,
    OrderForm,
    ProductForm,
    RestockForm,
    product_initial,
)
from timebank.web.forms import add_service_errors
from timebank.web.templatetags.timebank import product_name
from timebank.web.views.care import _chosen, _member
from timebank.web.views.console import signed_in

RECENT = 50


def _available(member: Member) -> int | None:
    return account_balance(member.account_id).available if member.account_id is not None else None


# --- giving and donating ------------------------------------------------------------------------------------


def _receivers(member: Member) -> list[tuple[Member, str]]:
    """The giver's verified relatives and friends, each labelled with what they are to the giver."""
    out = []
    for other in selectors.members_who_may_receive(member):
        relation = verified_relation(member, other)
        label = f"{other.name} · {Relation(relation).label}" if relation else other.name
        out.append((other, label))
    return out


@login_required
@require_http_methods(["GET", "POST"])
def give(request: HttpRequest) -> HttpResponse:
    """Transfer or give time to a relative or friend; the giver's policy decides who may receive."""
    user, member = _member(request)
    receivers = _receivers(member)
    form = GiveForm(
        request.POST or None,
        receivers=[(m.pk, label) for m, label in receivers],
        initial={"receiver": _chosen(request, "to", [m.pk for m, _label in receivers])} if receivers else {},
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        receiver = next(m for m, _label in receivers if m.pk == data["receiver"])
        try:
            moved = exchange.transfer_create(
                actor=user,
                giver=member,
                receiver=receiver,
                minutes=data["total"],
                idempotency_key=data["idempotency_key"],
                gift=data["kind"] == "gift",
                note=data["note"],
            )
        except ApplicationError as exc:
            add_service_errors(form, exc)
        else:
            text = _("%(minutes)s went to %(name)s.") % {
                "minutes": format_minutes(data["total"]),
                "name": receiver.name,
            }
            if moved.overflow:
                text += " " + _(
                    "%(overflow)s of it, beyond the cap of their account, went to the mutual-aid pool."
                ) % {"overflow": format_minutes(moved.overflow)}
            messages.success(request, text)
            return redirect("web:statement")
    return render(
        request,
        "web/exchange/give.html",
        {"form": form, "has_receivers": bool(receivers), "available": _available(member)},
        status=422 if request.method == "POST" else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def donate(request: HttpRequest) -> HttpResponse:
    user, member = _member(request)
    form = DonateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            exchange.donation_create(
                actor=user, giver=member, minutes=data["total"], idempotency_key=data["idempotency_key"]
            )
        except ApplicationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(
                request,
                _("Thank you: %(minutes)s went to the mutual-aid pool.")
                % {"minutes": format_minutes(data["total"])},
            )
            return redirect("web:statement")
    return render(
        request,
        "web/exchange/donate.html",
        {"form": form, "available": _available(member)},
        status=422 if request.method == "POST" else 200,
    )


# --- goods and special rights -------------------------------------------------------------------------------


def _shop_page(
    request: HttpRequest,
    member: Member,
    *,
    bound: tuple[int, forms.Form] | None = None,
    page_error: str = "",
    status: int = 200,
) -> HttpResponse:
    policy = policy_in_force(member.home_region, timezone.localdate())
    rows = []
    for product in selectors.products_for(member):
        if bound is not None and bound[0] == product.pk:
            rows.append((product, bound[1]))
        else:
            rows.append((product, OrderForm(auto_id=f"id_p{product.pk}_%s")))
    return render(
        request,
        "web/exchange/shop.html",
        {
            "rows": rows,
            "policy": policy,
            "goods_forbidden": policy is not None and not policy.goods_allowed,
            "available": _available(member),
            "page_error": page_error,
        },
        status=status,
    )


@login_required
def shop(request: HttpRequest) -> HttpResponse:
    """What the member may order: goods of the partner shops of their city (where the policy allows goods)
    and special rights."""
    _unused, member = _member(request)
    return _shop_page(request, member)


@login_required
@require_POST
def order(request: HttpRequest, product_id: int) -> HttpResponse:
    user, member = _member(request)
    product = selectors.products_for(member).filter(pk=product_id).first()
    if product is None:
        raise NotFound(
            _("This is not offered to you now; it may have sold out."), code="exchange_not_offered"
        )
    form = OrderForm(request.POST, auto_id=f"id_p{product.pk}_%s")
    if not form.is_valid():
        return _shop_page(request, member, bound=(product.pk, form), status=422)
    try:
        redemption = exchange.redemption_order(
            actor=user, member=member, product=product, quantity=form.cleaned_data["quantity"]
        )
    except ApplicationError as exc:
        if not any(name in form.fields for name in exc.fields):
            return _shop_page(request, member, page_error=f"{product.name}: {exc.message}", status=exc.status)
        add_service_errors(form, exc)
        return _shop_page(request, member, bound=(product.pk, form), status=exc.status)
    if redemption.status == RedemptionStatus.AWAITING_APPROVAL:
        text = _("You asked for %(product)s; the station decides and tells you.")
    else:
        text = _("%(product)s is reserved for you: show the pick-up code at the shop.")
    messages.success(request, text % {"product": product_name(product)})
    return redirect("web:exchange-orders")


def _pickup_qr(redemption: Redemption) -> tuple[str, str]:
    """The QR code the shop scans, and under it the short code to read out if the scanner fails."""
    svg = segno.make(exchange.pickup_token(redemption), error="m").svg_inline(
        scale=6, dark="#000", light="#fff", border=2
    )
    return exchange.pickup_code(redemption), svg


def _orders_page(
    request: HttpRequest,
    member: Member,
    *,
    bound: tuple[int, forms.Form] | None = None,
    page_error: str = "",
    status: int = 200,
) -> HttpResponse:
    now = timezone.now()
    rows: list[dict[str, Any]] = []
    for redemption in selectors.redemptions_of(member)[:RECENT]:
        row: dict[str, Any] = {"redemption": redemption, "token": "", "qr_svg": "", "cancel": None}
        if redemption.status == RedemptionStatus.RESERVED and redemption.expires_at > now:
            row["token"], row["qr_svg"] = _pickup_qr(redemption)
        if redemption.status in (RedemptionStatus.RESERVED, RedemptionStatus.AWAITING_APPROVAL):
            row["cancel"] = (
                bound[1]
                if bound is not None and bound[0] == redemption.pk
                else CancelForm(auto_id=f"id_r{redemption.pk}_%s")
            )
        rows.append(row)
    return render(
        request,
        "web/exchange/orders.html",
        {"rows": rows, "page_error": page_error, "available": _available(member)},
        status=status,
    )


@login_required
def orders(request: HttpRequest) -> HttpResponse:
    """The member's orders; one waiting to be picked up shows its pick-up code, large, for the shop."""
    _unused, member = _member(request)
    return _orders_page(request, member)


@login_required
@require_POST
def cancel(request: HttpRequest, redemption_id: int) -> HttpResponse:
    user, member = _member(request)
    redemption = selectors.redemption_get(user, redemption_id)
    if redemption.member_id != member.pk:
        raise NotFound(code="exchange_not_found")
    form = CancelForm(request.POST, auto_id=f"id_r{redemption.pk}_%s")
    if not form.is_valid():
        return _orders_page(request, member, bound=(redemption.pk, form), status=422)
    try:
        exchange.redemption_cancel(actor=user, redemption=redemption, reason=form.cleaned_data["reason"])
    except ApplicationError as exc:
        if not any(name in form.fields for name in exc.fields):
            return _orders_page(
                request, member, page_error=f"{redemption.number}: {exc.message}", status=exc.status
            )
        add_service_errors(form, exc)
        return _orders_page(request, member, bound=(redemption.pk, form), status=exc.status)
    messages.success(
        request, _("%(number)s is cancelled; its minutes are yours again.") % {"number": redemption.number}
    )
    return redirect("web:exchange-orders")


# --- the shop's page ----------------------------------------------------------------------------------------


def _clerk(request: HttpRequest) -> tuple[User, list[Merchant]]:
    user = signed_in(request)
    merchants = list(selectors.merchants_of(user))
    if not merchants:
        raise PermissionDenied(_("This page is for the staff of partner shops."), code="not_shop_staff")
    return user, merchants


def _merchant_of(merchants: list[Merchant], merchant_id: int) -> Merchant:
    found = next((m for m in merchants if m.pk == merchant_id), None)
    if found is None:
        raise NotFound(code="exchange_not_found")
    return found


def _product_of(merchant: Merchant, product_id: int) -> Product:
    product = merchant.products.filter(pk=product_id).first()
    if product is None:
        raise NotFound(code="exchange_not_found")
    return product


def _counter_page(
    request: HttpRequest,
    merchants: list[Merchant],
    *,
    hand_over: HandOverForm | None = None,
    restock: tuple[int, forms.Form] | None = None,
    page_error: str = "",
    status: int = 200,
) -> HttpResponse:
    shops = []
    for merchant in merchants:
        products = []
        for product in merchant.products.order_by("kind", "name"):
            form = (
                restock[1]
                if restock is not None and restock[0] == product.pk
                else RestockForm(auto_id=f"id_s{product.pk}_%s")
            )
            products.append((product, form))
        waiting = selectors.redemptions_for_shop(merchant).filter(status=RedemptionStatus.RESERVED)
        shops.append(
            {"merchant": merchant, "orders": list(waiting.order_by("expires_at")), "products": products}
        )
    return render(
        request,
        "web/exchange/counter.html",
        {
            "shops": shops,
            "hand_over": hand_over or HandOverForm(),
            "page_error": page_error,
            "now": timezone.now(),
        },
        status=status,
    )


@login_required
def counter(request: HttpRequest) -> HttpResponse:
    """The shop's page: scan a pick-up code, the orders waiting, the goods and their stock."""
    _unused, merchants = _clerk(request)
    return _counter_page(request, merchants)


@login_required
@require_POST
def hand_over(request: HttpRequest) -> HttpResponse:
    user, merchants = _clerk(request)
    form = HandOverForm(request.POST)
    if not form.is_valid():
        return _counter_page(request, merchants, hand_over=form, status=422)
    try:
        redemption = exchange.redemption_hand_over(actor=user, token=form.cleaned_data["token"])
    except ApplicationError as exc:
        if not any(name in form.fields for name in exc.fields):
            return _counter_page(request, merchants, page_error=str(exc.message), status=exc.status)
        add_service_errors(form, exc)
        return _counter_page(request, merchants, hand_over=form, status=exc.status)
    messages.success(
        request,
        _("%(number)s: hand %(quantity)d × %(product)s to %(name)s.")
        % {
            "number": redemption.number,
            "quantity": redemption.quantity,
            "product": product_name(redemption.product),
            "name": redemption.member.name,
        },
    )
    return redirect("web:shop")


@login_required
@require_POST
def restock(request: HttpRequest, merchant_id: int, product_id: int) -> HttpResponse:
    """Add goods that arrived to the stock."""
    user, merchants = _clerk(request)
    merchant = _merchant_of(merchants, merchant_id)
    product = _product_of(merchant, product_id)
    form = RestockForm(request.POST, auto_id=f"id_s{product.pk}_%s")
    if form.is_valid():
        try:
            exchange.product_restock(actor=user, product=product, added=form.cleaned_data["added"])
        except ApplicationError as exc:
            add_care_errors(form, exc, {})
        else:
            return redirect("web:shop")
    return _counter_page(request, merchants, restock=(product.pk, form), status=422)


def product_form_page(
    request: HttpRequest,
    user: User,
    merchant: Merchant,
    product: Product | None,
    *,
    with_kind: bool,
    template: str,
    done: str,
    done_kwargs: dict[str, Any] | None = None,
) -> HttpResponse:
    """Add or change a product (the shop's page and the console share it)."""
    initial = product_initial(product) if product is not None else {"stock": 0, "is_active": True}
    form = ProductForm(request.POST or None, with_kind=with_kind, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            exchange.product_save(
                actor=user,
                merchant=merchant,
                product=product,
                kind=data["kind"] if with_kind else (product.kind if product else ProductKind.GOODS),
                name=data["name"],
                name_en=data["name_en"],
                price_minutes=data["price"],
                stock=data["stock"],
                is_active=data["is_active"],
            )
        except ApplicationError as exc:
            add_service_errors(form, exc)
        else:
            return redirect(reverse(done, kwargs=done_kwargs))
    return render(
        request,
        template,
        {"form": form, "merchant": merchant, "product": product},
        status=422 if request.method == "POST" else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def shop_product_new(request: HttpRequest, merchant_id: int) -> HttpResponse:
    user, merchants = _clerk(request)
    merchant = _merchant_of(merchants, merchant_id)
    return product_form_page(
        request, user, merchant, None, with_kind=False, template="web/exchange/product.html", done="web:shop"
    )


@login_required
@require_http_methods(["GET", "POST"])
def shop_product_edit(request: HttpRequest, merchant_id: int, product_id: int) -> HttpResponse:
    user, merchants = _clerk(request)
    merchant = _merchant_of(merchants, merchant_id)
    product = _product_of(merchant, product_id)
    if product.kind == ProductKind.RIGHT:
        raise PermissionDenied(
            _("Special rights are kept by the operator."), code="exchange_right_by_operator"
        )
    return product_form_page(
        request,
        user,
        merchant,
        product,
        with_kind=False,
        template="web/exchange/product.html",
        done="web:shop",
    )
