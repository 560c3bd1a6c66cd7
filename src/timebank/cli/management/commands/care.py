from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from timebank.care import services
from timebank.cli.base import TimebankCommand
from timebank.people.models import User
from timebank.regions.selectors import region_get


def _user(username: str) -> User:
    user = User.objects.filter(username__iexact=username).first()
    if user is None:
        raise CommandError(f"no user {username!r}")
    return user


class Command(TimebankCommand):
    help = "Care services: import paper records, expire and escalate, set public fund budgets."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        imp = sub.add_parser(
            "import-paper",
            help="Import historical paper-card records from CSV (" + ",".join(services.PAPER_COLUMNS) + "); "
            "all lines or none",
        )
        imp.add_argument("file", type=Path)
        imp.add_argument("--by", required=True, help="the station staff member entering them (audited)")
        imp.add_argument(
            "--approve-by",
            default="",
            metavar="USER",
            help="approve and credit them at once, by this reviewer (not the one who entered them)",
        )
        sub.add_parser("tick", help="Expire past requests nobody took; escalate unconfirmed services")
        budget = sub.add_parser("budget", help="Set the public fund budget of a region for a year")
        budget.add_argument("region", help="region code")
        budget.add_argument("year", type=int)
        budget.add_argument("minutes", type=int)
        budget.add_argument("--by", required=True, help="the acting operator (audited)")

    def run(self, *args: Any, action: str, **options: Any) -> None:
        if action == "import-paper":
            path: Path = options["file"]
            if not path.is_file():
                raise CommandError(f"{path}: no such file")
            actor = _user(options["by"])
            report = services.paper_import(actor=actor, text=path.read_text(encoding="utf-8-sig"))
            self.stdout.write(
                f"imported {len(report.created)} paper records ({report.flagged} flagged as overlapping)"
            )
            if options["approve_by"]:
                reviewer = _user(options["approve_by"])
                result = services.orders_approve(actor=reviewer, orders=report.created)
                self.stdout.write(f"approved and credited {len(result.approved)}")
                for order, exc in result.failed:
                    self.stdout.write(f"  {order.number}: {exc.message} [{exc.code}]")
        elif action == "tick":
            tick = services.care_tick()
            self.stdout.write(f"expired {tick.expired}, escalated {tick.escalated}")
        else:
            budget = services.fund_budget_set(
                actor=_user(options["by"]),
                region=region_get(options["region"]),
                year=options["year"],
                limit_minutes=options["minutes"],
            )
            self.stdout.write(
                f"budget {budget.region.code} {budget.year}: {budget.limit_minutes} minutes "
                f"({budget.committed_minutes} committed)"
            )
