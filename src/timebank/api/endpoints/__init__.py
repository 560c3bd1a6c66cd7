"""The endpoints of ``/api/v1``, one module per domain; importing this package registers them all."""

from timebank.api.endpoints import care, exchange, me, regions  # noqa: F401
