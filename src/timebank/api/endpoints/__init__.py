"""The endpoints of ``/api/v1``, one module per domain; importing this package registers them all."""

from timebank.api.endpoints import (  # noqa: F401
    accounts,
    care,
    exchange,
    insights,
    me,
    notifications,
    people,
    regions,
    sensing,
    tokens,
)
