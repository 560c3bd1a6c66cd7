"""Schemathesis against the live OpenAPI document: every operation, with valid and invalid input, signed in as
station staff and as an elder, in a small world with services, savings and a shop. No answer may be a server
error, and every answer must match what the document says of its status, type and shape (the error format
included). ``TIMEBANK_FUZZ_EXAMPLES`` sets how many examples each operation gets (default 25)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis import checks

from timebank.api.tests.conftest import bearer
from timebank.care.tests.conftest import user_of
from timebank.people.models import Member, User

EXAMPLES = int(os.environ.get("TIMEBANK_FUZZ_EXAMPLES", "25"))


@pytest.fixture(autouse=True)
def connection_kept() -> Iterator[None]:
    """The application is called as a server calls it, whose requests close the database connection when
    they end; Django's own test client keeps it open (the test's transaction lives on it), and so do we."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def world(
    db: None, station: User, old_elder: Member, helper: Member, son: Member, post: Any, rice: Any
) -> None:
    post()  # an open request, so that some numbers lead somewhere


@pytest.fixture
def as_station(world: None, station: User) -> dict[str, str]:
    return {"Authorization": bearer(station, station)["HTTP_AUTHORIZATION"]}


@pytest.fixture
def as_elder(world: None, old_elder: Member) -> dict[str, str]:
    elder = user_of(old_elder)
    return {"Authorization": bearer(elder, elder)["HTTP_AUTHORIZATION"]}


# the live document, asked of the application itself (it reads no database)
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@schema.parametrize()
@FUZZ
def test_no_operation_fails_or_breaks_its_document_for_station_staff(
    case: Any, as_station: dict[str, str]
) -> None:
    case.call_and_validate(headers=as_station, checks=CHECKS)


@schema.parametrize()
@FUZZ
def test_no_operation_fails_or_breaks_its_document_for_an_elder(case: Any, as_elder: dict[str, str]) -> None:
    case.call_and_validate(headers=as_elder, checks=CHECKS)


def test_every_schema_has_its_own_name() -> None:
    """Two schema classes of one name would share one entry of the document, and one would describe the
    other's answers wrongly."""
    from ninja import Schema

    from timebank.api import endpoints  # noqa: F401 (registers every module)

    def every(cls: type) -> list[type]:
        return [cls] + [c for sub in cls.__subclasses__() for c in every(sub)]

    ours = [c for c in every(Schema) if c.__module__.startswith("timebank.")]
    names = [c.__name__ for c in ours]
    assert sorted({n for n in names if names.count(n) > 1}) == []
