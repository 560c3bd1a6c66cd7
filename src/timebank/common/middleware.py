from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import translation
from django.utils.cache import patch_vary_headers

from timebank.common.context import origin


def client_ip(request: HttpRequest) -> str | None:
    """The client's address. Behind the reverse proxies named in ``TRUSTED_PROXIES`` it is the right-most
    X-Forwarded-For hop that is not one of them; nobody else's X-Forwarded-For is believed."""
    remote = str(request.META.get("REMOTE_ADDR") or "") or None
    trusted = set(settings.TRUSTED_PROXIES)
    if remote is None or remote not in trusted:
        return remote
    forwarded = str(request.META.get("HTTP_X_FORWARDED_FOR", ""))
    hops = [h.strip() for h in forwarded.split(",") if h.strip()]
    for hop in reversed(hops):
        if hop not in trusted:
            return hop[:45]
    return remote


class RequestContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        channel = "api" if request.path.startswith("/api/") else "web"
        with origin(client_ip(request), channel):
            return self.get_response(request)


class LanguageMiddleware:
    """Simplified Chinese unless the person chose otherwise (the language switch sets a cookie).

    Unlike Django's LocaleMiddleware this ignores the browser's Accept-Language: a shared station computer
    or a relative's phone set to English must not turn an elder's pages English by surprise. Under ``/api/``
    (programs, not screens) Accept-Language is honoured when no cookie says otherwise.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.supported = {code for code, _name in settings.LANGUAGES}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME, "")
        api = request.path.startswith("/api/")
        if chosen not in self.supported and api:
            # a program asks for its language; there is no shared screen to surprise
            chosen = translation.get_language_from_request(request)
        language = chosen if chosen in self.supported else settings.LANGUAGE_CODE
        translation.activate(language)
        request.LANGUAGE_CODE = language
        response = self.get_response(request)
        response.headers.setdefault("Content-Language", language)
        patch_vary_headers(response, ["Cookie", "Accept-Language"] if api else ["Cookie"])
        return response
