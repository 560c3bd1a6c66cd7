"""Unplanned help on the elder's side: the visits the proximity sensors noticed with no service planned, which
she records as a service (then reviewed by the station) or says were not help.

Only the elder herself decides here: the presence services let her or her station's staff decide, not a
relative (staff use the console's page). One visit per page, in plain words, with large buttons."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from timebank.common.errors import ApplicationError, NotFound
from timebank.people.models import Member, User
from timebank.sensing import presence, presence_selectors
from timebank.sensing.models import Candidate, PresenceSession
from timebank.web.care_forms import AskForm, add_care_errors, category_choices
from timebank.web.forms import add_service_errors
from timebank.web.views.console import signed_in

# service field → form field
RECORD_FIELDS = {"payer": "funding"}


def _elder(request: HttpRequest) -> tuple[User, Member]:
    user = signed_in(request)
    if user.member_id is None or user.member is None:
        raise NotFound(_("This sign-in has no member profile."), code="no_member")
    return user, user.member


class RecordForm(forms.Form):
    """What kind of help it was and who pays, asked the way the ask-for-help form asks."""

    category = forms.ChoiceField(label=gettext_lazy("What kind of help"))
    funding = forms.ChoiceField(label=gettext_lazy("Who pays"), widget=forms.RadioSelect)

    def __init__(self, *args: Any, me: Member, categories: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        category = self.fields["category"]
        assert isinstance(category, forms.ChoiceField)
        category.choices = categories
        # the choices an elder asking for herself is offered (her savings, the pool, the public fund)
        asked = AskForm(elders=[me], me=me, categories=[]).fields["funding"]
        assert isinstance(asked, forms.ChoiceField)
        funding = self.fields["funding"]
        assert isinstance(funding, forms.ChoiceField)
        funding.choices = asked.choices


class DismissForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Why was it not help?"),
        required=False,  # the service says why it is needed, next to the field
        max_length=300,
        help_text=gettext_lazy("A few words are enough, for example: a neighbour dropped by for a chat."),
    )


def _record_form(session: PresenceSession, me: Member, data: Any = None) -> RecordForm:
    choices = presence_selectors.candidate_record_choices(session)
    return RecordForm(
        data,
        me=me,
        categories=category_choices(choices.categories),
        initial={"funding": choices.funding},
    )


@login_required
def unplanned(request: HttpRequest) -> HttpResponse:
    """The visits waiting for her decision, newest first."""
    _user, member = _elder(request)
    waiting = list(presence_selectors.candidates_of_elder(member)) if member.is_elder else []
    return render(request, "web/sensing/unplanned.html", {"sessions": waiting})


def _decision_page(
    request: HttpRequest, session: PresenceSession, template: str, form: forms.Form, *, status: int = 200
) -> HttpResponse:
    """The visit and the form; once it is decided, what was decided instead of the form."""
    pending = session.candidate == Candidate.PENDING
    return render(request, template, {"session": session, "form": form, "pending": pending}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def record(request: HttpRequest, session_id: int) -> HttpResponse:
    """Yes, it was help: record it as a service, confirmed by her; the station reviews it."""
    user, member = _elder(request)
    session = presence_selectors.candidate_get_own(user, session_id)
    template = "web/sensing/record.html"
    if request.method != "POST":
        return _decision_page(request, session, template, _record_form(session, member))
    form = _record_form(session, member, request.POST)
    if not form.is_valid():
        return _decision_page(request, session, template, form, status=422)
    try:
        order = presence.candidate_record(
            actor=user,
            session=session,
            category=form.cleaned_data["category"],
            funding=form.cleaned_data["funding"],
        )
    except ApplicationError as exc:
        if isinstance(exc, NotFound):
            raise
        add_care_errors(form, exc, RECORD_FIELDS)  # a reason about no field of the form goes at its top
        session = presence_selectors.candidate_get_own(user, session_id)  # decided meanwhile, perhaps
        return _decision_page(request, session, template, form, status=exc.status)
    messages.success(
        request,
        _(
            "Recorded: the visit of %(name)s is now service %(number)s. The station will review it before "
            "the time is credited."
        )
        % {"name": session.volunteer.name, "number": order.number},
    )
    return redirect("web:unplanned")


@login_required
@require_http_methods(["GET", "POST"])
def dismiss(request: HttpRequest, session_id: int) -> HttpResponse:
    """No, it was not help (a neighbour's chat, a passing visit): say why, and it is not recorded."""
    user, _member = _elder(request)
    session = presence_selectors.candidate_get_own(user, session_id)
    template = "web/sensing/dismiss.html"
    if request.method != "POST":
        return _decision_page(request, session, template, DismissForm())
    form = DismissForm(request.POST)
    if not form.is_valid():
        return _decision_page(request, session, template, form, status=422)
    try:
        presence.candidate_dismiss(actor=user, session=session, reason=form.cleaned_data["reason"])
    except ApplicationError as exc:
        if isinstance(exc, NotFound):
            raise
        add_service_errors(form, exc)
        session = presence_selectors.candidate_get_own(user, session_id)
        return _decision_page(request, session, template, form, status=exc.status)
    messages.success(
        request,
        _("Noted: the visit of %(name)s was not help, and it is not recorded.")
        % {"name": session.volunteer.name},
    )
    return redirect("web:unplanned")
