from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from timebank.cli.base import TimebankCommand


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A statement naming a field twice could be read two ways: refuse it."""
    names = [name for name, _value in pairs]
    if len(set(names)) != len(names):
        raise ValueError(f"a field appears twice: {sorted({n for n in names if names.count(n) > 1})}")
    return dict(pairs)


def _read_key(value: str) -> str:
    """A public key given as hex, or as @FILE holding it."""
    try:
        text = Path(value[1:]).read_text().strip() if value.startswith("@") else value.strip()
    except OSError as exc:
        raise CommandError(f"--public-key: cannot read {value[1:]} ({exc.strerror})") from exc
    try:
        if len(bytes.fromhex(text)) != 32:
            raise ValueError
    except ValueError as exc:
        raise CommandError("--public-key: 64 hex digits (an Ed25519 public key), or @FILE") from exc
    return text


class Command(TimebankCommand):
    help = "The time ledger: seal, verify, statements, export."
    requires_system_checks: list[str] = []  # verify-statement works with no database at all

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        seal = sub.add_parser("seal", help="Seal committed transactions into signed blocks")
        seal.add_argument("--every", type=float, default=0, help="keep sealing every N seconds (a worker)")
        verify = sub.add_parser("verify", help="Recompute sums, balances, hashes and signatures")
        verify.add_argument("--show", type=int, default=10, help="how many problems to list")
        statement = sub.add_parser("statement", help="Write the signed statement of an account (JSON)")
        statement.add_argument("account", type=int)
        statement.add_argument("-o", "--output", type=Path, help="file (default: standard output)")
        statement.add_argument("--receipt", action="store_true", help="the short signed receipt (QR code)")
        check = sub.add_parser("verify-statement", help="Check a signed statement offline (no database)")
        check.add_argument("file", type=Path)
        check.add_argument(
            "--public-key",
            help="the platform's public key (hex or @FILE); default: the key the statement names, "
            "which only proves it is unaltered",
        )
        export = sub.add_parser("export", help="Write the ledger as a beancount or hledger journal")
        export.add_argument("--format", choices=["beancount", "hledger"], required=True)
        export.add_argument("-o", "--output", type=Path, required=True)
        export.add_argument("--area", help="only this currency area (province code, e.g. 310000)")
        sub.add_parser("public-key", help="Print the platform's public key and its id")

    def run(self, *args: Any, action: str, **options: Any) -> None:
        getattr(self, "_" + action.replace("-", "_"))(**options)

    def _seal(self, every: float, **_options: Any) -> None:
        from timebank.ledger.sealing import ledger_seal_all

        while True:
            for block in ledger_seal_all():
                self.stdout.write(
                    f"sealed block {block.seq}: {block.tx_count} transactions "
                    f"({block.first_txn_id}…{block.last_txn_id}) {block.hash[:16]}"
                )
            if every <= 0:
                return
            time.sleep(every)

    def _verify(self, show: int, **_options: Any) -> None:
        from timebank.ledger.verify import ledger_verify

        report = ledger_verify(limit=max(show, 1))
        for finding in report.findings:
            self.stdout.write(f"  {finding}")
        self.stdout.write(report.summary())
        if not report.ok:
            raise CommandError("the ledger does not verify", returncode=1)

    def _statement(self, account: int, output: Path | None, receipt: bool, **_options: Any) -> None:
        from timebank.ledger.selectors import account_get
        from timebank.ledger.statements import receipt_of, statement_issue

        document = statement_issue(account_get(account))
        if receipt:
            document = receipt_of(document)
        text = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
        if output is None:
            self.stdout.write(text, ending="")
        else:
            output.write_text(text, encoding="utf-8")
            self.stdout.write(f"wrote {output}")

    def _verify_statement(self, file: Path, public_key: str | None, **_options: Any) -> None:
        from timebank.ledger.proofs import verify_document

        try:
            document = json.loads(file.read_text(encoding="utf-8"), object_pairs_hook=_no_repeated_keys)
        except (OSError, ValueError) as exc:
            raise CommandError(f"{file}: not a readable JSON statement ({exc})") from exc
        if not isinstance(document, dict):
            raise CommandError(f"{file}: not a statement")
        key = _read_key(public_key) if public_key else str(document.get("public_key", ""))
        if not public_key:
            self.stderr.write(
                "note: checked against the key the statement names; compare its id with the "
                "platform's published key id"
            )
        try:
            problems = verify_document(document, key)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            problems = [f"malformed statement ({exc!r})"]
        for problem in problems:
            self.stdout.write(f"  {problem}")
        if problems:
            raise CommandError(f"{file}: NOT valid", returncode=1)
        account = document.get("account")
        account_id = account.get("id") if isinstance(account, dict) else account
        issuer = (
            "" if public_key else " (by the key it names — NOT checked against the platform's published key)"
        )
        self.stdout.write(
            f"{file}: valid — account {account_id}, signed by key {document.get('key_id')}{issuer}"
        )

    def _export(self, format: str, output: Path, area: str | None, **_options: Any) -> None:
        from timebank.ledger.export import ledger_export

        with output.open("w", encoding="utf-8") as handle:
            count = ledger_export(handle, fmt=format, area=area)
        self.stdout.write(f"wrote {count} transactions to {output}")

    def _public_key(self, **_options: Any) -> None:
        from timebank.ledger.signing import platform_key

        key = platform_key()
        self.stdout.write(f"key id {key.key_id}\npublic key {key.public_hex}")
