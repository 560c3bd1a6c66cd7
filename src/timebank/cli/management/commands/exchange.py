from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from timebank.cli.base import TimebankCommand
from timebank.common.units import format_minutes
from timebank.exchange import selectors, services
from timebank.people.models import User
from timebank.regions.selectors import region_get


def _user(username: str) -> User:
    user = User.objects.filter(username__iexact=username).first()
    if user is None:
        raise CommandError(f"no user {username!r}")
    return user


def _fen(yuan: str, name: str) -> int:
    try:
        whole, _dot, cents = yuan.strip().partition(".")
        if not whole.isdigit() or (cents and (not cents.isdigit() or len(cents) > 2)):
            raise ValueError
        return int(whole) * 100 + int((cents or "0").ljust(2, "0"))
    except ValueError as exc:
        raise CommandError(f"{name}: an amount in yuan such as 10000000 or 30.50") from exc


class Command(TimebankCommand):
    help = "The withdrawal side: expire uncollected goods, record guarantee funds, report their coverage."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("tick", help="Expire goods nobody picked up in time (minutes and stock come back)")
        guarantee = sub.add_parser("guarantee", help="Record the guarantee fund behind a region")
        guarantee.add_argument("region", help="region code")
        guarantee.add_argument("value", help="the fund's value in yuan")
        guarantee.add_argument("hour_cost", help="what an hour of care costs, in yuan")
        guarantee.add_argument("--note", default="")
        guarantee.add_argument("--by", required=True, help="the acting operator (audited)")
        cover = sub.add_parser(
            "coverage", help="What members of a region hold against what its guarantee buys"
        )
        cover.add_argument("region", help="region code")

    def run(self, *args: Any, action: str, **options: Any) -> None:
        if action == "tick":
            self.stdout.write(f"expired {services.exchange_tick()} uncollected orders")
        elif action == "guarantee":
            fund = services.guarantee_fund_record(
                actor=_user(options["by"]),
                region=region_get(options["region"]),
                value_fen=_fen(options["value"], "value"),
                fen_per_hour=_fen(options["hour_cost"], "hour_cost"),
                note=options["note"],
            )
            self.stdout.write(f"guarantee fund of {fund.region.code}: ¥{fund.value_fen / 100:,.2f}")
        else:
            report = selectors.coverage(region_get(options["region"]))
            ratio = f"{report.ratio_percent}%" if report.ratio_percent is not None else "—"
            self.stdout.write(
                f"{report.region.code}: members hold {format_minutes(report.outstanding_minutes)} "
                f"(of which bought {format_minutes(report.purchased_minutes)}); the guarantee buys "
                f"{format_minutes(report.covered_minutes)}; coverage {ratio}"
            )
