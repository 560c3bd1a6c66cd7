"""Apps and devices: a member's API tokens (their own page, or a staff member's page for the member). A new
token's secret is shown once, on the answer to the form; afterwards only its name and dates."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from timebank.api import selectors
from timebank.api import services as api_services
from timebank.common.errors import ApplicationError
from timebank.people import selectors as people
from timebank.web.forms import TokenForm, add_service_errors
from timebank.web.views.console import signed_in


@login_required
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest, member_id: int | None = None) -> HttpResponse:
    actor = signed_in(request)
    holder = selectors.token_holder(actor, member_id)
    member = people.member_get(actor, member_id) if member_id is not None else None
    form = TokenForm(request.POST if request.method == "POST" else None)
    issued = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                api_services.rate_limit("token_create", str(actor.pk))
                issued = api_services.token_create(
                    actor=actor,
                    user=holder,
                    name=form.cleaned_data["name"],
                    scopes=form.scopes,
                    days=form.cleaned_data["days"],
                    kind=form.kind if member_id is not None else "personal",
                )
            except ApplicationError as exc:
                add_service_errors(form, exc)
                status = exc.status
            else:
                form = TokenForm()
        else:
            status = 422
    return render(
        request,
        "web/tokens.html",
        {
            "form": form,
            "issued": issued,
            "member": member,
            "tokens": selectors.tokens_of(holder).order_by("-pk")[:100],
        },
        status=status,
    )


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    actor = signed_in(request)
    token = selectors.token_get(actor, token_id)
    api_services.token_revoke(actor=actor, token=token)
    if token.user_id == actor.pk or token.user.member is None:
        return redirect("web:tokens")
    return redirect("web:person-tokens", member_id=token.user.member.pk)
