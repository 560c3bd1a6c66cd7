from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from timebank.common.context import origin


def client_ip(request: HttpRequest) -> str | None:
    """The client address as the server saw it; a trusted proxy's X-Forwarded-For is not believed here."""
    return request.META.get("REMOTE_ADDR") or None


class RequestContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        channel = "api" if request.path.startswith("/api/") else "web"
        with origin(client_ip(request), channel):
            return self.get_response(request)
