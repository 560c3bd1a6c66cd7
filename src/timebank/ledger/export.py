"""Export the ledger as a plain-text journal that beancount and hledger read, with balances equal to ours.

Amounts are in the commodity ``MIN`` (minutes). Our postings are credit-positive (a member's positive balance
is what the bank owes them), so journals carry each amount negated: a member's 600 minutes show as −600 MIN
on ``Liabilities:Members:A12``, as a liability should.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import IO

from timebank.ledger.models import Account, AccountKind, Posting, Transaction

COMMODITY = "MIN"
ROOTS: dict[str, str] = {
    AccountKind.MEMBER: "Liabilities:Members",
    AccountKind.POOL: "Liabilities:Pool",
    AccountKind.PUBLIC_FUND: "Expenses:PublicFund",
    AccountKind.GUARANTEE_FUND: "Equity:Guarantee",
    AccountKind.GOODS: "Income:Goods",
    AccountKind.PURCHASES: "Equity:Purchases",
    AccountKind.CLEARING: "Assets:Clearing",
}
FORMATS = ("beancount", "hledger")


def account_name(account: Account, region_code: str, *, lower: bool = False) -> str:
    leaf = f"A{account.pk}" if account.kind == AccountKind.MEMBER else f"R{region_code}"
    name = f"{ROOTS[account.kind]}:{leaf}"
    return name.lower() if lower else name


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def ledger_export(out: IO[str], *, fmt: str, area: str | None = None) -> int:
    """Write the journal to ``out``; returns the number of transactions written."""
    if fmt not in FORMATS:
        raise ValueError(fmt)
    lower = fmt == "hledger"
    accounts = {
        a.pk: (a, account_name(a, a.region.code, lower=lower))
        for a in Account.objects.select_related("region").order_by("pk")
    }
    # With one area, its transactions include clearings with other areas; only its own balances are asserted.
    asserted = {pk for pk, (a, _name) in accounts.items() if area is None or a.area == area}
    first_day = Transaction.objects.order_by("created_at").values_list("created_at", flat=True).first()
    opened = (first_day or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).date()
    if fmt == "beancount":
        out.write('option "title" "TimeBank ledger"\noption "operating_currency" "MIN"\n\n')
        out.write(f"{opened.isoformat()} commodity {COMMODITY}\n")
        for _account, name in accounts.values():
            out.write(f"{opened.isoformat()} open {name} {COMMODITY}\n")
    else:
        out.write(f"; TimeBank ledger in minutes ({COMMODITY})\n")
        for _account, name in accounts.values():
            out.write(f"account {name}\n")
    out.write("\n")
    count = 0
    last_day = opened
    final: dict[int, int] = {}
    for txn, postings in _transactions(area):
        day = txn.created_at.astimezone(dt.UTC).date()
        last_day = max(last_day, day)
        count += 1
        if fmt == "beancount":
            out.write(
                f'{day.isoformat()} * {_quote(txn.kind)} {_quote(txn.memo)}\n  timebank-id: "{txn.pk}"\n'
            )
        else:
            memo = " ".join(txn.memo.split()).replace(";", ",")  # one line: no CR, LF or tab survives
            out.write(f"{day.isoformat()} * {txn.kind} | {memo}  ; timebank-id:{txn.pk}\n")
        for posting in postings:
            _account, name = accounts[posting.account_id]
            line = f"  {name}  {-posting.amount} {COMMODITY}"
            if (
                fmt == "hledger" and posting.account_id in asserted
            ):  # each posting asserts the balance after it
                line += f" = {-posting.balance_after} {COMMODITY}"
            out.write(line + "\n")
            final[posting.account_id] = posting.balance_after
        out.write("\n")
    if fmt == "beancount":
        check_day = (last_day + dt.timedelta(days=1)).isoformat()
        for account_id, (account, name) in accounts.items():
            if account_id not in asserted:
                continue
            out.write(f"{check_day} balance {name}  {-final.get(account_id, account.balance)} {COMMODITY}\n")
    return count


def _transactions(area: str | None) -> Iterator[tuple[Transaction, list[Posting]]]:
    txns = Transaction.objects.order_by("pk")
    if area:
        txns = txns.filter(pk__in=Posting.objects.filter(account__area=area).values("transaction_id"))
    batch: list[Transaction] = []
    for txn in txns.iterator(chunk_size=5000):
        batch.append(txn)
        if len(batch) == 5000:
            yield from _with_postings(batch)
            batch = []
    if batch:
        yield from _with_postings(batch)


def _with_postings(batch: list[Transaction]) -> Iterator[tuple[Transaction, list[Posting]]]:
    by_txn: dict[int, list[Posting]] = {}
    for posting in Posting.objects.filter(
        transaction_id__gte=batch[0].pk, transaction_id__lte=batch[-1].pk
    ).order_by("transaction_id", "id"):
        by_txn.setdefault(posting.transaction_id, []).append(posting)
    for txn in batch:
        yield txn, by_txn.get(txn.pk, [])
