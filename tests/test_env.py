"""TIMEBANK_DATABASE_URL and the other environment variables, read the way settings read them."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from timebank.config.env import env_bool, env_int, env_list, parse_database_url


def test_an_absolute_sqlite_path():
    # given an absolute sqlite URL / when it is parsed / then the file is the path after the third slash
    config = parse_database_url("sqlite:////srv/timebank/db.sqlite3")
    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert config["NAME"] == "/srv/timebank/db.sqlite3"


def test_a_relative_sqlite_path():
    # given a relative sqlite URL / when parsed / then the path is relative
    assert parse_database_url("sqlite:///var/t.sqlite3")["NAME"] == "var/t.sqlite3"


def test_sqlite_in_memory():
    # given an in-memory URL / when parsed / then it is the in-memory database
    assert parse_database_url("sqlite:///:memory:")["NAME"] == ":memory:"


def test_sqlite_gets_pragmas_and_immediate_transactions():
    # given any sqlite URL / when parsed / then writes do not deadlock and foreign keys are enforced
    options = parse_database_url("sqlite:///x.sqlite3")["OPTIONS"]
    assert options["transaction_mode"] == "IMMEDIATE"
    assert "foreign_keys=ON" in options["init_command"]


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "pgsql", "POSTGRES"])
def test_a_full_postgres_url(scheme):
    # given a PostgreSQL URL with credentials, port, escaped characters and options
    url = f"{scheme}://tb%40app:p%40ss%2Fw@db.example.org:5433/time%20bank?sslmode=require&conn_max_age=0"
    # when it is parsed
    config = parse_database_url(url)
    # then every part lands in its place, unescaped
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert config["NAME"] == "time bank"
    assert (config["USER"], config["PASSWORD"]) == ("tb@app", "p@ss/w")
    assert (config["HOST"], config["PORT"]) == ("db.example.org", "5433")
    assert config["CONN_MAX_AGE"] == 0
    assert config["OPTIONS"] == {"sslmode": "require"}


def test_a_minimal_postgres_url():
    # given the URL the test suite uses / when parsed / then no credentials or port, connections kept a minute
    config = parse_database_url("postgres://postgres@127.0.0.1:5432/tb_web")
    assert (config["NAME"], config["USER"], config["PASSWORD"]) == ("tb_web", "postgres", "")
    assert (config["HOST"], config["PORT"]) == ("127.0.0.1", "5432")
    assert config["CONN_MAX_AGE"] == 60
    assert config["OPTIONS"] == {}


@pytest.mark.parametrize(
    "url",
    [
        "mysql://root@localhost/timebank",
        "oracle://x/y",
        "db.sqlite3",
        "",
        "sqlite:///",
        "postgres://postgres@127.0.0.1:5432/",
        "postgres://postgres@127.0.0.1:5432",
    ],
)
def test_a_url_that_cannot_work_is_refused_clearly(url):
    # given a URL with an unsupported scheme or a missing database name
    # when it is parsed / then configuration stops with a message naming the variable
    with pytest.raises(ImproperlyConfigured, match="TIMEBANK_DATABASE_URL"):
        parse_database_url(url)


@pytest.mark.parametrize(
    "url", ["postgres://u@db.example.org:notaport/tb", "postgres://u@db.example.org/tb?conn_max_age=forever"]
)
def test_a_malformed_number_in_a_postgres_url_is_refused_clearly(url):
    # given a URL whose port or connection age is not a number
    # when it is parsed / then configuration stops with a message naming the variable, like env_int does
    with pytest.raises(ImproperlyConfigured, match="TIMEBANK_DATABASE_URL"):
        parse_database_url(url)


def test_a_mistyped_mysql_url_does_not_echo_the_password():
    # given a password inside an unsupported URL
    # when it is refused / then the message does not show the password
    with pytest.raises(ImproperlyConfigured) as caught:
        parse_database_url("mysql://root:s3cret-pw@localhost/timebank")
    assert "s3cret-pw" not in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "value"), [("1", True), ("yes", True), (" On ", True), ("0", False), ("", False)]
)
def test_env_bool(monkeypatch, raw, value):
    # given a boolean variable / when read / then the usual words count
    monkeypatch.setenv("TIMEBANK_X", raw)
    assert env_bool("TIMEBANK_X", not value) is value


def test_env_bool_refuses_other_words(monkeypatch):
    # given a typo / when read / then it is refused with the variable's name
    monkeypatch.setenv("TIMEBANK_X", "ture")
    with pytest.raises(ImproperlyConfigured, match="TIMEBANK_X"):
        env_bool("TIMEBANK_X", False)


def test_env_int_and_list(monkeypatch):
    # given numbers and lists in the environment / when read / then parsed, blanks ignored
    monkeypatch.setenv("TIMEBANK_N", "7")
    monkeypatch.setenv("TIMEBANK_L", " a.example , ,b.example,")
    monkeypatch.setenv("TIMEBANK_BAD", "seven")
    assert env_int("TIMEBANK_N", 1) == 7
    assert env_list("TIMEBANK_L", []) == ["a.example", "b.example"]
    assert env_int("TIMEBANK_UNSET_FOR_TEST", 3) == 3
    with pytest.raises(ImproperlyConfigured, match="TIMEBANK_BAD"):
        env_int("TIMEBANK_BAD", 1)
