from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from timebank.common.errors import AuthenticationFailed
from timebank.people.models import User
from timebank.people.services import sign_in


class IdentifierBackend(ModelBackend):
    """Django's authenticate() (the admin, the test client) goes through our sign-in checks and lockout."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        if username is None or password is None:
            return None
        try:
            return sign_in(identifier=username, password=password)
        except AuthenticationFailed:
            return None
