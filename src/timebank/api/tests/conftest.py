"""API test helpers: the care and exchange fixtures, a bearer token for any user, and a JSON sender."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client

from timebank.api import services as api_services
from timebank.care.tests.conftest import _english  # noqa: F401 (messages in English here)
from timebank.exchange.tests.conftest import *  # noqa: F403 (care fixtures, a 晋阳 shop, its people)
from timebank.people.models import User


def bearer(actor: User, user: User, scopes: tuple[str, ...] = ("read", "write")) -> dict[str, Any]:
    """Headers for ``user`` with a fresh token issued by ``actor`` (the user themselves or their staff)."""
    issued = api_services.token_create(actor=actor, user=user, name="手机应用", scopes=list(scopes))
    return {"HTTP_AUTHORIZATION": f"Bearer {issued.secret}"}


def send(client: Client, path: str, body: Any, headers: dict[str, Any], key: str | None = None) -> Any:
    """POST ``body`` as JSON with ``headers`` and, when given, an Idempotency-Key."""
    extra = dict(headers)
    if key is not None:
        extra["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post(path, data=json.dumps(body), content_type="application/json", **extra)
