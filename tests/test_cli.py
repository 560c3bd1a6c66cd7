"""The ``timebank`` command as an operator runs it: in a fresh process, configured only by the environment."""

from __future__ import annotations

import os
import re
import secrets
import string
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

EXPECTED_COMMANDS = ["demo", "seed-demo", "serve", "migrate", "regions", "policies", "createsuperuser"]


def _clean_env(**values: str) -> dict[str, str]:
    """The parent's environment without any TimeBank or Django setting, plus ``values``."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_") and k != "DJANGO_SETTINGS_MODULE"
    }
    env.update(values)
    return env


def _timebank(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "timebank.cli.main", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _random_secret_key() -> str:
    alphabet = string.ascii_letters + string.digits + "!@#%^&*(-_=+)"
    while True:
        key = "".join(secrets.choice(alphabet) for _ in range(64))
        if any(c.islower() for c in key) and any(c.isupper() for c in key) and any(c.isdigit() for c in key):
            return key


def _production_env(tmp_path: Path) -> dict[str, str]:
    return _clean_env(
        DJANGO_SETTINGS_MODULE="timebank.config.settings.production",
        TIMEBANK_SECRET_KEY=_random_secret_key(),
        TIMEBANK_ALLOWED_HOSTS="timebank.example.org",
        TIMEBANK_FIELD_KEYS=Fernet.generate_key().decode(),
        TIMEBANK_FIELD_HASH_KEY=secrets.token_urlsafe(32),
        TIMEBANK_LEDGER_SIGNING_KEY=secrets.token_hex(32),
        TIMEBANK_DATABASE_URL=f"sqlite:///{tmp_path}/x.sqlite3",
        TIMEBANK_VAR_DIR=str(tmp_path),
    )


def test_production_settings_pass_the_deployment_checklist(tmp_path):
    # given production settings with every secret set
    env = _production_env(tmp_path)
    # when the deployment check runs, failing on warnings
    result = _timebank("check", "--deploy", "--fail-level", "WARNING", env=env, cwd=tmp_path)
    # then there is nothing to warn about
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "no issues" in output


@pytest.mark.parametrize(
    "missing",
    ["TIMEBANK_SECRET_KEY", "TIMEBANK_FIELD_KEYS", "TIMEBANK_FIELD_HASH_KEY", "TIMEBANK_LEDGER_SIGNING_KEY"],
)
def test_production_settings_refuse_to_start_without_a_secret(tmp_path, missing):
    # given production settings with one secret left out
    env = _production_env(tmp_path)
    del env[missing]
    # when anything starts
    result = _timebank("check", "--deploy", env=env, cwd=tmp_path)
    # then it refuses, naming what is missing
    assert result.returncode != 0
    assert missing in result.stderr
    assert "no issues" not in result.stdout


def test_production_settings_refuse_an_empty_secret_key(tmp_path):
    # given production settings whose secret key is set but empty
    env = _production_env(tmp_path)
    env["TIMEBANK_SECRET_KEY"] = ""
    # when anything starts / then it refuses, naming the key
    result = _timebank("check", env=env, cwd=tmp_path)
    assert result.returncode != 0
    assert "TIMEBANK_SECRET_KEY" in result.stderr


def test_help_lists_the_operator_commands_with_a_line_each(tmp_path):
    # given a fresh machine (only a var directory)
    env = _clean_env(TIMEBANK_VAR_DIR=str(tmp_path))
    # when the operator asks for help
    result = _timebank("--help", env=env, cwd=tmp_path)
    # then the commands an operator needs are listed, each with a one-line description
    assert result.returncode == 0, result.stderr
    described = dict(re.findall(r"^  (\S+) +(\S.*)$", result.stdout, re.M))
    for command in EXPECTED_COMMANDS:
        assert command in described, f"{command} is not listed:\n{result.stdout}"
        assert described[command].strip(), f"{command} has no description"
    assert "seed_demo" not in described


def test_help_needs_no_database(tmp_path):
    # given a var directory with nothing in it
    env = _clean_env(TIMEBANK_VAR_DIR=str(tmp_path))
    # when the operator asks for help
    result = _timebank("help", env=env, cwd=tmp_path)
    # then it answers without creating a database
    assert result.returncode == 0, result.stderr
    assert "seed-demo" in result.stdout
    assert not list(tmp_path.glob("*.sqlite3"))


def test_dashed_names_reach_the_django_commands(tmp_path):
    # given a fresh var directory
    env = _clean_env(TIMEBANK_VAR_DIR=str(tmp_path))
    # when a command is called by its dashed name
    result = _timebank("seed-demo", "--help", env=env, cwd=tmp_path)
    # then it is the seed_demo command's own help
    assert result.returncode == 0, result.stderr
    assert "demo" in result.stdout.lower()
