from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from timebank.cli.base import TimebankCommand
from timebank.regions import selectors, services
from timebank.regions.models import Region


class Command(TimebankCommand):
    help = "Import and list the region tree (province → city → district → street → community)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        imp = sub.add_parser("import", help="Import a CSV file: code,name,name_en,level,parent_code")
        imp.add_argument("file", type=Path)
        shipped = sub.add_parser(
            "import-shipped", help="Import data shipped with TimeBank (shanghai, other-cities)"
        )
        shipped.add_argument("name", nargs="?", default="shanghai")
        show = sub.add_parser("list", help="List a node and its subtree")
        show.add_argument("code", nargs="?", default="")
        show.add_argument("--depth", type=int, default=1, help="levels below the node to show")

    def run(self, *args: Any, action: str, **options: Any) -> None:
        if action in {"import", "import-shipped"}:
            if action == "import":
                path: Path = options["file"]
                if not path.is_file():
                    raise CommandError(f"{path}: no such file")
                report = services.regions_import_csv(actor=None, text=path.read_text(encoding="utf-8-sig"))
            else:
                report = services.regions_import_shipped(actor=None, name=options["name"])
            self.stdout.write(
                f"imported: {report.created} created, {report.renamed} renamed, {report.unchanged} unchanged"
            )
            return
        code = options["code"]
        if code:
            root = selectors.region_get(code)
            nodes = selectors.region_subtree(root).filter(depth__lte=root.depth + options["depth"])
        else:
            nodes = Region.objects.filter(depth__lte=options["depth"]).order_by("path")
        for node in nodes:
            self.stdout.write(f"{'  ' * node.depth}{node.code}  {node.name}  ({node.level})")
