"""Shared fixtures: a small region tree (two districts, two streets, three communities), staff of each role,
and members — all built through the real services."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

from timebank.people import services as people
from timebank.people.models import Member, Role, User
from timebank.people.validators import id_check_digit
from timebank.regions import services as regions
from timebank.regions.models import Region

TREE_CSV = """code,name,name_en,level,parent_code
310000,上海市,Shanghai,province,
310100,市辖区,Shanghai Municipal Districts,city,310000
310101,黄浦区,Huangpu District,district,310100
310109,虹口区,Hongkou District,district,310100
310101023,瑞金二路街道,Ruijin Erlu Subdistrict,street,310101
310109018,北外滩街道,North Bund Subdistrict,street,310109
310101023001,雁荡居委会,Yandang,community,310101023
310101023002,茂名居委会,Maoming,community,310101023
310109018021,晋阳居委会,Jinyang,community,310109018
"""
PASSWORD = "Correct-Horse-9"


def make_id_number(birth: dt.date, sex: str = "F", district: str = "310101", serial: int = 1) -> str:
    seq = f"{serial % 100:02d}{(1 if sex == 'M' else 0) + 2 * (serial % 4)}"
    first17 = f"{district}{birth:%Y%m%d}{seq}"
    return first17 + id_check_digit(first17)


@pytest.fixture
def postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")


@pytest.fixture
def tree(db: None) -> dict[str, Region]:
    regions.regions_import_csv(actor=None, text=TREE_CSV)
    return {r.code: r for r in Region.objects.all()}


@pytest.fixture
def admin_user(db: None) -> User:
    return User.objects.create_superuser("root-admin", password=PASSWORD)


def staff(admin: User, username: str, role: str, region: Region) -> User:
    user = people.staff_user_create(actor=admin, username=username, password=PASSWORD)
    people.staff_grant_create(actor=admin, user=user, role=role, region=region)
    return User.objects.get(pk=user.pk)


@pytest.fixture
def yandang_staff(admin_user: User, tree: dict[str, Region]) -> User:
    return staff(admin_user, "yandang-staff", Role.COMMUNITY_STAFF, tree["310101023001"])


@pytest.fixture
def yandang_clerk(admin_user: User, tree: dict[str, Region]) -> User:
    """A second staff member of 雁荡: proposes what yandang_staff then decides (nobody decides their own)."""
    return staff(admin_user, "yandang-clerk", Role.STATION_STAFF, tree["310101023001"])


@pytest.fixture
def jinyang_staff(admin_user: User, tree: dict[str, Region]) -> User:
    return staff(admin_user, "jinyang-staff", Role.COMMUNITY_STAFF, tree["310109018021"])


@pytest.fixture
def elder(yandang_staff: User, tree: dict[str, Region]) -> Member:
    return people.member_register(
        actor=yandang_staff,
        name="朱德林",
        home_region=tree["310101023001"],
        mobile="13901000008",
        id_number=make_id_number(dt.date(1940, 3, 5), "M", serial=8),
        is_elder=True,
        health_notes="高血压",
    )


@pytest.fixture
def jinyang_elder(jinyang_staff: User, tree: dict[str, Region]) -> Member:
    return people.member_register(
        actor=jinyang_staff,
        name="褚凤仙",
        home_region=tree["310109018021"],
        mobile="13902000003",
        id_number=make_id_number(dt.date(1936, 7, 9), "F", "310109", serial=3),
        is_elder=True,
    )
