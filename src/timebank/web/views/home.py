from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from timebank.people import selectors as people
from timebank.people.access import access_is_staff
from timebank.people.models import User


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    if access_is_staff(user):
        return redirect("web:people")
    if user.member is None:
        return render(request, "web/no_role.html", {"grants": people.user_grants(user)})
    member = user.member
    return render(
        request,
        "web/me.html",
        {
            "member": member,
            "priority": people.member_priority_statuses(member),
            "bonds": people.member_bonds(member),
        },
    )
