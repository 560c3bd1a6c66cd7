"""The staff console's dashboard: the figures of a region of the staff member's scope — people, services,
minutes deposited and withdrawn, what members hold and the guarantee fund's coverage. Read only, so that the
civil-affairs bureau's auditors use it as it is."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from timebank.common.errors import NotFound
from timebank.insights import selectors as insights
from timebank.people.access import Perm
from timebank.regions.selectors import region_get
from timebank.web.views.console import staff_with


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    user = staff_with(request, Perm.CARE_VIEW)
    tops = insights.dashboard_tops(user)
    code = request.GET.get("region", "").strip()
    if code:
        if not code.isdigit() or len(code) > 12:
            raise NotFound(code="region_not_found")
        region = region_get(code)
    elif tops:
        region = tops[0]
    else:  # a platform without regions yet
        return render(request, "web/console/insights.html", {"figures": None, "tops": tops})
    figures = insights.region_dashboard(user, region)  # refuses a region outside the scope
    return render(
        request,
        "web/console/insights.html",
        {
            "figures": figures,
            "tops": tops,
            "trail": insights.region_trail(user, region),
            "children": insights.region_children(region),
        },
    )
