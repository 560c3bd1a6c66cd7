from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from timebank.common.context import current_origin, origin
from timebank.common.errors import ApplicationError


class TimebankCommand(BaseCommand):
    """A command whose domain errors print as a clear message (with each bad field) and exit non-zero."""

    def handle(self, *args: Any, **options: Any) -> str | None:
        try:
            if current_origin().channel == "system":
                with origin(None, "cli"):
                    return self.run(*args, **options)
            return self.run(*args, **options)
        except ApplicationError as exc:
            lines = [f"{exc.message} [{exc.code}]"]
            for field, messages in exc.fields.items():
                lines.extend(f"  {field}: {m}" for m in messages)
            raise CommandError("\n".join(lines), returncode=2) from exc

    def run(self, *args: Any, **options: Any) -> str | None:
        raise CommandError(f"{type(self).__module__} defines no run()")
