"""Production settings. Every secret comes from the environment; the process refuses to start without them.

Required: TIMEBANK_SECRET_KEY, TIMEBANK_ALLOWED_HOSTS, TIMEBANK_DATABASE_URL, TIMEBANK_FIELD_KEYS,
TIMEBANK_FIELD_HASH_KEY, TIMEBANK_LEDGER_SIGNING_KEY. TLS is assumed to end at the reverse proxy, which
sets X-Forwarded-Proto.
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

from timebank.config.env import env_bool, env_int
from timebank.config.settings.base import *  # noqa: F403
from timebank.config.settings.base import (
    FIELD_ENCRYPTION_KEYS,
    FIELD_HASH_KEY,
    LEDGER_SIGNING_KEY,
    SECRET_KEY,
)

DEBUG = env_bool("TIMEBANK_DEBUG", False)

for _name in ("TIMEBANK_ALLOWED_HOSTS", "TIMEBANK_DATABASE_URL"):
    if not os.environ.get(_name):
        raise ImproperlyConfigured(f"{_name} must be set in production")
if len(FIELD_HASH_KEY) < 32:
    raise ImproperlyConfigured(
        "TIMEBANK_FIELD_HASH_KEY must be at least 32 characters (ID numbers are guessable)"
    )

for _name, _value in {
    "TIMEBANK_SECRET_KEY": SECRET_KEY,
    "TIMEBANK_FIELD_KEYS": ",".join(FIELD_ENCRYPTION_KEYS),
    "TIMEBANK_FIELD_HASH_KEY": FIELD_HASH_KEY,
    "TIMEBANK_LEDGER_SIGNING_KEY": LEDGER_SIGNING_KEY,
}.items():
    if not _value:
        raise ImproperlyConfigured(f"{_name} must be set in production")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("TIMEBANK_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_int("TIMEBANK_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
