from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from timebank.cli.base import TimebankCommand
from timebank.people import selectors, services
from timebank.people.models import Role, User
from timebank.regions.selectors import region_get


def _user(username: str) -> User:
    user = User.objects.filter(username__iexact=username).first()
    if user is None:
        raise CommandError(f"no user {username!r}")
    return user


class Command(TimebankCommand):
    help = "Create staff sign-ins, grant and revoke roles on region nodes, list grants."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--by", required=True, help="the acting operator or platform admin (audited)")
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Create a staff sign-in")
        create.add_argument("username")
        create.add_argument("--name", default="")
        create.add_argument("--mobile", default="")
        create.add_argument("--password", required=True)
        grant = sub.add_parser("grant", help="Grant ROLE on REGION (and everything below it)")
        grant.add_argument("username")
        grant.add_argument("role", choices=Role.values)
        grant.add_argument("region", help="region code")
        revoke = sub.add_parser("revoke", help="Revoke a grant by its number (see list)")
        revoke.add_argument("grant_id", type=int)
        sub.add_parser("list", help="List the live grants the acting user may manage")

    def run(self, *args: Any, action: str, by: str, **options: Any) -> None:
        actor = _user(by)
        if action == "create":
            user = services.staff_user_create(
                actor=actor,
                username=options["username"],
                password=options["password"],
                name=options["name"],
                mobile=options["mobile"],
            )
            self.stdout.write(f"created {user.username}")
        elif action == "grant":
            grant = services.staff_grant_create(
                actor=actor,
                user=_user(options["username"]),
                role=options["role"],
                region=region_get(options["region"]),
            )
            self.stdout.write(
                f"granted #{grant.pk}: {grant.user.username} {grant.role} @ {grant.region.code}"
            )
        elif action == "revoke":
            grant = services.staff_grant_revoke(
                actor=actor, grant=selectors.grant_get(actor, options["grant_id"])
            )
            self.stdout.write(f"revoked #{grant.pk}")
        else:
            for grant in selectors.grants_visible(actor):
                self.stdout.write(
                    f"#{grant.pk:<5} {grant.user.username:<20} {grant.role:<16} {grant.region.code}"
                )
