from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from timebank.care import selectors as care_selectors
from timebank.care.selectors import star_level
from timebank.exchange.models import RedemptionStatus
from timebank.exchange.selectors import merchants_of, redemptions_of
from timebank.notifications.selectors import notifications_unread_count
from timebank.people import selectors as people
from timebank.people.access import access_is_staff
from timebank.people.models import BondStatus
from timebank.sensing.presence_selectors import candidates_of_elder
from timebank.web.views.console import signed_in


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = signed_in(request)
    if access_is_staff(user):
        return redirect("web:people")
    if user.member is None:
        if merchants_of(user).exists():
            return redirect("web:shop")
        return render(request, "web/no_role.html", {"grants": people.user_grants(user)})
    member = user.member
    bonds = people.member_bonds(member)
    family_of_elder = any(v.bond.status == BondStatus.VERIFIED and v.other.is_elder for v in bonds)
    return render(
        request,
        "web/me.html",
        {
            "member": member,
            "priority": people.member_priority_statuses(member),
            "bonds": bonds,
            "star": star_level(member) if member.is_volunteer else None,
            "unread": notifications_unread_count(user),
            "can_ask": member.is_elder or family_of_elder,
            "coming": care_selectors.orders_coming(member)[:5] if member.is_elder else [],
            "to_confirm": list(care_selectors.orders_to_confirm(member)[:3]) if member.is_elder else [],
            "noticed": candidates_of_elder(member).count() if member.is_elder else 0,
            "station_phone": people.station_phone(member.home_region),
            "balance": member.account.available if member.account_id and member.account else None,
            "family_elders": [
                v.other for v in bonds if v.bond.status == BondStatus.VERIFIED and v.other.is_elder
            ],
            "open_orders": redemptions_of(member)
            .filter(status__in=[RedemptionStatus.RESERVED, RedemptionStatus.AWAITING_APPROVAL])
            .count(),
        },
    )
