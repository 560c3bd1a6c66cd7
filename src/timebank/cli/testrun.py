"""Run the whole suite on SQLite and on PostgreSQL (when it answers), then ruff and mypy.

``make test`` calls this. It says which databases it ran on; under CI (``CI=true``) an unreachable
PostgreSQL is a failure, not a skip.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def postgres_reachable(url: str) -> tuple[bool, str]:
    try:
        import psycopg

        from timebank.config.env import parse_database_url

        cfg = parse_database_url(url)
        with psycopg.connect(
            host=cfg["HOST"],
            port=cfg["PORT"] or 5432,
            user=cfg["USER"],
            password=cfg["PASSWORD"],
            dbname="postgres",
            connect_timeout=3,
        ) as conn:
            version = conn.execute("SHOW server_version").fetchone()
        return True, f"PostgreSQL {version[0] if version else '?'}"
    except Exception as exc:  # any failure means "not reachable"; the reason is printed
        return False, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def run_pytest(label: str, database_url: str, extra: list[str]) -> tuple[int, dict[str, int]]:
    print(f"\n=== tests on {label} ({database_url}) ===", flush=True)
    env = dict(os.environ, TIMEBANK_DATABASE_URL=database_url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    tail: list[str] = []
    for line in proc.stdout:
        sys.stdout.write(line)
        tail = [*tail, line][-5:]
    code = proc.wait()
    counts = dict.fromkeys(("passed", "failed", "error", "skipped"), 0)
    for line in tail:
        for number, word in re.findall(r"(\d+) (passed|failed|errors?|skipped)", line):
            counts["error" if word.startswith("error") else word] += int(number)
    return code, counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres-url", default="postgres://postgres@127.0.0.1:5432/timebank")
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument("--no-lint", action="store_true")
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args()
    in_ci = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
    results: list[tuple[str, int, dict[str, int]]] = []
    failed = False

    if args.only in (None, "sqlite"):
        code, counts = run_pytest(
            "SQLite", "sqlite:///" + str(ROOT / "var" / "test.sqlite3"), args.pytest_args
        )
        results.append(("SQLite", code, counts))
    if args.only in (None, "postgres"):
        ok, detail = postgres_reachable(args.postgres_url)
        if ok:
            code, counts = run_pytest(detail, args.postgres_url, args.pytest_args)
            results.append((detail, code, counts))
        else:
            print(f"\n=== PostgreSQL not reachable at {args.postgres_url}: {detail} ===")
            if in_ci or args.only == "postgres":
                failed = True
            else:
                print("=== the PostgreSQL run was SKIPPED; start PostgreSQL to run it ===")

    if not args.no_lint and args.only is None:
        for tool in (["ruff", "check", "src", "tests", "bench"], ["mypy", "src", "tests", "bench"]):
            print(f"\n=== {' '.join(tool)} ===", flush=True)
            if subprocess.call([sys.executable, "-m", *tool], cwd=ROOT) != 0:
                failed = True

    print("\n=== summary ===")
    passed = sum(c["passed"] for _l, _c, c in results)
    failures = sum(c["failed"] + c["error"] for _l, _c, c in results)
    for label, code, counts in results:
        state = "ok" if code == 0 else f"FAILED (exit {code})"
        passed_n, failed_n, errors_n = counts["passed"], counts["failed"], counts["error"]
        print(f"{label}: {passed_n} passed, {failed_n} failed, {errors_n} errors, {state}")
        failed = failed or code != 0
    if not results:
        failed = True
    print(f"tests: {passed} passed, {failures} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
