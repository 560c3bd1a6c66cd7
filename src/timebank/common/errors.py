"""One error hierarchy for the whole platform.

Every error a user can cause is an ``ApplicationError`` with a stable ``code`` (for API clients and
tests), a translated ``message`` (for people) and, where a form field is to blame, ``fields``
mapping each field name to its reasons. Interfaces turn these into a page message or a JSON error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.utils.translation import gettext_lazy as _


class ApplicationError(Exception):
    code = "error"
    status = 400
    default_message: Any = _("The request could not be completed.")

    def __init__(
        self,
        message: Any = None,
        *,
        code: str | None = None,
        fields: Mapping[str, Sequence[Any]] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.message = message if message is not None else self.default_message
        if code is not None:
            self.code = code
        self.fields: dict[str, list[str]] = {k: [str(m) for m in v] for k, v in (fields or {}).items()}
        self.extra = dict(extra or {})
        super().__init__(str(self.message))

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": str(self.message), "fields": self.fields}


class ValidationFailed(ApplicationError):
    """Input broke a rule; ``fields`` names each field and why."""

    code = "validation_failed"
    status = 422
    default_message = _("Some fields are not valid.")

    @classmethod
    def field(cls, name: str, reason: Any, *, code: str | None = None) -> ValidationFailed:
        return cls(reason, fields={name: [reason]}, code=code)


class NotFound(ApplicationError):
    code = "not_found"
    status = 404
    default_message = _("Not found.")


class PermissionDenied(ApplicationError):
    code = "permission_denied"
    status = 403
    default_message = _("You do not have permission to do this.")


class Conflict(ApplicationError):
    code = "conflict"
    status = 409
    default_message = _("This conflicts with the current state.")


class AuthenticationFailed(ApplicationError):
    code = "authentication_failed"
    status = 401
    default_message = _("Sign-in failed: check the account and password.")


class AccountLocked(AuthenticationFailed):
    code = "account_locked"
    status = 429
    default_message = _("Too many failed sign-in attempts. Try again later.")


class RateLimited(ApplicationError):
    """Too many requests of one kind from one caller; ``extra["retry_after"]``: seconds to wait."""

    code = "rate_limited"
    status = 429
    default_message = _("Too many requests. Wait a moment and try again.")
