"""Who is acting and from where, for the request or command in progress.

Set by the request middleware (web and API) and by the CLI; read by the audit log so that services
need not thread the client address through every call.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestOrigin:
    ip: str | None
    channel: str  # "web", "api", "cli", "system"


_SYSTEM = RequestOrigin(None, "system")
_origin: ContextVar[RequestOrigin] = ContextVar("timebank_origin", default=_SYSTEM)


def current_origin() -> RequestOrigin:
    return _origin.get()


@contextmanager
def origin(ip: str | None, channel: str) -> Iterator[RequestOrigin]:
    value = RequestOrigin(ip, channel)
    token = _origin.set(value)
    try:
        yield value
    finally:
        _origin.reset(token)
