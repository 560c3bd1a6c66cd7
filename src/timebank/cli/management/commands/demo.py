from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import CommandParser

from timebank.cli.base import TimebankCommand


class Command(TimebankCommand):
    help = "Migrate, load the demo community and serve it at http://127.0.0.1:8000."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")

    def run(self, *args: Any, addrport: str, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        call_command("seed_demo")
        self.stdout.write(f"Serving TimeBank at http://{addrport}/ — press Ctrl+C to stop.")
        call_command("serve", addrport, use_reloader=False)
