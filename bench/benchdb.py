"""What every benchmark shares: its own PostgreSQL database (dropped and migrated afresh), the environment the
`timebank` command and Django run with against it, and psql for the odd statement. ``BENCH_PG_ADMIN`` names
the server (default ``postgres://postgres@127.0.0.1:5432/postgres``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ADMIN_URL = os.environ.get("BENCH_PG_ADMIN", "postgres://postgres@127.0.0.1:5432/postgres")
SERVER = ADMIN_URL.rsplit("/", 1)[0]


class BenchDatabase:
    def __init__(self, name: str, **extra_env: str) -> None:
        self.name = name
        self.url = f"{SERVER}/{name}"
        self.extra_env = extra_env

    def env(self) -> dict[str, str]:
        """The environment of a process (the `timebank` command, a server) working on this database."""
        return dict(
            os.environ,
            TIMEBANK_DATABASE_URL=self.url,
            TIMEBANK_VAR_DIR=str(ROOT / "var" / "bench"),
            DJANGO_SETTINGS_MODULE="timebank.config.settings.dev",
            TIMEBANK_DEBUG="false",
            **self.extra_env,
        )

    def fresh(self) -> None:
        """Drop the database, create it again and migrate it."""
        psql(f"DROP DATABASE IF EXISTS {self.name}")
        psql(f"CREATE DATABASE {self.name}")
        subprocess.run(
            [sys.executable, "-m", "timebank.cli.main", "migrate", "-v0"], env=self.env(), check=True
        )

    def setup_django(self) -> None:
        """Django in this process, on this database."""
        os.environ.update(self.env())
        import django

        django.setup()


def psql(sql: str, db: str = "postgres") -> None:
    subprocess.run(["psql", f"{SERVER}/{db}", "-q", "-c", sql], check=True, stdout=subprocess.DEVNULL)
