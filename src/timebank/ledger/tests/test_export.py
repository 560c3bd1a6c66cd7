"""Exported journals are checked by beancount's and hledger's own tools, with balances equal to ours."""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from beancount import loader
from beancount.core import data

from timebank.ledger import services as ledger
from timebank.ledger.export import account_name, ledger_export
from timebank.ledger.models import Account, AccountKind, Transaction
from timebank.ledger.tests.conftest import funded, key
from timebank.regions.models import Region

BEAN_CHECK = str(Path(sys.executable).parent / "bean-check")
MEMO = 'she said "thank you" \\ for the\nvisit; 谢谢你的陪伴'


@dataclass
class Book:
    alice: Account
    bob: Account
    fund: Account
    pool: Account
    beijing_fund: Account
    beijing_member: Account
    memo_txn: int


def book(fund: Account, shanghai: Region, beijing: Region) -> Book:
    """Members, the public fund, a donation pool, a reversal, an awkward memo, and a Beijing account."""
    alice = funded(fund, shanghai, 600)
    bob = funded(fund, shanghai, 0)
    pool = ledger.system_account(kind=AccountKind.POOL, region=shanghai)
    memo = ledger.transfer(idempotency_key=key(), source=alice.pk, destination=bob.pk, minutes=90, memo=MEMO)
    wrong = ledger.transfer(idempotency_key=key(), source=alice.pk, destination=bob.pk, minutes=30)
    ledger.transaction_reverse(idempotency_key=key(), transaction_id=wrong.transaction_id, memo="mistake")
    ledger.transfer(
        idempotency_key=key(), source=alice.pk, destination=pool.pk, minutes=120, kind="donation", memo="捐赠"
    )
    ledger.transfer(idempotency_key=key(), source=pool.pk, destination=bob.pk, minutes=50, kind="allocation")
    beijing_fund = ledger.system_account(kind=AccountKind.PUBLIC_FUND, region=beijing)
    beijing_member = funded(beijing_fund, beijing, 300)
    fresh = {a.pk: a for a in Account.objects.all()}
    return Book(
        alice=fresh[alice.pk],
        bob=fresh[bob.pk],
        fund=fresh[fund.pk],
        pool=fresh[pool.pk],
        beijing_fund=fresh[beijing_fund.pk],
        beijing_member=fresh[beijing_member.pk],
        memo_txn=memo.transaction_id,
    )


def export(tmp_path: Path, fmt: str, area: str | None = None) -> tuple[Path, int]:
    out = io.StringIO()
    count = ledger_export(out, fmt=fmt, area=area)
    path = tmp_path / f"ledger.{fmt}"
    path.write_text(out.getvalue(), encoding="utf-8")
    return path, count


def bean_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BEAN_CHECK, str(path)], capture_output=True, text=True, timeout=120, check=False)


def hledger() -> str:
    found = shutil.which("hledger")
    if found is None:
        pytest.fail("hledger is not installed (apt-get install hledger); .ci/run installs it")
    return found


def hledger_run(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [hledger(), "-f", str(path), *args], capture_output=True, text=True, timeout=120, check=False
    )


def beancount_balances(path: Path) -> dict[str, Decimal]:
    entries, problems, _options = loader.load_file(str(path))
    assert problems == []
    totals: dict[str, Decimal] = {}
    for entry in entries:
        if isinstance(entry, data.Transaction):
            for posting in entry.postings:
                assert posting.units is not None and posting.units.number is not None
                assert posting.units.currency == "MIN"
                totals[posting.account] = totals.get(posting.account, Decimal(0)) + posting.units.number
    return totals


def names(*, lower: bool = False) -> dict[str, Account]:
    return {account_name(a, a.region.code, lower=lower): a for a in Account.objects.select_related("region")}


# --- beancount --------------------------------------------------------------------------------------------


def test_the_beancount_journal_passes_bean_check(fund, shanghai, beijing, tmp_path):
    # given
    book(fund, shanghai, beijing)

    # when
    path, count = export(tmp_path, "beancount")
    result = bean_check(path)

    # then
    assert result.returncode == 0, result.stdout + result.stderr
    assert count == Transaction.objects.count() == 7


def test_bean_check_catches_an_altered_balance(fund, shanghai, beijing, tmp_path):
    # given an exported journal
    b = book(fund, shanghai, beijing)
    path, _count = export(tmp_path, "beancount")
    text = path.read_text(encoding="utf-8")
    line = f"balance Liabilities:Members:A{b.alice.pk}  -390 MIN"
    assert line in text
    assert bean_check(path).returncode == 0

    # when one balance line is altered
    path.write_text(
        text.replace(line, f"balance Liabilities:Members:A{b.alice.pk}  -391 MIN"), encoding="utf-8"
    )
    result = bean_check(path)

    # then
    assert result.returncode != 0
    assert f"Liabilities:Members:A{b.alice.pk}" in result.stdout + result.stderr


def test_bean_check_catches_an_altered_amount(fund, shanghai, beijing, tmp_path):
    # given
    b = book(fund, shanghai, beijing)
    path, _count = export(tmp_path, "beancount")
    text = path.read_text(encoding="utf-8")
    assert bean_check(path).returncode == 0

    # when one posting's amount is altered
    altered = re.sub(rf"(\n  Liabilities:Members:A{b.bob.pk}  )-90 MIN", r"\1-91 MIN", text, count=1)
    assert altered != text
    path.write_text(altered, encoding="utf-8")

    # then
    assert bean_check(path).returncode != 0


def test_beancount_balances_are_ours_negated(fund, shanghai, beijing, tmp_path):
    # given
    book(fund, shanghai, beijing)
    path, _count = export(tmp_path, "beancount")

    # when
    totals = beancount_balances(path)

    # then every account ends where ours does, as a liability shows it
    accounts = names()
    assert set(totals) == set(accounts)
    for name, account in accounts.items():
        assert totals[name] == -account.balance, name
    balances = {a.kind: a.balance for a in accounts.values() if a.area == "310000" and a.kind != "member"}
    assert balances == {"public_fund": -600, "pool": 70}


def test_the_memo_survives_beancount_quoting(fund, shanghai, beijing, tmp_path):
    # given a memo with quotes, a backslash, a newline and Chinese
    b = book(fund, shanghai, beijing)
    path, _count = export(tmp_path, "beancount")

    # when
    entries, problems, _options = loader.load_file(str(path))

    # then
    assert problems == []
    by_id = {e.meta["timebank-id"]: e for e in entries if isinstance(e, data.Transaction)}
    assert by_id[str(b.memo_txn)].narration == MEMO
    assert by_id[str(b.memo_txn)].payee == "transfer"


def test_system_accounts_are_named_by_region_and_members_by_number(fund, shanghai, beijing, tmp_path):
    # given
    b = book(fund, shanghai, beijing)

    # when
    path, _count = export(tmp_path, "beancount")
    text = path.read_text(encoding="utf-8")

    # then
    for name in (
        f"Liabilities:Members:A{b.alice.pk}",
        f"Liabilities:Pool:R{shanghai.code}",
        f"Expenses:PublicFund:R{shanghai.code}",
        f"Expenses:PublicFund:R{beijing.code}",
    ):
        assert f" open {name} MIN\n" in text


def test_an_empty_ledger_exports_a_valid_journal(db, tmp_path):
    # when
    path, count = export(tmp_path, "beancount")

    # then
    assert count == 0
    assert bean_check(path).returncode == 0


def test_an_unknown_format_is_refused(db):
    # when / then
    with pytest.raises(ValueError, match="ledger"):
        ledger_export(io.StringIO(), fmt="ledger")


# --- one currency area ------------------------------------------------------------------------------------


def test_an_area_export_holds_only_that_areas_transactions(fund, shanghai, beijing, tmp_path):
    # given
    b = book(fund, shanghai, beijing)

    # when
    path, count = export(tmp_path, "beancount", area=b.beijing_member.area)

    # then
    assert b.beijing_member.area == "110000"
    assert count == 1
    entries, problems, _options = loader.load_file(str(path))
    assert problems == []
    transactions = [e for e in entries if isinstance(e, data.Transaction)]
    assert {p.account for t in transactions for p in t.postings} == {
        f"Liabilities:Members:A{b.beijing_member.pk}",
        f"Expenses:PublicFund:R{beijing.code}",
    }
    assert bean_check(path).returncode == 0
    assert beancount_balances(path)[f"Liabilities:Members:A{b.beijing_member.pk}"] == -300


def test_an_area_export_asserts_only_that_areas_balances(fund, shanghai, beijing, tmp_path):
    # given
    b = book(fund, shanghai, beijing)

    # when
    path, count = export(tmp_path, "beancount", area="310000")

    # then
    text = path.read_text(encoding="utf-8")
    assert count == 6
    assert f"balance Liabilities:Members:A{b.alice.pk} " in text
    assert f"balance Liabilities:Members:A{b.beijing_member.pk} " not in text
    assert f"Liabilities:Members:A{b.beijing_member.pk}  -300" not in text
    assert bean_check(path).returncode == 0


def test_an_area_with_no_transactions_exports_nothing(fund, shanghai, beijing, tmp_path):
    # given
    book(fund, shanghai, beijing)

    # when
    path, count = export(tmp_path, "beancount", area="320000")

    # then
    assert count == 0
    assert bean_check(path).returncode == 0


# --- hledger ----------------------------------------------------------------------------------------------


def test_the_hledger_journal_passes_hledger_check(fund, shanghai, beijing, tmp_path):
    # given
    book(fund, shanghai, beijing)

    # when
    path, count = export(tmp_path, "hledger")
    result = hledger_run(path, "check")

    # then
    assert result.returncode == 0, result.stdout + result.stderr
    assert count == 7
    text = path.read_text(encoding="utf-8")
    postings = [line for line in text.splitlines() if line.startswith("  ")]
    assert len(postings) == 14
    assert all(re.fullmatch(r"  \S+  -?\d+ MIN = -?\d+ MIN", line) for line in postings), postings


def test_hledger_balances_are_ours_negated(fund, shanghai, beijing, tmp_path):
    # given
    book(fund, shanghai, beijing)
    path, _count = export(tmp_path, "hledger")

    # when
    result = hledger_run(path, "balance", "--flat", "--no-total", "-O", "csv")

    # then
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))[1:]
    totals = dict(rows)
    accounts = names(lower=True)
    for name, account in accounts.items():
        expected = f"{-account.balance} MIN" if account.balance else "0"
        assert totals.get(name, "0") == expected, name


def test_hledger_check_catches_an_altered_amount(fund, shanghai, beijing, tmp_path):
    # given
    b = book(fund, shanghai, beijing)
    path, _count = export(tmp_path, "hledger")
    text = path.read_text(encoding="utf-8")
    assert hledger_run(path, "check").returncode == 0

    # when one posting's amount is altered
    altered, n = re.subn(
        rf"(\n  liabilities:members:a{b.bob.pk}  )-90 MIN = -90 MIN", r"\1-91 MIN = -90 MIN", text
    )
    assert n == 1
    path.write_text(altered, encoding="utf-8")

    # then
    assert hledger_run(path, "check").returncode != 0


def test_hledger_check_catches_an_altered_balance_assertion(fund, shanghai, beijing, tmp_path):
    # given
    b = book(fund, shanghai, beijing)
    path, _count = export(tmp_path, "hledger")
    text = path.read_text(encoding="utf-8")
    assert hledger_run(path, "check").returncode == 0

    # when one balance assertion is altered, the amounts left as they were
    altered, n = re.subn(rf"(\n  liabilities:members:a{b.bob.pk}  -90 MIN) = -90 MIN", r"\1 = -89 MIN", text)
    assert n == 1
    path.write_text(altered, encoding="utf-8")
    result = hledger_run(path, "check")

    # then
    assert result.returncode != 0
    assert "balance assertion" in (result.stdout + result.stderr).lower()


def test_the_hledger_memo_stays_on_one_line(fund, shanghai, beijing, tmp_path):
    # given
    b = book(fund, shanghai, beijing)

    # when
    path, _count = export(tmp_path, "hledger")

    # then
    line = next(x for x in path.read_text(encoding="utf-8").splitlines() if f"timebank-id:{b.memo_txn}" in x)
    assert line.endswith(
        f'* transfer | she said "thank you" \\ for the visit, 谢谢你的陪伴  ; timebank-id:{b.memo_txn}'
    )
    assert hledger_run(path, "check").returncode == 0


def test_a_memo_with_a_windows_line_break_stays_on_one_line(fund, shanghai, tmp_path):
    # given a memo typed on Windows: CR LF, and a tab
    alice = funded(fund, shanghai, 600)
    ledger.transfer(
        idempotency_key=key(),
        source=alice.pk,
        destination=fund.pk,
        minutes=5,
        memo="first line\r\nsecond\tline",
    )

    # when
    path, _count = export(tmp_path, "hledger")
    accounts = hledger_run(path, "accounts")

    # then hledger sees our accounts only (not the memo's second line as a posting) and the whole memo
    assert accounts.returncode == 0, accounts.stderr
    assert set(accounts.stdout.split("\n")) - {""} == set(names(lower=True))
    printed = hledger_run(path, "print", "desc:first line")
    assert "second" in printed.stdout.split("\n")[0], printed.stdout


def test_an_hledger_area_export_passes_check(fund, shanghai, beijing, tmp_path):
    # given
    b = book(fund, shanghai, beijing)

    # when
    path, count = export(tmp_path, "hledger", area=b.beijing_member.area)
    result = hledger_run(path, "check")

    # then
    assert result.returncode == 0, result.stdout + result.stderr
    assert count == 1
    assert f"  liabilities:members:a{b.beijing_member.pk}  -300 MIN = -300 MIN" in path.read_text("utf-8")
