"""``timebank ledger``: seal, verify, statements and receipts, checked offline, export, the public key."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import translation

from timebank.ledger import services as ledger
from timebank.ledger.models import Account, Block, BlockEntry, Transaction
from timebank.ledger.signing import platform_key
from timebank.ledger.tests.conftest import key

UNREACHABLE_DATABASE = "postgres://nobody@127.0.0.1:1/none"
OTHER_PUBLIC_KEY = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"  # RFC 8032 test 2
BEAN_CHECK = str(Path(sys.executable).parent / "bean-check")


def run(*args: str) -> str:
    out = io.StringIO()
    with translation.override("en"):
        call_command("ledger", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def run_failing(*args: str) -> tuple[CommandError, str]:
    out = io.StringIO()
    with translation.override("en"), pytest.raises(CommandError) as caught:
        call_command("ledger", *args, stdout=out, stderr=io.StringIO())
    return caught.value, out.getvalue()


def offline_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose database cannot be reached, and no TimeBank setting from this test run."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_") and k != "DJANGO_SETTINGS_MODULE"
    }
    env.update(TIMEBANK_DATABASE_URL=UNREACHABLE_DATABASE, TIMEBANK_VAR_DIR=str(tmp_path))
    return env


def timebank_offline(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "timebank.cli.main", "ledger", *args],
        env=offline_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def trade(alice: Account, bob: Account) -> None:
    ledger.transfer(idempotency_key=key(), source=alice.pk, destination=bob.pk, minutes=90, memo="visit")
    wrong = ledger.transfer(idempotency_key=key(), source=alice.pk, destination=bob.pk, minutes=30)
    ledger.transaction_reverse(idempotency_key=key(), transaction_id=wrong.transaction_id, memo="mistake")


def statement_file(tmp_path: Path, account: Account, *extra: str) -> Path:
    path = tmp_path / f"statement-{account.pk}{'-'.join(extra)}.json"
    run("statement", str(account.pk), "-o", str(path), *extra)
    return path


def edit(path: Path, change: Any) -> Path:
    document = json.loads(path.read_text(encoding="utf-8"))
    change(document)
    tampered = path.with_name("tampered-" + path.name)
    tampered.write_text(json.dumps(document, ensure_ascii=False, indent=2), encoding="utf-8")
    return tampered


# --- seal and verify --------------------------------------------------------------------------------------


def test_seal_prints_each_sealed_block(alice, bob):
    # given four committed transactions
    trade(alice, bob)

    # when
    first = run("seal")
    again = run("seal")

    # then
    block = Block.objects.get()
    assert first.strip() == (
        f"sealed block {block.seq}: 4 transactions "
        f"({block.first_txn_id}…{block.last_txn_id}) {block.hash[:16]}"
    )
    assert BlockEntry.objects.count() == Transaction.objects.count() == 4
    assert again == ""


def test_verify_prints_a_summary_with_ok(alice, bob):
    # given a sealed ledger
    trade(alice, bob)
    run("seal")

    # when
    out = run("verify")

    # then
    assert out.strip().endswith(": OK")
    assert "4 transactions, 8 postings" in out
    assert "1 blocks (4 transactions sealed)" in out


# --- statements -------------------------------------------------------------------------------------------


def test_a_statement_written_to_a_file_verifies_with_the_public_key(alice, bob, tmp_path):
    # given
    trade(alice, bob)
    run("seal")

    # when
    path = tmp_path / "alice.json"
    wrote = run("statement", str(alice.pk), "-o", str(path))
    out = run("verify-statement", str(path), "--public-key", platform_key().public_hex)

    # then
    assert wrote.strip() == f"wrote {path}"
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["account"]["balance"] == 510 and document["anchor"] is not None
    assert out.strip() == f"{path}: valid — account {alice.pk}, signed by key {platform_key().key_id}"


def test_a_statement_goes_to_standard_output_without_a_file(alice, bob):
    # given
    trade(alice, bob)

    # when
    out = run("statement", str(alice.pk))

    # then
    document = json.loads(out)
    assert document["account"]["id"] == alice.pk
    assert document["public_key"] == platform_key().public_hex


def test_the_public_key_may_be_read_from_a_file(alice, tmp_path):
    # given
    path = statement_file(tmp_path, alice)
    key_file = tmp_path / "platform.pub"
    key_file.write_text(platform_key().public_hex + "\n")

    # when
    out = run("verify-statement", str(path), "--public-key", f"@{key_file}")

    # then
    assert ": valid" in out


def test_without_a_public_key_the_statements_own_key_is_used_with_a_note(alice, tmp_path):
    # given
    path = statement_file(tmp_path, alice)
    err = io.StringIO()

    # when
    out = io.StringIO()
    call_command("ledger", "verify-statement", str(path), stdout=out, stderr=err)

    # then
    assert ": valid" in out.getvalue()
    assert "compare its id with the platform's published key id" in err.getvalue()


@pytest.mark.parametrize(
    ("what", "change", "problem"),
    [
        (
            "balance",
            lambda d: d["account"].__setitem__("balance", 9999),
            "the last entry's balance is not the stated balance",
        ),
        (
            "entry",
            lambda d: d["entries"][1].__setitem__("amount", -9),
            "does not follow from entry 1",
        ),
        (
            "block signature",
            lambda d: d["anchor"].__setitem__("block_signature", "00" * 64),
            "the block's signature is not the platform's",
        ),
    ],
)
def test_a_tampered_statement_is_refused_naming_the_problem(alice, bob, tmp_path, what, change, problem):
    # given
    trade(alice, bob)
    run("seal")
    tampered = edit(statement_file(tmp_path, alice), change)

    # when
    error, out = run_failing("verify-statement", str(tampered), "--public-key", platform_key().public_hex)

    # then
    assert str(error) == f"{tampered}: NOT valid"
    assert error.returncode == 1
    assert "the statement's signature does not match its contents" in out
    assert problem in out


def test_a_statement_is_refused_with_another_public_key(alice, tmp_path):
    # given
    path = statement_file(tmp_path, alice)

    # when
    error, out = run_failing("verify-statement", str(path), "--public-key", OTHER_PUBLIC_KEY)

    # then
    assert "NOT valid" in str(error)
    assert "signed with another key than the one given" in out


def test_a_receipt_verifies_and_refuses_an_edit(alice, bob, tmp_path):
    # given
    trade(alice, bob)
    run("seal")

    # when
    path = statement_file(tmp_path, alice, "--receipt")
    out = run("verify-statement", str(path), "--public-key", platform_key().public_hex)

    # then
    receipt = json.loads(path.read_text(encoding="utf-8"))
    assert receipt["format"] == "timebank-receipt/1"
    assert (receipt["account"], receipt["balance"], receipt["block"]) == (alice.pk, 510, 1)
    assert out.strip().endswith(f"valid — account {alice.pk}, signed by key {platform_key().key_id}")
    tampered = edit(path, lambda d: d.__setitem__("balance", 5100))
    error, problems = run_failing(
        "verify-statement", str(tampered), "--public-key", platform_key().public_hex
    )
    assert "NOT valid" in str(error)
    assert "the receipt's signature does not match its contents" in problems


def test_a_statement_of_an_unknown_account_is_a_clear_error(db):
    # when
    error, _out = run_failing("statement", "999999")

    # then
    assert "ledger_account_not_found" in str(error)
    assert error.returncode == 2


# --- the public key and export ----------------------------------------------------------------------------


def test_public_key_prints_the_key_id_and_the_key(db):
    # when
    out = run("public-key")

    # then
    key = platform_key()
    assert out == f"key id {key.key_id}\npublic key {key.public_hex}\n"


def test_export_writes_a_journal_that_bean_check_accepts(alice, bob, tmp_path):
    # given
    trade(alice, bob)
    path = tmp_path / "ledger.beancount"

    # when
    out = run("export", "--format", "beancount", "-o", str(path))

    # then
    assert out.strip() == f"wrote 4 transactions to {path}"
    text = path.read_text(encoding="utf-8")
    assert f"balance Liabilities:Members:A{alice.pk}  -510 MIN" in text
    result = subprocess.run([BEAN_CHECK, str(path)], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_export_of_one_area(alice, bob, beijing, tmp_path):
    # given Shanghai trades and nothing in Beijing
    trade(alice, bob)
    path = tmp_path / "beijing.beancount"

    # when
    out = run("export", "--format", "beancount", "-o", str(path), "--area", "110000")

    # then
    assert out.strip() == f"wrote 0 transactions to {path}"
    assert " * " not in path.read_text(encoding="utf-8")


# --- offline: no database at all --------------------------------------------------------------------------


def test_verify_statement_needs_no_database(alice, bob, tmp_path):
    # given a statement and the platform key, checked in a process whose database cannot be reached
    trade(alice, bob)
    run("seal")
    path = statement_file(tmp_path, alice)
    offline = tmp_path / "offline"
    offline.mkdir()

    # when
    result = timebank_offline(
        offline, "verify-statement", str(path), "--public-key", platform_key().public_hex
    )

    # then
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"valid — account {alice.pk}" in result.stdout


def test_the_offline_environment_really_has_no_database(tmp_path):
    """The premise of the offline tests: anything that needs the database fails in that environment."""
    # when
    result = timebank_offline(tmp_path, "seal")

    # then
    assert result.returncode != 0
    assert "127.0.0.1" in result.stderr and "port 1" in result.stderr


def test_a_tampered_statement_fails_offline(alice, bob, tmp_path):
    # given
    trade(alice, bob)
    run("seal")
    tampered = edit(statement_file(tmp_path, alice), lambda d: d["account"].__setitem__("balance", 9999))
    offline = tmp_path / "offline"
    offline.mkdir()

    # when
    result = timebank_offline(
        offline, "verify-statement", str(tampered), "--public-key", platform_key().public_hex
    )

    # then
    assert result.returncode == 1
    assert "the last entry's balance is not the stated balance" in result.stdout
    assert "NOT valid" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_receipt_verifies_offline(alice, tmp_path):
    # given
    path = statement_file(tmp_path, alice, "--receipt")
    offline = tmp_path / "offline"
    offline.mkdir()

    # when
    result = timebank_offline(
        offline, "verify-statement", str(path), "--public-key", platform_key().public_hex
    )

    # then
    assert result.returncode == 0, result.stdout + result.stderr


# --- bad input: a clear error, never a traceback ----------------------------------------------------------

GOOD_KEY = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
BAD_FILES: dict[str, str | bytes] = {
    "not JSON": "this is not JSON {",
    "empty": "",
    "a JSON list": "[1, 2, 3]",
    "a JSON string": '"statement"',
    "not UTF-8": b"\xff\xfe{}",
}
MALFORMED: dict[str, Any] = {
    "another format": {"format": "bank-statement/2"},
    "entries that are not objects": {"format": "timebank-statement/1", "entries": [1, 2]},
    "an anchor without a block": {"format": "timebank-statement/1", "anchor": {"path": []}},
    "a path that is not hex": {
        "format": "timebank-statement/1",
        "account": {"id": 1},
        "anchor": {
            "block": {"count": 2, "root": ""},
            "transaction": {"postings": [[1, 1, 5, 1, 5]]},
            "index": 0,
            "path": ["zz"],
            "block_hash": "",
            "block_signature": "",
        },
    },
    "an account that is not an object": {
        "format": "timebank-statement/1",
        "account": None,
        "entries": [{"seq": 1, "amount": 5, "balance_after": 5}],
    },
}
BAD_KEYS = {
    "not hex": "zz" * 32,
    "too short": GOOD_KEY[:-2],
    "a missing key file": "@/nonexistent/platform.pub",
}


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize("what", list(BAD_FILES))
def test_a_file_that_is_not_a_statement_is_a_clear_error(tmp_path, what):
    # given
    path = write(tmp_path / "bad.json", BAD_FILES[what])

    # when
    error, _out = run_failing("verify-statement", str(path), "--public-key", GOOD_KEY)

    # then
    assert str(error).startswith(f"{path}: not a")


def test_a_missing_file_is_a_clear_error(tmp_path):
    # when
    error, _out = run_failing("verify-statement", str(tmp_path / "missing.json"), "--public-key", GOOD_KEY)

    # then
    assert "not a readable JSON statement" in str(error)


@pytest.mark.parametrize("what", list(MALFORMED))
def test_a_malformed_statement_is_not_valid_rather_than_a_crash(tmp_path, what):
    # given
    path = write(tmp_path / "odd.json", json.dumps(MALFORMED[what]))

    # when
    error, out = run_failing("verify-statement", str(path), "--public-key", GOOD_KEY)

    # then
    assert str(error) == f"{path}: NOT valid"
    assert out.strip()


@pytest.mark.parametrize("what", list(BAD_KEYS))
def test_a_bad_public_key_is_a_clear_error(tmp_path, what):
    # given
    path = write(tmp_path / "statement.json", json.dumps({"format": "timebank-statement/1"}))

    # when
    error, _out = run_failing("verify-statement", str(path), "--public-key", BAD_KEYS[what])

    # then
    assert str(error).startswith("--public-key:")


OFFLINE_BAD_INPUT = [
    *((f"file {w}", c, GOOD_KEY) for w, c in BAD_FILES.items()),
    *((f"statement with {w}", json.dumps(d), GOOD_KEY) for w, d in MALFORMED.items()),
    *((f"key {w}", '{"format": "timebank-statement/1"}', k) for w, k in BAD_KEYS.items()),
]


@pytest.mark.parametrize(
    ("what", "content", "public_key"), OFFLINE_BAD_INPUT, ids=[c[0] for c in OFFLINE_BAD_INPUT]
)
def test_bad_input_offline_exits_with_a_message_and_no_traceback(tmp_path, what, content, public_key):
    # given
    path = write(tmp_path / "input.json", content)

    # when
    result = timebank_offline(tmp_path, "verify-statement", str(path), "--public-key", public_key)

    # then
    assert result.returncode in (1, 2), result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("CommandError: "), result.stderr
