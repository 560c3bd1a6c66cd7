"""Embedded/demo settings: SQLite under var/, debug on unless told otherwise, generated local keys."""

from __future__ import annotations

from timebank.config.env import env_bool
from timebank.config.keys import local_secret
from timebank.config.settings.base import *  # noqa: F403
from timebank.config.settings.base import (
    FIELD_ENCRYPTION_KEYS,
    FIELD_HASH_KEY,
    LEDGER_SIGNING_KEY,
    SECRET_KEY,
    VAR_DIR,
)

DEBUG = env_bool("TIMEBANK_DEBUG", True)
SECRET_KEY = SECRET_KEY or local_secret(VAR_DIR, "secret_key")
FIELD_ENCRYPTION_KEYS = FIELD_ENCRYPTION_KEYS or [local_secret(VAR_DIR, "field_key", kind="fernet")]
FIELD_HASH_KEY = FIELD_HASH_KEY or local_secret(VAR_DIR, "field_hash_key")
LEDGER_SIGNING_KEY = LEDGER_SIGNING_KEY or local_secret(VAR_DIR, "ledger_signing_key", kind="hex32")
