"""Ledger benchmarks on PostgreSQL, each measured against a reference taken in the same run.

    python bench/ledger_bench.py [--seconds 15] [--verify-transactions 1000000] [--only NAME ...]

1. transfer: pgbench running the very same stored-function call the ledger service makes (``ledger_post``) on
   random member accounts with 8 clients, then the ledger service itself (Python, ``timebank.ledger.services
   .transfer``) with 8 worker processes; also pgbench's built-in TPC-B-like script for reference.
2. batch: a station approving 10,000 service records at once (``transactions_post_batch``): postings/second.
3. verify: ``timebank ledger verify`` over N transactions (default 1,000,000), after sealing them.
4. reads: balance and one statement page for an account with few entries and one with very many.

Results go to bench/results/ledger.json and are printed as the table BENCHMARKS.md shows.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

from benchdb import ROOT, SERVER, BenchDatabase, psql

DATABASE = BenchDatabase("timebank_bench", TIMEBANK_LEDGER_SEAL_SETTLE_SECONDS="0")
DB = DATABASE.name
TPCB_DB = "timebank_bench_tpcb"
BENCH_URL = DATABASE.url
ACCOUNTS = 10_000
CLIENTS = 8


def make_accounts(count: int, funding: int) -> tuple[int, int]:
    """``count`` member accounts with consecutive ids, each funded; returns (first id, fund id)."""
    from timebank.ledger import services as ledger
    from timebank.ledger.models import Account, AccountKind
    from timebank.regions import services as regions
    from timebank.regions.models import Region

    if not Region.objects.filter(code="310101023001").exists():
        regions.regions_import_shipped(actor=None, name="shanghai")
    home = Region.objects.get(code="310101023001")
    fund = ledger.system_account(kind=AccountKind.PUBLIC_FUND, region=home)
    accounts = Account.objects.bulk_create(
        [
            Account(kind=AccountKind.MEMBER, normal_side="credit", region=home, area="310000", floor=0)
            for _ in range(count)
        ]
    )
    ids = sorted(a.pk for a in accounts)
    assert ids == list(range(ids[0], ids[0] + count)), "account ids must be consecutive"
    for start in range(0, count if funding else 0, 2000):
        ledger.transactions_post_batch(
            [
                ledger.PostRequest(
                    idempotency_key=f"fund-{i}",
                    kind="funding",
                    legs=(ledger.Leg(fund.pk, -funding), ledger.Leg(i, funding)),
                )
                for i in ids[start : start + 2000]
            ]
        )
    return ids[0], fund.pk


PGBENCH_TRANSFER = r"""
\set a random(0, :n - 1)
\set d random(1, :n - 1)
\set src :base + :a
\set dst :base + (:a + :d) % :n
\set m random(1, 60)
\set neg -1 * :m
SELECT ledger_post('pgb-' || :client_id || '-' || md5(random()::text || clock_timestamp()::text), 'x',
    'transfer', '', NULL, '', '', '', NULL, NULL,
    ARRAY[:src::bigint, :dst::bigint], ARRAY[:neg::bigint, :m::bigint]);
"""


def pgbench(args: list[str], db: str) -> float:
    out = subprocess.run(
        ["pgbench", *args, f"{SERVER}/" + db], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(
        r"tps = ([\d.]+) \((?:without initial connection time|excluding connections establishing)", out
    )
    if match is None:
        raise RuntimeError(out)
    return float(match.group(1))


def _service_worker(args: tuple[int, int, float, int]) -> tuple[int, int]:
    base, count, seconds, seed = args
    DATABASE.setup_django()
    from django.db import connection

    from timebank.ledger import errors
    from timebank.ledger import services as ledger

    rng = random.Random(seed)
    done = refused = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        a = rng.randrange(count)
        b = (a + rng.randrange(1, count)) % count
        try:
            ledger.transfer(
                idempotency_key=uuid.uuid4().hex,
                source=base + a,
                destination=base + b,
                minutes=rng.randint(1, 60),
            )
            done += 1
        except errors.LedgerError:
            refused += 1
    connection.close()
    return done, refused


def bench_transfer(seconds: float) -> dict[str, Any]:
    base, _fund = make_accounts(ACCOUNTS, 1_000_000)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(PGBENCH_TRANSFER)
    common = [
        "-n",
        "-c",
        str(CLIENTS),
        "-j",
        "2",
        "-T",
        str(int(seconds)),
        "-D",
        f"n={ACCOUNTS}",
        "-D",
        f"base={base}",
    ]
    # The strict reference: prepared statements, like the service's hot path (engine._call_prepared).
    pg_tps = pgbench([*common, "-M", "prepared", "-f", script.name], DB)
    # pgbench's default protocol, for comparison: the query text is parsed and planned on every call.
    pg_simple_tps = pgbench([*common, "-M", "simple", "-f", script.name], DB)
    ctx = mp.get_context("spawn")
    started = time.perf_counter()
    with ctx.Pool(CLIENTS) as pool:
        results = pool.map(_service_worker, [(base, ACCOUNTS, seconds, i) for i in range(CLIENTS)])
    elapsed = time.perf_counter() - started
    done = sum(r[0] for r in results)
    # Workers start up (import Django) before the clock in each runs; count only their own measured time.
    service_tps = done / seconds
    psql(f"DROP DATABASE IF EXISTS {TPCB_DB}")
    psql(f"CREATE DATABASE {TPCB_DB}")
    subprocess.run(
        ["pgbench", "-i", "-q", "-s", "10", f"{SERVER}/" + TPCB_DB],
        check=True,
        capture_output=True,
    )
    tpcb_tps = pgbench(["-n", "-c", str(CLIENTS), "-j", "2", "-T", str(int(seconds))], TPCB_DB)
    psql(f"DROP DATABASE IF EXISTS {TPCB_DB}")
    return {
        "clients": CLIENTS,
        "accounts": ACCOUNTS,
        "seconds": seconds,
        "pgbench_same_transfer_tps": round(pg_tps, 1),
        "ledger_service_tps": round(service_tps, 1),
        "ratio": round(service_tps / pg_tps, 3),
        "pgbench_same_transfer_simple_protocol_tps": round(pg_simple_tps, 1),
        "ratio_to_simple_protocol": round(service_tps / pg_simple_tps, 3),
        "pgbench_tpcb_tps": round(tpcb_tps, 1),
        "service_refused": sum(r[1] for r in results),
        "wall_seconds": round(elapsed, 1),
    }


def bench_batch(records: int = 10_000) -> dict[str, Any]:
    from timebank.ledger import services as ledger

    base, fund = make_accounts(2_000, 0)
    requests = [
        ledger.PostRequest(
            idempotency_key=f"approve-{uuid.uuid4().hex}",
            kind="service_credit",
            legs=(ledger.Leg(fund, -60), ledger.Leg(base + (i % 2_000), 60)),
            ref_type="care.order",
            ref_id=str(i),
        )
        for i in range(records)
    ]
    started = time.perf_counter()
    ledger.transactions_post_batch(requests)
    elapsed = time.perf_counter() - started
    return {
        "records": records,
        "postings": 2 * records,
        "seconds": round(elapsed, 2),
        "postings_per_second": round(2 * records / elapsed),
    }


def bench_verify(transactions: int) -> dict[str, Any]:
    from django.db import connection

    from timebank.ledger.sealing import ledger_seal_all
    from timebank.ledger.verify import ledger_verify

    base, _fund = make_accounts(1_000, 10**9)
    before = bench_reads()
    have = 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM ledger_transaction")
        have = cursor.fetchone()[0]
    started = time.perf_counter()
    step = 20_000
    for start in range(have, transactions, step):
        size = min(step, transactions - start)
        with connection.cursor() as cursor:  # the same function, called in bulk inside the database
            cursor.execute(
                "SELECT count(ledger_post('v-' || g, 'x', 'transfer', '', NULL, '', '', '', NULL, NULL, "
                "ARRAY[%s + g %% 1000, %s + (g %% 1000 + 1 + (g / 1000) %% 999) %% 1000]::bigint[], "
                "ARRAY[-1, 1]::bigint[])) FROM generate_series(%s, %s) g",
                [base, base, start, start + size - 1],
            )
    fill = time.perf_counter() - started
    started = time.perf_counter()
    ledger_seal_all(settle_seconds=0)
    seal = time.perf_counter() - started
    started = time.perf_counter()
    report = ledger_verify()
    elapsed = time.perf_counter() - started
    assert report.ok, report.summary()
    return {
        "transactions": report.transactions,
        "postings": report.postings,
        "blocks": report.blocks,
        "fill_seconds": round(fill, 1),
        "seal_seconds": round(seal, 1),
        "verify_seconds": round(elapsed, 1),
        "summary": report.summary(),
        "reads_before_fill": before,
    }


def bench_reads() -> dict[str, Any]:
    from django.db import connection

    from timebank.ledger.selectors import account_balance, account_statement

    with connection.cursor() as cursor:
        cursor.execute("SELECT account_id, count(*) FROM ledger_posting GROUP BY account_id ORDER BY 2 DESC")
        rows = cursor.fetchall()
    busiest, quiet = rows[0], rows[-1]

    def timed(fn: Any) -> float:
        samples = []
        for _ in range(200):
            started = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - started)
        return round(statistics.median(samples) * 1e6, 1)

    total = sum(r[1] for r in rows)
    return {
        "postings_in_ledger": total,
        "busiest_account_entries": busiest[1],
        "quiet_account_entries": quiet[1],
        "balance_us_busiest": timed(lambda: account_balance(busiest[0])),
        "balance_us_quiet": timed(lambda: account_balance(quiet[0])),
        "statement_page_us_busiest": timed(lambda: account_statement(busiest[0], limit=50)),
        "statement_page_us_quiet": timed(lambda: account_statement(quiet[0], limit=50)),
        "statement_deep_page_us_busiest": timed(
            lambda: account_statement(busiest[0], before=busiest[1] // 2, limit=50)
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--verify-transactions", type=int, default=1_000_000)
    parser.add_argument(
        "--only",
        nargs="*",
        default=["transfer", "batch", "verify", "reads"],
        help="reads measures after verify's fill; verify also measures reads before it",
    )
    args = parser.parse_args()
    DATABASE.fresh()
    DATABASE.setup_django()
    results: dict[str, Any] = {
        "command": "python bench/ledger_bench.py " + " ".join(sys.argv[1:]),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    if "transfer" in args.only:
        results["transfer"] = bench_transfer(args.seconds)
        print(json.dumps(results["transfer"]), flush=True)
    if "batch" in args.only:
        results["batch"] = bench_batch()
        print(json.dumps(results["batch"]), flush=True)
    if "verify" in args.only:
        results["verify"] = bench_verify(args.verify_transactions)
        print(json.dumps(results["verify"]), flush=True)
    if "reads" in args.only:
        results["reads"] = bench_reads()
        print(json.dumps(results["reads"]), flush=True)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "ledger.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
