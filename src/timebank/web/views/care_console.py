"""The staff console's care pages: services of the staff member's subtree, posting for elders without a phone,
assigning, paper cards, the review queue, complaints, public fund budgets, and the care parts of a person's
page (certifications, service card, PIN)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import segno
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from timebank.audit.selectors import audit_events_visible
from timebank.care import selectors
from timebank.care import services as care
from timebank.care.models import ConfirmMethod, Funding, ServiceOrder, Status
from timebank.care.states import ALLOWED
from timebank.common.errors import ApplicationError, NotFound, PermissionDenied
from timebank.people import selectors as people
from timebank.people.access import Perm, access_anywhere, access_has
from timebank.people.models import Member, User
from timebank.regions.models import ServiceCategory
from timebank.sensing import presence, presence_selectors
from timebank.sensing.models import PresenceSession
from timebank.web.care_forms import (
    STAFF_ASK_FIELDS,
    TIMES_FIELDS,
    AssignForm,
    BatchApproveForm,
    BudgetForm,
    CardIssueForm,
    CertificationForm,
    DisputeResolveForm,
    OrdersFilterForm,
    PaperForm,
    PinSetForm,
    ReasonForm,
    RejectRowForm,
    StaffAskForm,
    StaffConfirmForm,
    TimesForm,
    add_care_errors,
    category_choices,
    request_post,
)
from timebank.web.forms import add_service_errors
from timebank.web.views.console import _communities, _person_form, staff_with

PAGE_SIZE = 50


def _care_staff(request: HttpRequest, perm: Perm = Perm.CARE_VIEW) -> User:
    return staff_with(request, perm)


def _categories() -> list[tuple[str, str]]:
    """Every category code of every policy; the service checks it against the elder's policy."""
    return category_choices(ServiceCategory.objects.order_by("policy__region__depth", "position", "pk"))


def _elders(user: User) -> QuerySet[Member]:
    return people.members_visible(user, role="elder").filter(is_active=True)


def _volunteers(user: User) -> QuerySet[Member]:
    return people.members_visible(user, role="volunteer").filter(is_active=True)


# --- services -----------------------------------------------------------------------------------------------


@login_required
def orders_list(request: HttpRequest) -> HttpResponse:
    user = _care_staff(request)
    filters = OrdersFilterForm(
        request.GET, communities=_communities(user, Perm.CARE_VIEW), categories=_categories()
    )
    values = filters.values()
    orders = selectors.orders_visible(user, **values)
    page = Paginator(orders, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "web/console/care/orders.html",
        {"page": page, "filters": filters, "can_manage": access_anywhere(user, Perm.CARE_MANAGE)},
    )


@login_required
@require_http_methods(["GET", "POST"])
def order_new(request: HttpRequest) -> HttpResponse:
    user = _care_staff(request, Perm.CARE_MANAGE)
    initial: dict[str, Any] = {"repeat_weeks": 1}
    chosen = request.GET.get("elder", "")
    if chosen.isdigit() and len(chosen) < 12:
        initial["elder"] = int(chosen)
    form = StaffAskForm(
        request.POST or None, user=user, elders=_elders(user), categories=_categories(), initial=initial
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            order = request_post(actor=user, elder=data["elder"], data=data, payer=data["payer"])
        except ApplicationError as exc:
            add_care_errors(form, exc, STAFF_ASK_FIELDS)
        else:
            return redirect("web:console-care-order", order_id=order.pk)
    status = 422 if request.method == "POST" else 200
    return render(request, "web/console/care/order_new.html", {"form": form}, status=status)


def _order(user: User, order_id: int) -> ServiceOrder:
    """A service of the staff member's subtree; any other is reported as not found."""
    order = selectors.order_get(user, order_id)
    if not access_has(user, Perm.CARE_VIEW, order.region):
        raise NotFound(code="care_order_not_found")
    return order


def _nearby_volunteers(user: User, order: ServiceOrder) -> QuerySet[Member]:
    """Volunteers the staff member can see in the service's street, the elder left out."""
    street = order.region.parent_id
    qs = _volunteers(user).exclude(pk=order.elder_id)
    return (
        qs.filter(home_region__parent_id=street)
        if street is not None
        else qs.filter(home_region=order.region)
    )


def _order_page(
    request: HttpRequest,
    user: User,
    order: ServiceOrder,
    *,
    form_key: str = "",
    form: forms.Form | None = None,
    page_error: str = "",
    status: int = 200,
) -> HttpResponse:
    moves = ALLOWED.get(order.status, frozenset())
    can_manage = access_has(user, Perm.CARE_MANAGE, order.region)
    can_review = access_has(user, Perm.CARE_REVIEW, order.region)
    involved = user.member_id is not None and user.member_id in {
        order.elder_id,
        order.volunteer_id,
        order.payer_id,
    }
    forms_: dict[str, forms.Form] = {
        "assign": AssignForm(user=user, volunteers=_nearby_volunteers(user, order)),
        "times": TimesForm(initial={"travel_minutes": 0}),
        "confirm": StaffConfirmForm(),
        "cancel": ReasonForm(auto_id="id_cancel_%s"),
        "withdraw": ReasonForm(auto_id="id_withdraw_%s"),
        "reject": ReasonForm(auto_id="id_reject_%s"),
    }
    if form_key and form is not None:
        forms_[form_key] = form
    history = audit_events_visible(user, subject_type="care.serviceorder", subject_id=str(order.pk)).order_by(
        "at", "id"
    )
    measured, sessions = presence_selectors.order_measured_sessions(order)
    context = {
        "order": order,
        "measured": measured,
        "sessions": sessions,
        "forms": forms_,
        "page_error": page_error,
        "history": history,
        "disputes": list(order.disputes.select_related("raised_by").order_by("opened_at")),
        "ratings": list(order.ratings.all()),
        "can": {
            "assign": can_manage and Status.ASSIGNED in moves,
            "times": can_manage and not involved and order.status in (Status.ASSIGNED, Status.IN_PROGRESS),
            "confirm": can_manage and not involved and order.status == Status.COMPLETED,
            "cancel": can_manage and Status.CANCELLED in moves,
            "withdraw": can_manage and order.status == Status.ASSIGNED,
            "reject": can_review
            and not involved
            and Status.REJECTED in moves
            and order.status != Status.DISPUTED,
            "approve": can_review and not involved and order.status == Status.CONFIRMED,
        },
    }
    return render(request, "web/console/care/order.html", context, status=status)


@login_required
def order_detail(request: HttpRequest, order_id: int) -> HttpResponse:
    user = _care_staff(request)
    return _order_page(request, user, _order(user, order_id))


def _order_act(
    request: HttpRequest,
    order_id: int,
    act: Callable[[User, ServiceOrder, dict[str, Any]], object],
    form: Callable[[User, ServiceOrder], forms.Form] | None = None,
    form_key: str = "",
    renames: dict[str, str] | None = None,
) -> HttpResponse:
    user = _care_staff(request)
    order = _order(user, order_id)
    bound = form(user, order) if form is not None else None
    if bound is None or bound.is_valid():
        try:
            act(user, order, bound.cleaned_data if bound is not None else {})
        except ApplicationError as exc:
            order = _order(user, order_id)
            renames = renames or {}
            if bound is None or not any(renames.get(n, n) in bound.fields for n in exc.fields):
                # a reason that is about the service, not a field: at the top, where it is always seen
                return _order_page(request, user, order, page_error=str(exc.message), status=exc.status)
            add_care_errors(bound, exc, renames)
            return _order_page(request, user, order, form_key=form_key, form=bound, status=exc.status)
        return redirect("web:console-care-order", order_id=order.pk)
    return _order_page(request, user, order, form_key=form_key, form=bound, status=422)


@login_required
@require_POST
def order_assign(request: HttpRequest, order_id: int) -> HttpResponse:
    def act(user: User, order: ServiceOrder, data: dict[str, Any]) -> object:
        return care.order_assign(actor=user, order=order, volunteer=data["chosen"])

    def form(user: User, order: ServiceOrder) -> forms.Form:
        return AssignForm(request.POST, user=user, volunteers=_nearby_volunteers(user, order))

    return _order_act(request, order_id, act, form, "assign", {"member_number": "volunteer"})


@login_required
@require_POST
def order_times(request: HttpRequest, order_id: int) -> HttpResponse:
    def act(user: User, order: ServiceOrder, data: dict[str, Any]) -> object:
        return care.order_times_record(
            actor=user,
            order=order,
            started_at=data["starts"],
            ended_at=data["ends"],
            travel_minutes=data["travel_minutes"],
            card_ref=data["card_ref"],
        )

    return _order_act(request, order_id, act, lambda u, o: TimesForm(request.POST), "times", TIMES_FIELDS)


@login_required
@require_POST
def order_confirm(request: HttpRequest, order_id: int) -> HttpResponse:
    def act(user: User, order: ServiceOrder, data: dict[str, Any]) -> object:
        return care.order_confirm(actor=user, order=order, method=ConfirmMethod.STAFF, note=data["note"])

    return _order_act(request, order_id, act, lambda u, o: StaffConfirmForm(request.POST), "confirm")


@login_required
@require_POST
def order_cancel(request: HttpRequest, order_id: int) -> HttpResponse:
    def act(user: User, order: ServiceOrder, data: dict[str, Any]) -> object:
        return care.order_cancel(actor=user, order=order, reason=data["reason"])

    return _order_act(
        request, order_id, act, lambda u, o: ReasonForm(request.POST, auto_id="id_cancel_%s"), "cancel"
    )


@login_required
@require_POST
def order_withdraw(request: HttpRequest, order_id: int) -> HttpResponse:
    def act(user: User, order: ServiceOrder, data: dict[str, Any]) -> object:
        return care.order_withdraw(actor=user, order=order, reason=data["reason"])

    return _order_act(
        request, order_id, act, lambda u, o: ReasonForm(request.POST, auto_id="id_withdraw_%s"), "withdraw"
    )


@login_required
@require_POST
def order_reject(request: HttpRequest, order_id: int) -> HttpResponse:
    def act(user: User, order: ServiceOrder, data: dict[str, Any]) -> object:
        return care.order_reject(actor=user, order=order, reason=data["reason"])

    return _order_act(
        request, order_id, act, lambda u, o: ReasonForm(request.POST, auto_id="id_reject_%s"), "reject"
    )


@login_required
@require_POST
def order_approve(request: HttpRequest, order_id: int) -> HttpResponse:
    def act(user: User, order: ServiceOrder, data: dict[str, Any]) -> object:
        return care.order_approve(actor=user, order=order)

    return _order_act(request, order_id, act)


@login_required
@require_http_methods(["GET", "POST"])
def paper_new(request: HttpRequest) -> HttpResponse:
    user = _care_staff(request, Perm.CARE_MANAGE)
    form = PaperForm(
        request.POST or None,
        user=user,
        elders=_elders(user),
        volunteers=_volunteers(user),
        categories=_categories(),
        initial={"travel_minutes": 0},
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            order = care.paper_record_create(
                actor=user,
                elder=data["elder"],
                volunteer=data["volunteer"],
                category=data["category"],
                started_at=data["starts"],
                ended_at=data["ends"],
                funding=data["funding"],
                payer=data["payer"],
                travel_minutes=data["travel_minutes"],
                card_ref=data["card_ref"],
                notes=data["notes"],
            )
        except ApplicationError as exc:
            add_care_errors(form, exc, TIMES_FIELDS)
        else:
            return redirect("web:console-care-order", order_id=order.pk)
    status = 422 if request.method == "POST" else 200
    return render(request, "web/console/care/paper.html", {"form": form}, status=status)


# --- the review queue ---------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def review(request: HttpRequest) -> HttpResponse:
    """Confirmed services to approve in a batch (each passes or fails on its own), or reject one by one."""
    user = _care_staff(request, Perm.CARE_REVIEW)
    filters = OrdersFilterForm(
        request.GET,
        communities=_communities(user, Perm.CARE_VIEW),
        categories=_categories(),
        with_status=False,
    )
    queue = selectors.review_queue(user, **filters.values())
    everything = selectors.review_queue(user)
    batch = BatchApproveForm(queue=everything)
    rejecting: RejectRowForm | None = None
    result = None
    status = 200
    if request.method == "POST" and request.POST.get("action") == "reject":
        posted = request.POST.get("order", "")
        rejecting = RejectRowForm(
            request.POST, queue=everything, auto_id=f"id_r{posted if posted.isdigit() else 'x'}_%s"
        )
        if rejecting.is_valid():
            order = rejecting.cleaned_data["order"]
            try:
                care.order_reject(actor=user, order=order, reason=rejecting.cleaned_data["reason"])
            except ApplicationError as exc:
                add_service_errors(rejecting, exc)
                status = exc.status
            else:
                messages.success(request, _("%(number)s rejected.") % {"number": order.number})
                return redirect(request.get_full_path())
        else:
            status = 422
    elif request.method == "POST":
        batch = BatchApproveForm(request.POST, queue=everything)
        if batch.is_valid():
            result = care.orders_approve(actor=user, orders=batch.cleaned_data["orders"])
            if result.approved:
                messages.success(
                    request,
                    ngettext(
                        "%(n)d service approved and credited.",
                        "%(n)d services approved and credited.",
                        len(result.approved),
                    )
                    % {"n": len(result.approved)},
                )
            if not result.failed:
                return redirect(request.get_full_path())
            status = 200 if result.approved else 422
        else:
            status = 422
    rows = []
    measured = presence_selectors.measured_for_review(queue)
    for order in queue:
        if rejecting is not None and rejecting.is_bound and rejecting.data.get("order") == str(order.pk):
            rows.append((order, rejecting, measured.get(order.pk)))
        else:
            rows.append(
                (
                    order,
                    RejectRowForm(
                        queue=everything, initial={"order": order.pk}, auto_id=f"id_r{order.pk}_%s"
                    ),
                    measured.get(order.pk),
                )
            )
    page_error = ""
    if rejecting is not None and rejecting.errors and not any(f is rejecting for _o, f, _m in rows):
        page_error = " ".join(str(e) for errors in rejecting.errors.values() for e in errors)
    return render(
        request,
        "web/console/care/review.html",
        {
            "rows": rows,
            "filters": filters,
            "batch": batch,
            "result": result,
            "page_error": page_error,
            "unplanned": presence_selectors.candidates_visible(user).count(),
        },
        status=status,
    )


# --- unplanned help measured by the sensors -----------------------------------------------------------------


class UnplannedRecordForm(forms.Form):
    category = forms.ChoiceField(label=gettext_lazy("Service category"))
    funding = forms.ChoiceField(
        label=gettext_lazy("Paid from"),
        choices=[(value, label) for value, label in Funding.choices if value != Funding.FAMILY],
    )
    notes = forms.CharField(label=gettext_lazy("Notes"), required=False, max_length=400)

    def __init__(self, *args: Any, categories: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["category"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = categories


class UnplannedDismissForm(forms.Form):
    reason = forms.CharField(label=gettext_lazy("Why it was not a service"), required=False, max_length=300)


def _unplanned_page(
    request: HttpRequest,
    user: User,
    *,
    bound: tuple[int, str, forms.Form] | None = None,
    status: int = 200,
) -> HttpResponse:
    """Help the sensors measured with no service planned, in the staff member's communities: record each as
    a service (the elder then confirms it) or dismiss it with a reason."""
    categories = _categories()
    can_manage = access_anywhere(user, Perm.CARE_MANAGE)
    rows: list[tuple[PresenceSession, forms.Form, forms.Form]] = []
    for session in presence_selectors.candidates_visible(user):
        record: forms.Form = UnplannedRecordForm(categories=categories, auto_id=f"id_u{session.pk}_%s")
        dismiss: forms.Form = UnplannedDismissForm(auto_id=f"id_x{session.pk}_%s")
        if bound is not None and bound[0] == session.pk:
            if bound[1] == "record":
                record = bound[2]
            else:
                dismiss = bound[2]
        rows.append((session, record, dismiss))
    return render(
        request,
        "web/console/care/unplanned.html",
        {"rows": rows, "can_manage": can_manage},
        status=status,
    )


@login_required
def unplanned(request: HttpRequest) -> HttpResponse:
    user = _care_staff(request)
    return _unplanned_page(request, user)


@login_required
@require_POST
def unplanned_record(request: HttpRequest, session_id: int) -> HttpResponse:
    user = _care_staff(request, Perm.CARE_MANAGE)
    session = presence_selectors.candidate_get(user, session_id)
    form = UnplannedRecordForm(request.POST, categories=_categories(), auto_id=f"id_u{session.pk}_%s")
    if not form.is_valid():
        return _unplanned_page(request, user, bound=(session.pk, "record", form), status=422)
    try:
        order = presence.candidate_record(
            actor=user,
            session=session,
            category=form.cleaned_data["category"],
            funding=form.cleaned_data["funding"],
            notes=form.cleaned_data["notes"],
        )
    except ApplicationError as exc:
        if isinstance(exc, NotFound):
            raise
        add_service_errors(form, exc)
        return _unplanned_page(request, user, bound=(session.pk, "record", form), status=exc.status)
    messages.success(
        request,
        _("Recorded as %(number)s; %(elder)s is asked to confirm it.")
        % {"number": order.number, "elder": order.elder.name},
    )
    return redirect("web:console-care-order", order_id=order.pk)


@login_required
@require_POST
def unplanned_dismiss(request: HttpRequest, session_id: int) -> HttpResponse:
    user = _care_staff(request, Perm.CARE_MANAGE)
    session = presence_selectors.candidate_get(user, session_id)
    form = UnplannedDismissForm(request.POST, auto_id=f"id_x{session.pk}_%s")
    if form.is_valid():
        try:
            presence.candidate_dismiss(actor=user, session=session, reason=form.cleaned_data["reason"])
        except ApplicationError as exc:
            if isinstance(exc, NotFound):
                raise
            add_service_errors(form, exc)
            return _unplanned_page(request, user, bound=(session.pk, "dismiss", form), status=exc.status)
        messages.success(request, _("%(number)s dismissed.") % {"number": session.number})
        return redirect("web:console-care-unplanned")
    return _unplanned_page(request, user, bound=(session.pk, "dismiss", form), status=422)


# --- complaints ---------------------------------------------------------------------------------------------


def _disputes_page(
    request: HttpRequest,
    user: User,
    *,
    bound: tuple[int, DisputeResolveForm] | None = None,
    status: int = 200,
) -> HttpResponse:
    rows = []
    for dispute in selectors.disputes_open(user):
        if bound is not None and bound[0] == dispute.pk:
            rows.append((dispute, bound[1]))
        else:
            rows.append((dispute, DisputeResolveForm(auto_id=f"id_d{dispute.pk}_%s")))
    return render(request, "web/console/care/disputes.html", {"rows": rows}, status=status)


@login_required
def disputes(request: HttpRequest) -> HttpResponse:
    user = _care_staff(request, Perm.CARE_REVIEW)
    return _disputes_page(request, user)


@login_required
@require_POST
def dispute_resolve(request: HttpRequest, dispute_id: int) -> HttpResponse:
    user = _care_staff(request, Perm.CARE_REVIEW)
    dispute = selectors.dispute_get(user, dispute_id)
    form = DisputeResolveForm(request.POST, auto_id=f"id_d{dispute.pk}_%s")
    if form.is_valid():
        data = form.cleaned_data
        try:
            care.dispute_resolve(
                actor=user,
                dispute=dispute,
                outcome=data["outcome"],
                resolution=data["resolution"],
                corrected_minutes=data["corrected_minutes"],
            )
        except ApplicationError as exc:
            add_service_errors(form, exc)
            return _disputes_page(request, user, bound=(dispute.pk, form), status=exc.status)
        messages.success(
            request, _("The complaint about %(number)s is resolved.") % {"number": dispute.order.number}
        )
        return redirect("web:console-care-disputes")
    return _disputes_page(request, user, bound=(dispute.pk, form), status=422)


# --- public fund budgets ------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def budgets(request: HttpRequest) -> HttpResponse:
    user = _care_staff(request)
    can_set = access_anywhere(user, Perm.FUNDS_MANAGE)
    if request.method == "POST" and not can_set:
        raise PermissionDenied()
    form = BudgetForm(request.POST or None) if can_set else None
    if request.method == "POST" and form is not None and form.is_valid():
        data = form.cleaned_data
        try:
            care.fund_budget_set(
                actor=user, region=data["region"], year=data["year"], limit_minutes=data["limit_minutes"]
            )
        except ApplicationError as exc:
            add_service_errors(form, exc)
        else:
            return redirect("web:console-care-budgets")
    status = 422 if request.method == "POST" else 200
    return render(
        request,
        "web/console/care/budgets.html",
        {"budgets": selectors.budgets_visible(user), "form": form},
        status=status,
    )


# --- the care parts of a person's page ----------------------------------------------------------------------


@login_required
@require_POST
def person_certification(request: HttpRequest, member_id: int) -> HttpResponse:
    def grant(user: User, member: Member, data: dict[str, Any]) -> object:
        return care.certification_grant(
            actor=user, member=member, code=data["code"], valid_until=data["valid_until"]
        )

    return _person_form(request, member_id, CertificationForm, "cert_form", grant, lambda m: m.is_volunteer)


@login_required
@require_POST
def person_certification_revoke(request: HttpRequest, member_id: int, cert_id: int) -> HttpResponse:
    user = _care_staff(request)
    member = people.member_get(user, member_id)
    certification = selectors.certifications_of(member).filter(pk=cert_id).first()
    if certification is None:
        raise NotFound(code="care_certification_not_found")
    care.certification_revoke(actor=user, certification=certification)
    return redirect("web:person", member_id=member.pk)


@login_required
@require_POST
def person_pin(request: HttpRequest, member_id: int) -> HttpResponse:
    def set_pin(user: User, member: Member, data: dict[str, Any]) -> object:
        care.elder_pin_set(actor=user, elder=member, pin=data["pin"])
        return None

    return _person_form(request, member_id, PinSetForm, "pin_form", set_pin, lambda m: m.is_elder)


@login_required
@require_POST
def person_card_issue(request: HttpRequest, member_id: int) -> HttpResponse:
    def issue(user: User, member: Member, data: dict[str, Any]) -> object:
        return care.service_card_issue(actor=user, elder=member)

    response = _person_form(request, member_id, CardIssueForm, "card_form", issue, lambda m: m.is_elder)
    if response.status_code == 302:
        return redirect("web:person-card", member_id=member_id)
    return response


@login_required
def person_card(request: HttpRequest, member_id: int) -> HttpResponse:
    """The printable service card: the QR code volunteers scan and the elder's 20 one-time codes. Every
    printing is logged, since the codes confirm services."""
    user = _care_staff(request, Perm.CARE_MANAGE)
    member = people.member_get(user, member_id)
    printed = care.service_card_print(actor=user, elder=member)
    url = request.build_absolute_uri(reverse("web:care-card", kwargs={"token": printed.token}))
    return render(
        request,
        "web/console/care/card_print.html",
        {
            "member": member,
            "card": printed.card,
            "url": url,
            "qr_svg": segno.make(url, error="m").svg_inline(scale=4, dark="#000", light="#fff"),
            "codes": printed.codes,
        },
    )


@login_required
@never_cache
def person_card_pdf(request: HttpRequest, member_id: int) -> HttpResponse:
    """The same card as a PDF of two A6 pages (front and back), through the same checks and the same audit
    record as the page; kept out of every cache, since the codes confirm services."""
    user = _care_staff(request, Perm.CARE_MANAGE)
    member = people.member_get(user, member_id)
    printed = care.service_card_print_pdf(
        actor=user,
        elder=member,
        card_url=lambda token: request.build_absolute_uri(reverse("web:care-card", kwargs={"token": token})),
    )
    response = HttpResponse(printed.pdf, content_type="application/pdf")
    response["Content-Disposition"] = f"inline; filename={printed.filename}"
    return response
