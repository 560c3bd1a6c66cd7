from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

TITLES: dict[int, object] = {
    400: gettext_lazy("The request was not understood"),
    401: gettext_lazy("Please sign in"),
    403: gettext_lazy("Not allowed"),
    404: gettext_lazy("Not found"),
    409: gettext_lazy("This has changed meanwhile"),
    422: gettext_lazy("Please check what you entered"),
    429: gettext_lazy("Please wait a moment"),
    500: gettext_lazy("Something went wrong on our side"),
}


CODES = {400: "bad_request", 403: "permission_denied", 404: "not_found", 500: "server_error"}


def render_error(request: HttpRequest, status: int, message: str = "") -> HttpResponse:
    """The error page; under ``/api/`` the API's one error format instead."""
    title = TITLES.get(status, TITLES[400])
    if request.path.startswith("/api/"):
        body = {"code": CODES.get(status, "error"), "message": str(message or title), "fields": {}}
        return JsonResponse(body, status=status)
    return render(
        request, "web/error.html", {"status": status, "title": title, "message": message}, status=status
    )


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render_error(request, 400)


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render_error(request, 403)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render_error(request, 404)


def server_error(request: HttpRequest) -> HttpResponse:
    return render_error(request, 500, _("The error has been logged. Please try again later."))
