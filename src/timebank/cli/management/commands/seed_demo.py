from __future__ import annotations

from typing import Any

from timebank.cli.base import TimebankCommand
from timebank.demo.seed import Login, demo_is_seeded, seed_demo
from timebank.demo.sensing import sensors_note


def format_logins(logins: list[Login]) -> str:
    common = logins[0].password
    lines = [f"Demo sign-ins (password for all but where shown: {common}):"]
    for login in logins:
        own = "" if login.password == common else f"  (PIN {login.password})"
        lines.append(f"  {login.username:<12} {login.role:<16} {login.scope}{own}")
    return "\n".join(lines)


class Command(TimebankCommand):
    help = "Load the demo Shanghai community (regions, policies, staff of every role, members, families)."

    def run(self, *args: Any, **options: Any) -> None:
        already = demo_is_seeded()
        logins = seed_demo()
        self.stdout.write("demo data already present" if already else "demo data loaded")
        self.stdout.write(format_logins(logins))
        if note := sensors_note():
            self.stdout.write(note)
