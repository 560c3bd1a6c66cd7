"""Fixtures for the web tests: signed-in clients and a few more members, all made through the services."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from timebank.conftest import PASSWORD, make_id_number
from timebank.people import services as people
from timebank.people.models import Member, User
from timebank.regions.models import Region


@pytest.fixture
def staff_client(client: Client, yandang_staff: User) -> Client:
    client.force_login(yandang_staff)
    return client


@pytest.fixture
def volunteer(yandang_staff: User, tree: dict[str, Region]) -> Member:
    return people.member_register(
        actor=yandang_staff,
        name="李秀英",
        home_region=tree["310101023001"],
        mobile="13901000001",
        id_number=make_id_number(dt.date(1958, 6, 1), "F", serial=1),
        is_volunteer=True,
    )


@pytest.fixture
def relative(yandang_staff: User, tree: dict[str, Region]) -> Member:
    """The elder's son, registered in the same community."""
    return people.member_register(
        actor=yandang_staff, name="朱晓东", home_region=tree["310101023001"], mobile="13901000016"
    )


@pytest.fixture
def member_user(yandang_staff: User, elder: Member) -> User:
    """The elder's own sign-in (username ``zhu-delin``, the elder's mobile number)."""
    return people.member_sign_in_create(
        actor=yandang_staff, member=elder, username="zhu-delin", password=PASSWORD
    )
