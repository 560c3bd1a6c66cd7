from __future__ import annotations

from django.contrib.auth import login, logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from timebank.common.errors import AuthenticationFailed
from timebank.people.services import sign_in
from timebank.web.forms import SignInForm, add_service_errors


@require_http_methods(["GET", "POST"])
def sign_in_view(request: HttpRequest) -> HttpResponse:
    form = SignInForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = sign_in(identifier=form.cleaned_data["identifier"], password=form.cleaned_data["password"])
        except AuthenticationFailed as exc:
            add_service_errors(form, exc)
            return render(request, "web/sign_in.html", {"form": form}, status=exc.status)
        login(request, user, backend="timebank.people.auth.IdentifierBackend")
        next_url = request.GET.get("next", "")
        if next_url and url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
            return redirect(next_url)
        return redirect("web:home")
    return render(request, "web/sign_in.html", {"form": form}, status=200 if request.method == "GET" else 422)


@require_POST
def sign_out_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("web:sign-in")
