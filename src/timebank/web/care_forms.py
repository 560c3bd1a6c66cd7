"""Forms of the care pages: what members and staff type, parsed before a care service is called.

The services name their fields after the model (``window_start``, ``started_at``, ``payer`` …); the forms ask
for a date and two times the way people read a paper card, so each form says which of its fields a service's
field stands for (``*_FIELDS``) and ``add_care_errors`` puts the service's reasons there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from timebank.care import services as care
from timebank.care.models import Funding, Outcome, ServiceOrder, Status
from timebank.common.errors import ApplicationError, NotFound
from timebank.people import selectors as people
from timebank.people.models import Member, User
from timebank.regions.models import Region, ServiceCategory
from timebank.regions.selectors import region_get
from timebank.web.forms import EARLIEST, LATEST, add_service_errors

MAX_REPEAT_WEEKS = 26

# service field → form field
ASK_FIELDS = {"window_start": "start", "window_end": "end", "payer": "funding", "place": "elder"}
STAFF_ASK_FIELDS = {"window_start": "start", "window_end": "end", "place": "elder"}
TIMES_FIELDS = {"started_at": "start", "ended_at": "end"}


def add_care_errors(form: forms.Form, error: ApplicationError, renames: Mapping[str, str]) -> None:
    """``add_service_errors`` with the service's field names turned into the form's."""
    fields: dict[str, list[str]] = {}
    for name, messages in error.fields.items():
        fields.setdefault(renames.get(name, name), []).extend(messages)
    add_service_errors(form, ApplicationError(error.message, code=error.code, fields=fields))


def _date_input() -> forms.DateInput:  # ISO in the widget: a browser's date input understands nothing else
    return forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def _time_input() -> forms.TimeInput:
    return forms.TimeInput(attrs={"type": "time"}, format="%H:%M")


def category_choices(categories: Iterable[ServiceCategory]) -> list[tuple[str, str]]:
    """One choice per category code (the first policy's name wins), in the policies' order."""
    seen: dict[str, str] = {}
    for category in categories:
        seen.setdefault(category.code, category.display_name)
    return list(seen.items())


class _When(forms.Form):
    """A date with a start and an end time, combined into local ``starts`` and ``ends``."""

    date = forms.DateField(label=_("Date"), widget=_date_input())
    start = forms.TimeField(label=_("From"), widget=_time_input())
    end = forms.TimeField(label=_("Until"), widget=_time_input())

    def clean_date(self) -> dt.date:
        day: dt.date = self.cleaned_data["date"]
        if not EARLIEST <= day <= LATEST:
            raise forms.ValidationError(
                _("Choose a date between %(a)s and %(b)s.") % {"a": EARLIEST, "b": LATEST}
            )
        return day

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        day, start, end = data.get("date"), data.get("start"), data.get("end")
        if day is not None and start is not None and end is not None:
            data["starts"] = timezone.make_aware(dt.datetime.combine(day, start))
            data["ends"] = timezone.make_aware(dt.datetime.combine(day, end))
        return data


class _Request(_When):
    """What every request says besides who and what: where, notes, and how many weekly visits."""

    address = forms.CharField(
        label=_("Address"),
        required=False,
        max_length=200,
        help_text=_("Leave empty to use the address on file."),
    )
    notes = forms.CharField(
        label=_("Notes for the volunteer"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    repeat_weeks = forms.IntegerField(
        label=_("How many weeks"),
        min_value=1,
        max_value=MAX_REPEAT_WEEKS,
        initial=1,
        help_text=_("1 for once; up to 26 to have the same visit every week."),
    )


def request_post(
    *, actor: User, elder: Member, data: Mapping[str, Any], payer: Member | None
) -> ServiceOrder:
    """Post the request a filled-in request form describes; returns its first service."""
    return care.order_create(
        actor=actor,
        elder=elder,
        category=data["category"],
        window_start=data["starts"],
        window_end=data["ends"],
        funding=data["funding"],
        payer=payer,
        address=data["address"],
        notes=data["notes"],
        repeat_weeks=data["repeat_weeks"],
    )[0]


class AskForm(_Request):
    """A member asks for help for themselves or for an elder of their verified family."""

    field_order = ["elder", "category", "date", "start", "end", "address", "notes", "funding", "repeat_weeks"]

    elder = forms.TypedChoiceField(label=_("Who needs help"), coerce=int, widget=forms.RadioSelect)
    category = forms.ChoiceField(label=_("What kind of help"))
    funding = forms.ChoiceField(label=_("Who pays"), widget=forms.RadioSelect)

    def __init__(
        self, *args: Any, elders: list[Member], me: Member, categories: list[tuple[str, str]], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        elder = self.fields["elder"]
        assert isinstance(elder, forms.TypedChoiceField)
        elder.choices = [(e.pk, _("Myself") if e.pk == me.pk else e.name) for e in elders]
        category = self.fields["category"]
        assert isinstance(category, forms.ChoiceField)
        category.choices = categories
        funding = self.fields["funding"]
        assert isinstance(funding, forms.ChoiceField)
        funding.choices = [
            (Funding.OWN, _("The elder's own savings")),
            *(
                [(Funding.FAMILY, _("My savings (I am family)"))]
                if any(e.pk != me.pk for e in elders)
                else []
            ),
            (Funding.POOL, _("The mutual-aid pool (verified priority elders)")),
            (Funding.PUBLIC, _("The public service fund (verified priority elders)")),
        ]


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), required=False, max_length=300)


class ComplaintForm(forms.Form):
    reason = forms.CharField(
        label=_("What went wrong"), required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 3})
    )


class NoShowForm(forms.Form):
    note = forms.CharField(label=_("Note (optional)"), required=False, max_length=300)


class PinConfirmForm(forms.Form):
    pin = forms.CharField(
        label=_("The elder types their PIN"),
        max_length=6,
        widget=forms.PasswordInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )


class CardCodeConfirmForm(forms.Form):
    code = forms.CharField(
        label=_("Or a one-time code from the elder's service card"),
        max_length=6,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )


class CardTokenForm(forms.Form):
    """The signed token of a scanned service card, passed along when checking in or out from its page."""

    token = forms.CharField(required=False, max_length=500, widget=forms.HiddenInput)


class RateForm(forms.Form):
    stars = forms.TypedChoiceField(
        label=_("Stars"),
        coerce=int,
        choices=[(n, "★" * n) for n in range(5, 0, -1)],
        widget=forms.RadioSelect,
    )
    comment = forms.CharField(label=_("Comment (optional)"), required=False, max_length=300)


# --- the staff console --------------------------------------------------------------------------------------


class MemberNumberField(forms.IntegerField):
    """A member chosen by the number on their console page, among the members the staff member can see."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**31 - 1)
        super().__init__(*args, **kwargs)
        self.user: User | None = None

    def clean(self, value: Any) -> Member | None:
        number = super().clean(value)
        if number is None:
            return None
        assert self.user is not None
        try:
            return people.member_get(self.user, number)
        except NotFound as exc:
            raise forms.ValidationError(_("No member with this number in your regions.")) from exc


class _StaffForm(forms.Form):
    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            if isinstance(field, MemberNumberField):
                field.user = user


def _set_queryset(form: forms.Form, name: str, queryset: QuerySet[Any]) -> None:
    field = form.fields[name]
    assert isinstance(field, forms.ModelChoiceField)
    field.queryset = queryset


def _set_choices(form: forms.Form, name: str, choices: list[tuple[Any, Any]]) -> None:
    field = form.fields[name]
    assert isinstance(field, forms.ChoiceField)
    field.choices = choices


class PersonChoiceField(forms.ModelChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Member) -> str:
        return str(_("%(name)s · %(community)s (No. %(number)d)")) % {
            "name": obj.name,
            "community": obj.home_region.display_name,
            "number": obj.pk,
        }


class StaffAskForm(_StaffForm, _Request):
    """Station staff post a request for an elder without a phone."""

    field_order = [
        "elder",
        "category",
        "date",
        "start",
        "end",
        "address",
        "notes",
        "funding",
        "payer",
        "repeat_weeks",
    ]

    elder = PersonChoiceField(label=_("Elder"), queryset=Member.objects.none())
    category = forms.ChoiceField(label=_("Service category"))
    funding = forms.ChoiceField(label=_("Who pays"), choices=Funding.choices)
    payer = MemberNumberField(
        label=_("Paying family member (member number)"),
        required=False,
        help_text=_("Only when a family member's savings pay."),
    )

    def __init__(
        self, *args: Any, elders: QuerySet[Member], categories: list[tuple[str, str]], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        _set_queryset(self, "elder", elders)
        _set_choices(self, "category", categories)


class AssignForm(_StaffForm):
    volunteer = PersonChoiceField(
        label=_("Volunteer nearby"), required=False, queryset=Member.objects.none(), empty_label="—"
    )
    member_number = MemberNumberField(label=_("Or any volunteer by member number"), required=False)

    def __init__(self, *args: Any, volunteers: QuerySet[Member], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _set_queryset(self, "volunteer", volunteers)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        chosen = data.get("member_number") or data.get("volunteer")
        if chosen is None and not self.errors:
            self.add_error("volunteer", _("Choose a volunteer."))
        data["chosen"] = chosen
        return data


class TimesForm(_When):
    """The times of a service, copied from the paper card."""

    travel_minutes = forms.IntegerField(
        label=_("Travel time to leave out (minutes)"), min_value=0, max_value=24 * 60, initial=0
    )
    card_ref = forms.CharField(label=_("Paper card number"), required=False, max_length=40)


class StaffConfirmForm(forms.Form):
    note = forms.CharField(
        label=_("Who you phoned and what they said"),
        required=False,
        max_length=300,
    )


class PaperForm(_StaffForm, _When):
    """A service given earlier and signed on the elder's paper card."""

    field_order = [
        "elder",
        "volunteer",
        "category",
        "date",
        "start",
        "end",
        "travel_minutes",
        "card_ref",
        "funding",
        "payer",
        "notes",
    ]

    elder = PersonChoiceField(label=_("Elder"), queryset=Member.objects.none())
    volunteer = PersonChoiceField(label=_("Volunteer"), queryset=Member.objects.none())
    category = forms.ChoiceField(label=_("Service category"))
    travel_minutes = forms.IntegerField(
        label=_("Travel time to leave out (minutes)"), min_value=0, max_value=24 * 60, initial=0
    )
    card_ref = forms.CharField(label=_("Paper card number"), required=False, max_length=40)
    funding = forms.ChoiceField(label=_("Who pays"), choices=Funding.choices)
    payer = MemberNumberField(
        label=_("Paying family member (member number)"),
        required=False,
        help_text=_("Only when a family member's savings pay."),
    )
    notes = forms.CharField(label=_("Notes"), required=False, max_length=500)

    def __init__(
        self,
        *args: Any,
        elders: QuerySet[Member],
        volunteers: QuerySet[Member],
        categories: list[tuple[str, str]],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        _set_queryset(self, "elder", elders)
        _set_queryset(self, "volunteer", volunteers)
        _set_choices(self, "category", categories)


class OrdersFilterForm(forms.Form):
    status = forms.ChoiceField(label=_("Status"), required=False)
    community = forms.ChoiceField(label=_("Community"), required=False)
    category = forms.ChoiceField(label=_("Service category"), required=False)
    flagged = forms.BooleanField(label=_("Only flagged"), required=False)

    def __init__(
        self,
        *args: Any,
        communities: QuerySet[Region],
        categories: list[tuple[str, str]],
        with_status: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if with_status:
            _set_choices(self, "status", [("", _("Any status")), *Status.choices])
        else:
            del self.fields["status"]
        _set_choices(
            self,
            "community",
            [("", _("All my communities")), *((c.code, f"{c.display_name} ({c.code})") for c in communities)],
        )
        _set_choices(self, "category", [("", _("Any category")), *categories])

    def values(self) -> dict[str, Any]:
        """The filters that are valid; a bad one is dropped and the rest still apply."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return {name: data.get(name) or ("" if name != "flagged" else False) for name in self.fields}


class BatchApproveForm(forms.Form):
    orders = forms.ModelMultipleChoiceField(
        label=_("Services"),
        queryset=ServiceOrder.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Tick the services to approve.")},
    )

    def __init__(self, *args: Any, queue: QuerySet[ServiceOrder], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _set_queryset(self, "orders", queue)


class RejectRowForm(forms.Form):
    order = forms.ModelChoiceField(queryset=ServiceOrder.objects.none(), widget=forms.HiddenInput)
    reason = forms.CharField(label=_("Reason to reject"), required=False, max_length=300)

    def __init__(self, *args: Any, queue: QuerySet[ServiceOrder], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _set_queryset(self, "order", queue)


class DisputeResolveForm(forms.Form):
    outcome = forms.ChoiceField(label=_("Outcome"), choices=Outcome.choices, widget=forms.RadioSelect)
    corrected_minutes = forms.IntegerField(
        label=_("Corrected service time (minutes)"),
        required=False,
        min_value=1,
        max_value=24 * 60,
        help_text=_("Only when the time is corrected."),
    )
    resolution = forms.CharField(label=_("Resolution"), required=False, max_length=500)


class BudgetForm(forms.Form):
    region = forms.CharField(
        label=_("Region code"), max_length=12, help_text=_("e.g. 310101 for a district, 310000 for the city")
    )
    year = forms.IntegerField(label=_("Year"), min_value=2000, max_value=2100)
    limit_minutes = forms.IntegerField(label=_("Budget (minutes)"), min_value=0, max_value=10**12)

    def clean_region(self) -> Region:
        code = self.cleaned_data["region"].strip()
        try:
            return region_get(code)
        except NotFound as exc:
            raise forms.ValidationError(str(exc.message)) from exc


class CertificationForm(forms.Form):
    code = forms.CharField(
        label=_("Certification"), max_length=40, help_text=_("e.g. care_worker, counsellor, lawyer")
    )
    valid_until = forms.DateField(label=_("Valid until"), required=False, widget=_date_input())

    def clean_valid_until(self) -> dt.date | None:
        day: dt.date | None = self.cleaned_data["valid_until"]
        if day is not None and not EARLIEST <= day <= LATEST:
            raise forms.ValidationError(
                _("Choose a date between %(a)s and %(b)s.") % {"a": EARLIEST, "b": LATEST}
            )
        return day


class PinSetForm(forms.Form):
    pin = forms.CharField(
        label=_("New PIN for confirming services"),
        max_length=6,
        help_text=_("4 to 6 digits, chosen by the elder."),
        widget=forms.PasswordInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )


class CardIssueForm(forms.Form):
    """Issuing a card asks nothing; the form is there so its errors show like any other's."""
