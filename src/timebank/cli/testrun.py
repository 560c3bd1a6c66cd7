"""Run the whole suite on SQLite and on PostgreSQL (when it answers), then ruff and mypy.

``make test`` calls this. It says which databases it ran on; under CI (``CI=true``) an unreachable
PostgreSQL is a failure, not a skip.

The browser tests (``tests/browser``: Debian's Chromium driven by Playwright, axe-core from npm) run on the
SQLite pass only. Before it, axe-core is installed with ``npm ci`` when missing; without Chromium, a CJK font
or npm they are skipped with the reason, except under CI, where that is a failure.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
BROWSER_TESTS = "tests/browser"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = Path(os.environ.get("TIMEBANK_CHROMIUM", "/usr/bin/chromium"))
BROWSER_PACKAGES = "make browser-deps (apt-get install chromium fonts-noto-cjk; npm ci)"


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


def has_cjk_font() -> bool:
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return False
    try:
        listed = subprocess.run(
            [fc_list, ":lang=zh", "family"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return bool(listed.stdout.strip())


def browser_lacks() -> list[str]:
    """What the browser tests need and this machine lacks (they skip, or fail under CI, without it)."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"Chromium at {CHROMIUM} (Debian package chromium)")
    if not has_cjk_font():
        missing.append("a CJK font, without which Chinese renders as empty boxes (Debian fonts-noto-cjk)")
    if not AXE.exists():
        missing.append("axe-core in node_modules/ (npm ci)")
    return missing


def browser_tools() -> list[str]:
    """Install axe-core with ``npm ci`` if it is missing; return what the browser tests still lack."""
    if not AXE.exists():
        npm = shutil.which("npm")
        if npm is None:
            print("=== npm is missing: axe-core cannot be installed ===", flush=True)
        else:
            print("=== installing axe-core for the browser tests: npm ci ===", flush=True)
            subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=ROOT, check=False)
    return browser_lacks()


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
        missing = browser_tools()
        if missing:
            print(f"\n=== browser tests lack: {'; '.join(missing)} ===")
            if in_ci:
                print("=== under CI that is a FAILURE: .ci/run installs them on a clean machine ===")
                failed = True
            else:
                print(f"=== the browser tests will be SKIPPED; to run them: {BROWSER_PACKAGES} ===")
        else:
            print("\n=== browser tests (Chromium, axe-core) run on this SQLite pass ===")
        code, counts = run_pytest(
            "SQLite", "sqlite:///" + str(ROOT / "var" / "test.sqlite3"), args.pytest_args
        )
        results.append(("SQLite", code, counts))
    if args.only in (None, "postgres"):
        ok, detail = postgres_reachable(args.postgres_url)
        if ok:
            print(f"\n=== browser tests ({BROWSER_TESTS}): on the SQLite pass only, not on this one ===")
            code, counts = run_pytest(
                detail, args.postgres_url, [f"--ignore={BROWSER_TESTS}", *args.pytest_args]
            )
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
