from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from timebank.common.errors import ApplicationError
from timebank.people.models import PriorityGroup, Relation, Role, Sex
from timebank.people.validators import InvalidValue, normalize_mobile, parse_id_number
from timebank.regions.models import Region


def add_service_errors(form: forms.Form, error: ApplicationError) -> None:
    """Put a service's field errors next to the fields; anything else at the top of the form."""
    placed = False
    for field, messages in error.fields.items():
        target = field if field in form.fields else None
        for message in messages:
            form.add_error(target, message)
            placed = True
    if not placed:
        form.add_error(None, str(error.message))


def _checked(value: str, check: Callable[[str], Any]) -> str:
    """Run a domain validator in the form, so every bad field is marked at once (the service checks again)."""
    value = (value or "").strip()
    if not value:
        return ""
    try:
        result = check(value)
    except InvalidValue as exc:
        raise forms.ValidationError(str(exc)) from exc
    return result if isinstance(result, str) else value


class SignInForm(forms.Form):
    identifier = forms.CharField(label=_("Username or mobile number"), max_length=150)
    password = forms.CharField(label=_("Password"), widget=forms.PasswordInput, max_length=256)


class SignInPinForm(forms.Form):
    pin = forms.CharField(
        label=_("Sign-in PIN"),
        max_length=6,
        help_text=_(
            "6 digits. The elder signs in with their mobile number (or the username shown) and this PIN."
        ),
        widget=forms.PasswordInput(attrs={"inputmode": "numeric", "autocomplete": "new-password"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Ids of its own: the person's page also has the confirmation PIN form, whose field is "pin" too, and
        # a label must point at one box only.
        kwargs.setdefault("auto_id", "id_sign_in_%s")
        super().__init__(*args, **kwargs)


class MemberForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=50)
    home_region = forms.ModelChoiceField(label=_("Home community"), queryset=Region.objects.none())
    mobile = forms.CharField(label=_("Mobile number"), required=False, max_length=20)
    id_number = forms.CharField(
        label=_("Resident ID number"),
        required=False,
        max_length=18,
        help_text=_("18 characters. Leave empty to keep the number on file."),
    )
    birth_date = forms.DateField(  # ISO in the widget: a browser's date input understands nothing else
        label=_("Birth date"),
        required=False,
        help_text=_("Taken from the ID number if given."),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    sex = forms.ChoiceField(label=_("Sex"), required=False, choices=[("", "—"), *Sex.choices])
    address = forms.CharField(label=_("Address"), required=False, max_length=200)
    emergency_contact_name = forms.CharField(label=_("Emergency contact"), required=False, max_length=50)
    emergency_contact_mobile = forms.CharField(
        label=_("Emergency contact's mobile"), required=False, max_length=20
    )
    languages = forms.CharField(
        label=_("Languages"),
        required=False,
        max_length=400,
        help_text=_("Separated by commas, e.g. 普通话, 上海话"),
    )
    skills = forms.CharField(
        label=_("Skills"), required=False, max_length=400, help_text=_("Separated by commas")
    )
    health_notes = forms.CharField(
        label=_("Health notes"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Sensitive: stored encrypted, every reading is logged."),
    )
    is_volunteer = forms.BooleanField(label=_("Volunteer"), required=False)
    is_elder = forms.BooleanField(label=_("Elder (receives services)"), required=False)

    def clean_mobile(self) -> str:
        return _checked(self.cleaned_data["mobile"], normalize_mobile)

    def clean_emergency_contact_mobile(self) -> str:
        return _checked(self.cleaned_data["emergency_contact_mobile"], normalize_mobile)

    def clean_id_number(self) -> str:
        value = self.cleaned_data["id_number"]
        _checked(value, parse_id_number)
        return str(value).strip().upper()

    def __init__(self, *args: Any, communities: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["home_region"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = communities
        if editing:
            self.fields["health_notes"].help_text = _("Leave empty to keep the notes on file.")


class PriorityForm(forms.Form):
    group = forms.ChoiceField(label=_("Priority group"), choices=PriorityGroup.choices)
    note = forms.CharField(label=_("How it was verified"), required=False, max_length=200)


class BondProposeForm(forms.Form):
    relation = forms.ChoiceField(
        label=_("Relation"), choices=Relation.choices, help_text=_("What the relative is to this member.")
    )
    relative_name = forms.CharField(label=_("Relative's name"), max_length=50)
    relative_mobile = forms.CharField(
        label=_("Relative's mobile number"),
        max_length=20,
        help_text=_("The relative must be registered with this name and number."),
    )


class BondDecideForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", _("Verify")), ("reject", _("Reject"))])
    reason = forms.CharField(label=_("Reason"), required=False, max_length=200)


class PeopleFilterForm(forms.Form):
    community = forms.CharField(required=False, max_length=12)
    role = forms.ChoiceField(required=False, choices=[("", ""), ("volunteer", ""), ("elder", "")])
    q = forms.CharField(required=False, max_length=50)


EARLIEST = dt.date(2000, 1, 1)
LATEST = dt.date(2999, 12, 31)


class AuditFilterForm(forms.Form):
    event_type = forms.CharField(label=_("Event"), required=False, max_length=64)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for name in ("since", "until"):
            day = data.get(name)
            if day is not None and not EARLIEST <= day <= LATEST:
                self.add_error(
                    name, _("Choose a date between %(a)s and %(b)s.") % {"a": EARLIEST, "b": LATEST}
                )
        return data

    since = forms.DateField(
        label=pgettext_lazy("start of a date range", "From"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    until = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )


class RegionChoiceField(forms.ModelChoiceField):  # type: ignore[type-arg]
    """Regions indented by depth, with their code, so a long tree stays readable."""

    def label_from_instance(self, obj: Region) -> str:
        return f"{'　' * obj.depth}{obj.display_name} ({obj.code})"


class StaffCreateForm(forms.Form):
    username = forms.CharField(label=_("Username"), max_length=150)
    name = forms.CharField(label=_("Name"), max_length=150)
    mobile = forms.CharField(label=_("Mobile number"), required=False, max_length=20)
    password = forms.CharField(label=_("Initial password"), widget=forms.PasswordInput, max_length=256)
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)
    region = RegionChoiceField(label=_("Region"), queryset=Region.objects.none())

    def __init__(self, *args: Any, regions: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["region"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = regions


class TokenForm(forms.Form):
    """A token for an app or (staff, for a member) a device such as a station hub."""

    name = forms.CharField(
        label=_("What it is for"), max_length=60, help_text=_("For example, the name of the phone or tablet.")
    )
    write = forms.BooleanField(label=_("It may also act (ask for help, accept, give time)"), required=False)
    days = forms.IntegerField(label=_("Valid for (days)"), min_value=1, max_value=366, initial=90)
    device = forms.BooleanField(label=_("A device or gateway, not a person's app"), required=False)

    @property
    def scopes(self) -> list[str]:
        return ["read", "write"] if self.cleaned_data.get("write") else ["read"]

    @property
    def kind(self) -> str:
        return "device" if self.cleaned_data.get("device") else "personal"
