from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers

from timebank.common.errors import ApplicationError
from timebank.web.views.errors import render_error


class ApplicationErrorMiddleware:
    """An ApplicationError that escapes a view becomes a page with its message and status, never a 500."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, ApplicationError):
            return render_error(request, exception.status, str(exception.message))
        return None


PRIVATE_PREFIXES = ("/console/", "/me/", "/admin/", "/care/", "/notifications/", "/exchange/", "/shop/")


class PrivatePagesMiddleware:
    """Pages with personal data are never kept by a browser or proxy cache (shared station computers)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith(PRIVATE_PREFIXES):
            add_never_cache_headers(response)
        return response
