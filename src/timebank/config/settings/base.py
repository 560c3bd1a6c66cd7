"""Settings shared by every environment. Values come from TIMEBANK_* environment variables."""

from __future__ import annotations

from pathlib import Path

from django.utils.translation import gettext_lazy as _

from timebank.config.env import env_bool, env_int, env_list, env_str, parse_database_url, var_dir

PACKAGE_DIR = Path(__file__).resolve().parents[2]
VAR_DIR = var_dir()

DEBUG = env_bool("TIMEBANK_DEBUG", False)
SECRET_KEY = env_str("TIMEBANK_SECRET_KEY", "")
ALLOWED_HOSTS = env_list("TIMEBANK_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("TIMEBANK_CSRF_TRUSTED_ORIGINS", [])
# Reverse proxies whose X-Forwarded-For is believed when the audit log records where a request came from.
TRUSTED_PROXIES = env_list("TIMEBANK_TRUSTED_PROXIES", [])

# Keys that encrypt ID numbers at rest (comma-separated, newest first) and key the lookup hash.
FIELD_ENCRYPTION_KEYS = env_list("TIMEBANK_FIELD_KEYS", [])
FIELD_HASH_KEY = env_str("TIMEBANK_FIELD_HASH_KEY", "")
# The Ed25519 seed (64 hex digits) that signs sealed blocks and members' statements.
LEDGER_SIGNING_KEY = env_str("TIMEBANK_LEDGER_SIGNING_KEY", "")
# Public keys (hex) of earlier signing keys whose blocks verify still accepts after a key change.
LEDGER_TRUSTED_PUBLIC_KEYS = env_list("TIMEBANK_LEDGER_TRUSTED_PUBLIC_KEYS", [])
# A transaction is sealed once it is this old, so that slower concurrent commits land in order.
LEDGER_SEAL_SETTLE_SECONDS = env_int("TIMEBANK_LEDGER_SEAL_SETTLE_SECONDS", 2)
# `timebank serve` seals in a background thread this often (the embedded mode); 0 turns it off.
LEDGER_SEAL_EVERY_SECONDS = env_int("TIMEBANK_LEDGER_SEAL_EVERY_SECONDS", 10)
# The sealer appends every block's hash here too — keep it (or ship it) off the database server, so that
# cutting blocks off the end of the chain cannot go unnoticed. Empty: keep no witness.
LEDGER_WITNESS_FILE = env_str("TIMEBANK_LEDGER_WITNESS_FILE", str(VAR_DIR / "ledger" / "witness.log"))

DATABASES = {
    "default": parse_database_url(
        env_str("TIMEBANK_DATABASE_URL", f"sqlite:///{VAR_DIR / 'timebank.sqlite3'}")
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",  # its static Swagger UI for /api/v1/docs
    "timebank.common",
    "timebank.regions",
    "timebank.people",
    "timebank.audit",
    "timebank.ledger",
    "timebank.notifications",
    "timebank.care",
    "timebank.exchange",
    "timebank.sensing",
    "timebank.api",
    "timebank.insights",
    "timebank.web",
    "timebank.cli",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "timebank.common.middleware.LanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "timebank.common.middleware.RequestContextMiddleware",
    "timebank.web.middleware.ApplicationErrorMiddleware",
    "timebank.web.middleware.PrivatePagesMiddleware",
]

ROOT_URLCONF = "timebank.config.urls"
WSGI_APPLICATION = "timebank.config.wsgi.application"
ASGI_APPLICATION = "timebank.config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "timebank.web.context.site",
            ],
        },
    }
]

AUTH_USER_MODEL = "people.User"
AUTHENTICATION_BACKENDS = ["timebank.people.auth.IdentifierBackend"]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "web:sign-in"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "web:sign-in"

# Sign-in lockout: this many failures, each within SIGN_IN_LOCK_MINUTES of the last, lock the account
# for SIGN_IN_LOCK_MINUTES.
SIGN_IN_MAX_FAILURES = env_int("TIMEBANK_SIGN_IN_MAX_FAILURES", 5)
SIGN_IN_LOCK_MINUTES = env_int("TIMEBANK_SIGN_IN_LOCK_MINUTES", 15)

# API rate limits: (requests, seconds) per caller — sign-in per client address, token creation per user.
API_RATE_LIMITS = {
    "sign_in": (env_int("TIMEBANK_API_SIGN_IN_PER_MINUTE", 10), 60),
    "token_create": (env_int("TIMEBANK_API_TOKENS_PER_HOUR", 20), 3600),
}

# Care services: a wrong PIN or card code this many times locks confirmation for the elder for a while; a
# completed service nobody confirmed goes to the station after CARE_ESCALATE_HOURS.
CARE_CONFIRM_MAX_FAILURES = env_int("TIMEBANK_CARE_CONFIRM_MAX_FAILURES", 5)
CARE_CONFIRM_LOCK_MINUTES = env_int("TIMEBANK_CARE_CONFIRM_LOCK_MINUTES", 15)
CARE_ESCALATE_HOURS = env_int("TIMEBANK_CARE_ESCALATE_HOURS", 48)
# How often ``timebank serve`` expires stale requests and escalates unconfirmed services (0: never).
CARE_TICK_EVERY_SECONDS = env_int("TIMEBANK_CARE_TICK_EVERY_SECONDS", 300)

# Goods ordered for minutes wait this many days to be picked up.
EXCHANGE_PICKUP_DAYS = env_int("TIMEBANK_EXCHANGE_PICKUP_DAYS", 7)

# Notifications: email through Django's backend; SMS through a class with ``send(mobile, text)``.
EMAIL_BACKEND = env_str("TIMEBANK_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("TIMEBANK_FROM_EMAIL", "timebank@localhost")
SMS_BACKEND = env_str("TIMEBANK_SMS_BACKEND", "timebank.notifications.services.LogSms")

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [PACKAGE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = "Asia/Shanghai"
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = 60 * 60 * 8
# Eight hours from the last page, not from signing in: nobody is signed out in the middle of a slow form
# (no timed actions without an extension, PRODUCT.md §5).
SESSION_SAVE_EVERY_REQUEST = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("TIMEBANK_LOG_LEVEL", "WARNING")},
}
