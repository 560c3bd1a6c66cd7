"""The staff console: people of the staff member's subtree, verification, family bonds, the audit log."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from timebank.audit.selectors import audit_events_visible
from timebank.care import selectors as care
from timebank.common.errors import ApplicationError, PermissionDenied
from timebank.people import selectors as people
from timebank.people import services
from timebank.people.access import Perm, access_anywhere, access_has, access_region_q
from timebank.people.models import Member, PriorityGroup, User
from timebank.regions.codes import Level
from timebank.regions.models import Region
from timebank.web.care_forms import CardIssueForm, CertificationForm, PinSetForm
from timebank.web.exchange_forms import MoveForm
from timebank.web.forms import (
    AuditFilterForm,
    BondDecideForm,
    BondProposeForm,
    MemberForm,
    PeopleFilterForm,
    PriorityForm,
    SignInPinForm,
    StaffCreateForm,
    add_service_errors,
)

PAGE_SIZE = 50


def signed_in(request: HttpRequest) -> User:
    """The signed-in user (every view that calls this is behind ``login_required``)."""
    user = request.user
    assert isinstance(user, User)
    return user


def _staff(request: HttpRequest) -> User:
    user = signed_in(request)
    people.require_staff(user)
    return user


def staff_with(request: HttpRequest, perm: Perm) -> User:
    """The signed-in staff member, who must hold ``perm`` somewhere (the service checks where)."""
    user = _staff(request)
    if not access_anywhere(user, perm):
        raise PermissionDenied()
    return user


def _communities(user: User, perm: Perm) -> QuerySet[Region]:
    return Region.objects.filter(access_region_q(user, perm, "path"), level=Level.COMMUNITY).order_by("path")


@login_required
def people_list(request: HttpRequest) -> HttpResponse:
    user = _staff(request)
    communities = _communities(user, Perm.PEOPLE_VIEW)
    filters = PeopleFilterForm(request.GET)
    filters.is_valid()  # a bad filter is dropped; the rest still apply
    chosen = filters.cleaned_data.get("community") or ""
    region = communities.filter(code=chosen).first() if chosen else None
    search = filters.cleaned_data.get("q") or ""
    role = filters.cleaned_data.get("role") or ""
    members = people.members_visible(user, region=region, search=search, role=role)
    page = Paginator(members, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "web/console/people_list.html",
        {
            "page": page,
            "communities": communities,
            "region": region,
            "search": search,
            "role": role,
            "can_register": access_anywhere(user, Perm.PEOPLE_MANAGE),
        },
    )


def _member_values(form: MemberForm, *, editing: bool) -> dict[str, Any]:
    values = dict(form.cleaned_data)
    if editing:
        for keep_if_blank in ("id_number", "health_notes"):
            if not values.get(keep_if_blank):
                values.pop(keep_if_blank, None)
    return values


@login_required
@require_http_methods(["GET", "POST"])
def person_new(request: HttpRequest) -> HttpResponse:
    user = _staff(request)
    form = MemberForm(request.POST or None, communities=_communities(user, Perm.PEOPLE_MANAGE))
    if request.method == "POST" and form.is_valid():
        try:
            member = services.member_register(actor=user, **_member_values(form, editing=False))
        except ApplicationError as exc:
            add_service_errors(form, exc)
        else:
            return redirect("web:person", member_id=member.pk)
    status = 422 if request.method == "POST" else 200
    return render(request, "web/console/person_form.html", {"form": form, "member": None}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def person_edit(request: HttpRequest, member_id: int) -> HttpResponse:
    user = _staff(request)
    member = people.member_get(user, member_id)
    if not access_has(user, Perm.PEOPLE_MANAGE, member.home_region):
        raise PermissionDenied()
    initial = {
        f: getattr(member, f)
        for f in (
            "name",
            "home_region",
            "mobile",
            "birth_date",
            "sex",
            "address",
            "emergency_contact_name",
            "emergency_contact_mobile",
            "is_volunteer",
            "is_elder",
        )
    }
    initial["languages"] = ", ".join(member.languages)
    initial["skills"] = ", ".join(member.skills)
    form = MemberForm(
        request.POST or None,
        initial=initial,
        editing=True,
        communities=_communities(user, Perm.PEOPLE_MANAGE),
    )
    if request.method == "POST" and form.is_valid():
        changes = {k: v for k, v in _member_values(form, editing=True).items() if k in form.changed_data}
        try:
            services.member_update(actor=user, member=member, changes=changes)
        except ApplicationError as exc:
            add_service_errors(form, exc)
        else:
            return redirect("web:person", member_id=member.pk)
    status = 422 if request.method == "POST" else 200
    return render(request, "web/console/person_form.html", {"form": form, "member": member}, status=status)


def _person_context(user: User, member: Member) -> dict[str, Any]:
    statuses = {s.group: s for s in people.member_priority_statuses(member)}
    return {
        "member": member,
        "priority": [(value, label, statuses.get(value)) for value, label in PriorityGroup.choices],
        "bonds": people.member_bonds(member),
        "can_manage": access_has(user, Perm.PEOPLE_MANAGE, member.home_region),
        "can_verify": access_has(user, Perm.PEOPLE_VERIFY, member.home_region),
        "can_unmask": access_has(user, Perm.PEOPLE_UNMASK, member.home_region),
        "priority_form": PriorityForm(),
        "bond_form": BondProposeForm(),
        "age": member.birth_date and _age(member.birth_date),
        **_care_context(user, member),
        "move_form": MoveForm(
            communities=_communities(user, Perm.PEOPLE_MANAGE).exclude(pk=member.home_region_id)
        ),
        "can_exchange_here": access_has(user, Perm.EXCHANGE_MANAGE, member.home_region),
    }


def _care_context(user: User, member: Member) -> dict[str, Any]:
    """The care parts of a person's page: a volunteer's star level and certifications, an elder's service
    card and PIN."""
    return {
        "star": care.star_level(member) if member.is_volunteer else None,
        "certifications": list(care.certifications_of(member)) if member.is_volunteer else [],
        "card": care.card_current(member) if member.is_elder else None,
        # no selector tells whether a PIN is set; this reads only whether one exists, never the hash
        "pin_set": member.is_elder and care.elder_has_pin(member),
        "can_care_manage": access_has(user, Perm.CARE_MANAGE, member.home_region),
        "can_care_view": access_has(user, Perm.CARE_VIEW, member.home_region),
        "cert_form": CertificationForm(),
        "pin_form": PinSetForm(),
        "sign_in_pin_form": SignInPinForm(),
        "sign_in": User.objects.filter(member=member).first(),
        "card_form": CardIssueForm(),
    }


def _age(birth: dt.date) -> int:
    from timebank.people.validators import age_on

    return age_on(birth, timezone.localdate())


@login_required
def person_detail(request: HttpRequest, member_id: int) -> HttpResponse:
    user = _staff(request)
    member = people.member_get(user, member_id)
    return render(request, "web/console/person_detail.html", _person_context(user, member))


@login_required
@require_POST
def person_reveal(request: HttpRequest, member_id: int, what: str) -> HttpResponse:
    """Unmask the ID number or the health notes (an htmx fragment; the read is audit-logged)."""
    user = _staff(request)
    member = people.member_get(user, member_id)
    if what == "id-number":
        value = services.member_id_number_reveal(actor=user, member=member)
    elif what == "health-notes":
        value = services.member_health_notes_reveal(actor=user, member=member)
    else:
        raise PermissionDenied()
    return render(request, "web/console/_revealed.html", {"value": value})


def _person_form(
    request: HttpRequest,
    member_id: int,
    form_class: Callable[[Any], forms.Form],
    form_key: str,
    act: Callable[[User, Member, dict[str, Any]], object],
    section_shown: Callable[[Member], bool] = lambda member: True,
) -> HttpResponse:
    """A form on a person's page: act, then back to the page; or the page again with the form's errors (and
    the reason at the top when the form's section is not drawn for this person)."""
    user = _staff(request)
    member = people.member_get(user, member_id)
    form = form_class(request.POST)
    page_error = None
    if form.is_valid():
        try:
            act(user, member, form.cleaned_data)
        except ApplicationError as exc:
            add_service_errors(form, exc)
            if not section_shown(member):
                page_error = str(exc.message)
        else:
            return redirect("web:person", member_id=member.pk)
    context = _person_context(user, member) | {form_key: form, "page_error": page_error}
    return render(request, "web/console/person_detail.html", context, status=422)


@login_required
@require_POST
def person_sign_in_pin(request: HttpRequest, member_id: int) -> HttpResponse:
    def set_pin(user: User, member: Member, data: dict[str, Any]) -> object:
        return services.member_sign_in_pin_set(actor=user, member=member, pin=data["pin"])

    return _person_form(request, member_id, SignInPinForm, "sign_in_pin_form", set_pin)


@login_required
@require_POST
def person_priority(request: HttpRequest, member_id: int) -> HttpResponse:
    def verify(user: User, member: Member, data: dict[str, Any]) -> object:
        return services.priority_group_verify(
            actor=user, member=member, group=data["group"], note=data["note"]
        )

    return _person_form(request, member_id, PriorityForm, "priority_form", verify, lambda m: m.is_elder)


@login_required
@require_POST
def person_bond(request: HttpRequest, member_id: int) -> HttpResponse:
    def propose(user: User, member: Member, data: dict[str, Any]) -> object:
        relative = people.member_find_for_bond(name=data["relative_name"], mobile=data["relative_mobile"])
        return services.family_bond_propose(
            actor=user, member=member, relative=relative, relation=data["relation"]
        )

    return _person_form(request, member_id, BondProposeForm, "bond_form", propose)


@login_required
@require_http_methods(["GET", "POST"])
def bonds_pending(request: HttpRequest) -> HttpResponse:
    user = _staff(request)
    error = None
    if request.method == "POST":
        form = BondDecideForm(request.POST)
        try:
            bond = people.bond_get(user, int(request.POST.get("bond", "0") or 0))
            if not form.is_valid():
                raise ApplicationError(_("Choose verify or reject."), code="decision_missing")
            services.family_bond_decide(
                actor=user,
                bond=bond,
                approve=form.cleaned_data["decision"] == "approve",
                reason=form.cleaned_data["reason"],
            )
        except (ApplicationError, ValueError) as exc:
            error = str(exc.message) if isinstance(exc, ApplicationError) else _("Unknown bond.")
        else:
            return redirect("web:bonds")
    return render(
        request,
        "web/console/bonds.html",
        {"bonds": people.bonds_pending(user), "error": error},
        status=422 if error else 200,
    )


@login_required
def audit_log(request: HttpRequest) -> HttpResponse:
    user = _staff(request)
    if not access_anywhere(user, Perm.AUDIT_VIEW):
        raise PermissionDenied()
    form = AuditFilterForm(request.GET or None)
    filters: dict[str, Any] = {}
    if form.is_valid():
        data = form.cleaned_data
        filters["event_type"] = data["event_type"] or ""
        tz = timezone.get_current_timezone()
        if data["since"]:
            filters["since"] = dt.datetime.combine(data["since"], dt.time.min, tzinfo=tz)
        if data["until"]:
            filters["until"] = dt.datetime.combine(
                data["until"] + dt.timedelta(days=1), dt.time.min, tzinfo=tz
            )
    page = Paginator(audit_events_visible(user, **filters), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "web/console/audit.html", {"page": page, "form": form})


@login_required
@require_http_methods(["GET", "POST"])
def staff_list(request: HttpRequest) -> HttpResponse:
    """Operators and platform admins create staff sign-ins and grant roles inside their subtree."""
    user = _staff(request)
    if not access_anywhere(user, Perm.STAFF_GRANT):
        raise PermissionDenied()
    scope = Region.objects.filter(access_region_q(user, Perm.STAFF_GRANT, "path")).order_by("path")
    form = StaffCreateForm(request.POST or None, regions=scope)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                created = services.staff_user_create(
                    actor=user,
                    username=data["username"],
                    password=data["password"],
                    name=data["name"],
                    mobile=data["mobile"],
                )
                services.staff_grant_create(
                    actor=user, user=created, role=data["role"], region=data["region"]
                )
        except ApplicationError as exc:
            add_service_errors(form, exc)
        else:
            return redirect("web:staff")
    status = 422 if request.method == "POST" else 200
    return render(
        request,
        "web/console/staff.html",
        {"grants": people.grants_visible(user), "form": form},
        status=status,
    )


@login_required
@require_POST
def staff_revoke(request: HttpRequest, grant_id: int) -> HttpResponse:
    user = _staff(request)
    grant = people.grant_get(user, grant_id)
    services.staff_grant_revoke(actor=user, grant=grant)
    return redirect("web:staff")
