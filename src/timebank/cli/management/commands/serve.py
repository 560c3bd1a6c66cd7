from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.conf import settings
from django.contrib.staticfiles.management.commands.runserver import Command as RunServer
from django.core.management.base import CommandParser
from django.db import connection

log = logging.getLogger(__name__)


def _seal_forever(every: float) -> None:
    from timebank.ledger.sealing import ledger_seal_all

    while True:
        time.sleep(every)
        try:
            ledger_seal_all()
        except Exception:  # the server must keep serving; the next round tries again
            log.exception("sealing failed")
        finally:
            connection.close()


class Command(RunServer):
    help = "Serve TimeBank at http://127.0.0.1:8000 (the embedded server; use a WSGI server in production)."
    default_addr = "127.0.0.1"
    default_port = "8000"

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--seal-every",
            type=float,
            default=settings.LEDGER_SEAL_EVERY_SECONDS,
            help="seal the ledger in the background every N seconds (0: never; production runs "
            "`timebank ledger seal --every N` as its own worker)",
        )

    def inner_run(self, *args: Any, **options: Any) -> None:
        every = options.get("seal_every") or 0
        if every > 0:
            threading.Thread(target=_seal_forever, args=(every,), name="ledger-sealer", daemon=True).start()
        super().inner_run(*args, **options)
