from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.staticfiles.management.commands.runserver import Command as RunServer
from django.core.management.base import CommandParser
from django.core.servers.basehttp import WSGIServer
from django.db import connection

from timebank.sensing.conf import sensing_setting

log = logging.getLogger(__name__)


def _forever(
    every: float, work: Callable[[], object], what: str, stop: threading.Event | None = None
) -> None:
    """Run ``work`` every ``every`` seconds (after the first wait) until ``stop`` is set: a failure is logged
    and the next round tries again, on a fresh database connection."""
    stop = stop or threading.Event()
    while not stop.wait(every):
        try:
            work()
        except Exception:  # the server must keep serving; the next round tries again
            log.exception("%s failed", what)
        finally:
            connection.close()


def _background(every: float, work: Callable[[], object], what: str) -> None:
    """``_forever`` in a daemon thread: it ends with the server."""
    threading.Thread(target=_forever, args=(every, work, what), name=what, daemon=True).start()


def _seal() -> None:
    from timebank.ledger.sealing import ledger_seal_all

    ledger_seal_all()


def _care_tick() -> None:
    from timebank.care.services import care_tick
    from timebank.exchange.services import exchange_tick

    care_tick()
    exchange_tick()


def _sensing_prune() -> None:
    from timebank.sensing.services import events_prune

    events_prune()


def _sensing_derive() -> None:
    """Co-presence sessions from the sightings stored since the last round, matched to services; the services
    the sensors agree with approved where the policy says so."""
    from timebank.sensing.presence import sessions_derive

    report = sessions_derive()
    if report.sightings or report.approved:
        log.info(
            "sensing derive: %s sightings, %s sessions opened, %s closed, %s matched, %s unplanned; "
            "approved %s",
            report.sightings,
            report.opened,
            report.closed,
            report.matched,
            report.candidates,
            ", ".join(report.approved) or "none",
        )


class NoDelayServer(WSGIServer):
    """Answers leave at once: wsgiref writes a response's headers and body separately, and with Nagle's
    algorithm the body would wait for the client's delayed ACK (40 ms) on every keep-alive request."""

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, address


class Command(RunServer):
    help = "Serve TimeBank at http://127.0.0.1:8000 (the embedded server; use a WSGI server in production)."
    default_addr = "127.0.0.1"
    default_port = "8000"
    server_cls = NoDelayServer

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--seal-every",
            type=float,
            default=settings.LEDGER_SEAL_EVERY_SECONDS,
            help="seal the ledger in the background every N seconds (0: never; production runs "
            "`timebank ledger seal --every N` as its own worker)",
        )
        parser.add_argument(
            "--care-every",
            type=float,
            default=settings.CARE_TICK_EVERY_SECONDS,
            help="expire past requests and uncollected goods, escalate unconfirmed services, every N seconds "
            "(0: never; production runs `timebank care tick` and `timebank exchange tick` from a timer)",
        )
        parser.add_argument(
            "--sensing-every",
            type=float,
            default=3600,
            help="forget sensor events past retention and create the coming days' partitions every N seconds "
            "(0: never; production runs `timebank sensing prune` from a timer)",
        )
        parser.add_argument(
            "--derive-every",
            type=float,
            default=sensing_setting("SENSING_DERIVE_EVERY_SECONDS"),
            help="derive co-presence sessions from the sensor events received, match them to services and "
            "approve those the sensors agree with (where the policy says so), every N seconds (0: never; "
            "TIMEBANK_SENSING_DERIVE_EVERY_SECONDS; production runs `timebank sensing derive` from a timer)",
        )

    def inner_run(self, *args: Any, **options: Any) -> None:
        for every, work, name in (
            (options.get("seal_every") or 0, _seal, "ledger sealing"),
            (options.get("care_every") or 0, _care_tick, "care tick"),
            (options.get("sensing_every") or 0, _sensing_prune, "sensing prune"),
            (options.get("derive_every") or 0, _sensing_derive, "sensing derive"),
        ):
            if every > 0:
                _background(every, work, name)
        super().inner_run(*args, **options)
