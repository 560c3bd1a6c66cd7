"""The ``timebank`` command: Django's management commands under friendlier names.

``timebank seed-demo`` runs the ``seed_demo`` command, ``timebank serve`` the development server, and so on.
``timebank --help`` lists TimeBank's own commands and the Django ones an operator needs, a line each.
"""

from __future__ import annotations

import os
import sys

# Django commands worth listing for operators, beyond TimeBank's own.
DJANGO_COMMANDS = [
    "migrate",
    "createsuperuser",
    "changepassword",
    "check",
    "shell",
    "dbshell",
    "showmigrations",
    "collectstatic",
    "compilemessages",
    "makemessages",
]
OWN_APPS = ("timebank.",)


def _help_lines() -> list[tuple[str, str]]:
    from django.core.management import get_commands, load_command_class

    commands = get_commands()
    own = sorted(name for name, app in commands.items() if app.startswith(OWN_APPS))
    lines = []
    for name in own + [c for c in DJANGO_COMMANDS if c in commands]:
        command = load_command_class(commands[name], name)
        first = (command.help or "").strip().splitlines()[0] if command.help else ""
        lines.append((name.replace("_", "-"), first))
    return lines


def print_help() -> None:
    lines = _help_lines()
    width = max(len(name) for name, _ in lines) + 2
    print("usage: timebank COMMAND [options]   (timebank COMMAND --help for its options)\n")
    print("TimeBank: elder-care time banking. Commands:")
    for name, text in lines:
        print(f"  {name.ljust(width)}{text}")


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "timebank.config.settings.dev")
    import django

    django.setup()
    if not args or args[0] in {"-h", "--help", "help"}:
        print_help()
        return
    from django.core.management import execute_from_command_line

    from timebank.common.context import origin

    name = args[0].replace("-", "_")
    with origin(None, "cli"):
        execute_from_command_line(["timebank", name, *args[1:]])


if __name__ == "__main__":
    main()
