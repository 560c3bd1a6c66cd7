"""Settings for the test suite: fixed keys, fast hashing, the database from TIMEBANK_DATABASE_URL."""

from __future__ import annotations

from timebank.config.settings.base import *  # noqa: F403

DEBUG = False
SECRET_KEY = "test-only-secret-key-not-for-production-0123456789abcdefghijklmnop"  # noqa: S105
FIELD_ENCRYPTION_KEYS = ["l1tkc2Bqj5P7e1y4lW0KXoJ3o3m0OQ2a1b5m6Vv9pY0="]
FIELD_HASH_KEY = "test-hash-key-0123456789"
LEDGER_SIGNING_KEY = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"  # RFC 8032 test 1
LEDGER_SEAL_SETTLE_SECONDS = 0
LEDGER_WITNESS_FILE = ""  # tests that need a witness point it at their own file
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ALLOWED_HOSTS = ["*"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
SMS_BACKEND = "timebank.notifications.services.MemorySms"

if DATABASES["default"]["ENGINE"].endswith("postgresql"):  # noqa: F405
    # Let transactional tests empty append-only tables between tests (see audit/migrations/0003).
    DATABASES["default"]["OPTIONS"]["options"] = "-c timebank.allow_truncate=on"  # noqa: F405
