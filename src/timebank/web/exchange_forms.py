"""Forms of the exchange pages: giving and donating time, ordering goods, handing them over at the shop, and
the staff console's pool, purchases, special rights, merchants, guarantee funds and moves.

People type time as hours and minutes; each form adds them up into ``total`` (``price`` for a product), and a
service's reason about the amount (``minutes``, ``price_minutes``) lands on the minutes box, which is drawn
with the hours in one group. Money is typed in yuan and handed to the services in fen. A form that moves
minutes carries a request key made when the form is shown, so that sending it twice posts once.
"""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from timebank.common.errors import NotFound
from timebank.exchange.models import PaymentMethod, ProductKind
from timebank.people.models import Member, User
from timebank.regions.models import Region
from timebank.regions.selectors import region_get
from timebank.web.care_forms import (
    MemberNumberField,
    PersonChoiceField,
    _set_choices,
    _set_queryset,
    _StaffForm,
)
from timebank.web.forms import RegionChoiceField

MAX_HOURS = 10**6
MAX_STOCK = 1_000_000

# service field → form field
PURCHASE_FIELDS = {"amount_fen": "amount_yuan"}
FUND_FIELDS = {"value_fen": "value_yuan", "fen_per_hour": "hour_cost_yuan"}


def request_key() -> str:
    return secrets.token_urlsafe(16)


def yuan_to_fen(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


class _Keyed(forms.Form):
    """A hidden request key, new each time the form is shown and kept while it is corrected."""

    idempotency_key = forms.CharField(max_length=80, widget=forms.HiddenInput, initial=request_key)


class _Amount(forms.Form):
    """An amount of time as hours and minutes, added up into ``total``."""

    hours = forms.IntegerField(
        label=pgettext_lazy("time unit", "Hours"), min_value=0, max_value=MAX_HOURS, required=False, initial=0
    )
    minutes = forms.IntegerField(
        label=pgettext_lazy("time unit", "Minutes"), min_value=0, max_value=59, required=False, initial=0
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if "hours" in self.errors or "minutes" in self.errors:
            return data
        total = (data.get("hours") or 0) * 60 + (data.get("minutes") or 0)
        if total <= 0:
            self.add_error("minutes", _("Give at least one minute."))
        data["total"] = total
        return data


class GiveForm(_Keyed, _Amount):
    """A member transfers or gives time to a relative or friend with a verified bond."""

    field_order = ["receiver", "kind", "hours", "minutes", "note", "idempotency_key"]

    receiver = forms.TypedChoiceField(label=_("To whom"), coerce=int, widget=forms.RadioSelect)
    kind = forms.ChoiceField(
        label=_("As"),
        widget=forms.RadioSelect,
        choices=[
            ("transfer", _("A transfer (my savings move to their account)")),
            ("gift", _("A gift")),
        ],
        initial="transfer",
    )
    note = forms.CharField(label=_("Note (optional)"), required=False, max_length=200)

    def __init__(self, *args: Any, receivers: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _set_choices(self, "receiver", receivers)


class DonateForm(_Keyed, _Amount):
    """A member donates time to the mutual-aid pool of their jurisdiction."""


class OrderForm(forms.Form):
    quantity = forms.IntegerField(label=_("How many"), min_value=1, max_value=99, initial=1)


class CancelForm(forms.Form):
    reason = forms.CharField(label=_("Reason (optional)"), required=False, max_length=300)


class HandOverForm(forms.Form):
    """The pick-up code a shop scans from the member's phone (a scanner types it into the box)."""

    token = forms.CharField(
        label=_("Pick-up code"),
        max_length=500,
        help_text=_("Scan the QR code on the member's phone, or type the code printed under it."),
        widget=forms.TextInput(
            # a scanner types into whatever has the focus: the box has it when the page opens
            attrs={"autocomplete": "off", "autocapitalize": "off", "spellcheck": "false", "autofocus": True}
        ),
    )


class ProductForm(forms.Form):
    """A product of a merchant: shop staff keep their goods; operators also add special rights."""

    field_order = ["kind", "name", "name_en", "price_hours", "price_minutes", "stock", "is_active"]

    kind = forms.ChoiceField(label=_("Kind"), choices=ProductKind.choices, initial=ProductKind.GOODS)
    name = forms.CharField(label=pgettext_lazy("product", "Name"), max_length=100)
    name_en = forms.CharField(label=_("English name (optional)"), required=False, max_length=150)
    price_hours = forms.IntegerField(
        label=pgettext_lazy("time unit", "Hours"), min_value=0, max_value=MAX_HOURS, required=False, initial=0
    )
    price_minutes = forms.IntegerField(
        label=pgettext_lazy("time unit", "Minutes"), min_value=0, max_value=59, required=False, initial=0
    )
    stock = forms.IntegerField(label=_("In stock"), min_value=0, max_value=MAX_STOCK, initial=0)
    is_active = forms.BooleanField(label=_("Offered"), required=False, initial=True)

    def __init__(self, *args: Any, with_kind: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not with_kind:
            del self.fields["kind"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if "price_hours" in self.errors or "price_minutes" in self.errors:
            return data
        price = (data.get("price_hours") or 0) * 60 + (data.get("price_minutes") or 0)
        if price <= 0:
            self.add_error("price_minutes", _("A price of at least one minute."))
        data["price"] = price
        data.setdefault("kind", ProductKind.GOODS)
        return data


def product_initial(product: Any) -> dict[str, Any]:
    hours, minutes = divmod(product.price_minutes, 60)
    return {
        "kind": product.kind,
        "name": product.name,
        "name_en": product.name_en,
        "price_hours": hours,
        "price_minutes": minutes,
        "stock": product.stock,
        "is_active": product.is_active,
    }


class RestockForm(forms.Form):
    added = forms.IntegerField(label=_("Add to stock"), min_value=1, max_value=MAX_STOCK)


# --- the staff console --------------------------------------------------------------------------------------


class AllocateForm(_StaffForm, _Keyed, _Amount):
    """Station staff give pool minutes to a verified priority elder, saying why."""

    field_order = ["elder", "hours", "minutes", "reason", "idempotency_key"]

    elder = PersonChoiceField(label=_("Elder"), queryset=Member.objects.none())
    reason = forms.CharField(
        label=_("Reason"), required=False, max_length=300, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args: Any, elders: QuerySet[Member], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _set_queryset(self, "elder", elders)


class PurchaseForm(_StaffForm):
    """A cashier records time bought with money at the counter."""

    member = MemberNumberField(label=_("Member number"))
    amount_yuan = forms.DecimalField(
        label=_("Amount paid (yuan)"),
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0.01"),
        widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
    )
    method = forms.ChoiceField(label=_("Paid by"), choices=PaymentMethod.choices)
    receipt_number = forms.CharField(
        label=_("Receipt number"),
        max_length=40,
        help_text=_("Letters, digits and dashes, as on the receipt."),
    )


class DecideForm(forms.Form):
    decision = forms.ChoiceField(
        label=_("Decision"),
        choices=[("grant", _("Grant")), ("refuse", _("Refuse"))],
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(
        label=_("Reason"),
        required=False,
        max_length=300,
        help_text=_("Needed to refuse; the member reads it."),
    )


class MerchantForm(forms.Form):
    name = forms.CharField(label=pgettext_lazy("shop", "Name"), max_length=100)
    region = RegionChoiceField(label=_("Region"), queryset=Region.objects.none())
    address = forms.CharField(label=pgettext_lazy("shop", "Address"), required=False, max_length=200)
    opening_hours = forms.CharField(
        label=_("Opening hours"), required=False, max_length=200, help_text=_("e.g. 每天 8:00–20:00")
    )

    def __init__(self, *args: Any, regions: QuerySet[Region], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _set_queryset(self, "region", regions)


class ClerkForm(forms.Form):
    """A shop assistant's sign-in, by its username (created on the staff page)."""

    username = forms.CharField(label=_("Username of the shop assistant"), max_length=150)

    def clean_username(self) -> User:
        name = self.cleaned_data["username"].strip()
        # no selector finds a sign-in by name; this reads only whether an active one exists
        user = User.objects.filter(username=name, is_active=True).first()
        if user is None:
            raise forms.ValidationError(_("No sign-in with this username."))
        return user


class _RegionCode(forms.Form):
    region = forms.CharField(
        label=_("Region code"), max_length=12, help_text=_("e.g. 310101 for a district, 310000 for the city")
    )

    def clean_region(self) -> Region:
        code = self.cleaned_data["region"].strip()
        try:
            return region_get(code)
        except NotFound as exc:
            raise forms.ValidationError(str(exc.message)) from exc


class FundForm(_RegionCode):
    value_yuan = forms.DecimalField(
        label=_("Value of the guarantee fund (yuan)"), max_digits=14, decimal_places=2, min_value=Decimal(0)
    )
    hour_cost_yuan = forms.DecimalField(
        label=_("Cost of an hour of care (yuan)"),
        max_digits=10,
        decimal_places=2,
        min_value=Decimal("0.01"),
    )
    note = forms.CharField(label=_("Note (optional)"), required=False, max_length=200)


class CoverageForm(_RegionCode):
    pass


class MoveForm(forms.Form):
    home_region = RegionChoiceField(label=_("New home community"), queryset=Region.objects.none())

    def __init__(self, *args: Any, communities: QuerySet[Region], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _set_queryset(self, "home_region", communities)
