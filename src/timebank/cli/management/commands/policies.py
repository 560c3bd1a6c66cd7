from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from timebank.cli.base import TimebankCommand
from timebank.regions import selectors, services


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise CommandError(f"not a date (YYYY-MM-DD): {text!r}") from exc


class Command(TimebankCommand):
    help = (
        "Load and show jurisdiction policies (versioned rules attached to a region and inherited below it)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("presets", help="List the shipped presets")
        preset = sub.add_parser("load-preset", help="Attach a shipped preset to a region as a new version")
        preset.add_argument("preset", choices=sorted(services.PRESETS))
        preset.add_argument("--region", required=True, help="region code, e.g. 310000")
        preset.add_argument("--effective-from", type=_date, required=True, help="YYYY-MM-DD")
        load = sub.add_parser("load", help="Attach a policy from a JSON file as a new version")
        load.add_argument("file", type=Path)
        load.add_argument("--region", required=True)
        load.add_argument("--effective-from", type=_date, required=True)
        show = sub.add_parser("show", help="Show the policy in force for a region on a day")
        show.add_argument("region")
        show.add_argument("--on", type=_date, default=None, help="YYYY-MM-DD (default: today)")

    def run(self, *args: Any, action: str, **options: Any) -> None:
        if action == "presets":
            for key, name in services.PRESETS.items():
                self.stdout.write(f"{key:16} {name}")
            return
        region = selectors.region_get(options["region"])
        if action == "load-preset":
            policy = services.policy_load_preset(
                actor=None, preset=options["preset"], region=region, effective_from=options["effective_from"]
            )
        elif action == "load":
            path: Path = options["file"]
            if not path.is_file():
                raise CommandError(f"{path}: no such file")
            policy = services.policy_load_file(
                actor=None,
                text=path.read_text(encoding="utf-8-sig"),
                region=region,
                effective_from=options["effective_from"],
            )
        else:
            day = options["on"] or timezone.localdate()
            found = selectors.policy_in_force(region, day)
            if found is None:
                raise CommandError(f"no policy is in force for {region.code} on {day}")
            self._show(found)
            return
        self.stdout.write(f"loaded {policy} for {region.code}")

    def _show(self, policy: Any) -> None:
        self.stdout.write(
            f"{policy.name} — version {policy.version} of {policy.region.code}, from {policy.effective_from}"
        )
        for field in services.POLICY_FIELDS:
            self.stdout.write(f"  {field}: {getattr(policy, field)}")
        for cat in policy.categories.all():
            self.stdout.write(
                f"  category {cat.code}: {cat.name} / {cat.name_en}, "
                f"tier {cat.tier}, ×{cat.coefficient_permille / 1000:g}"
            )
