"""Every member gets a time account at registration, limited by the policy in force where they live."""

from __future__ import annotations

import datetime as dt

import pytest

from timebank.conftest import make_id_number, staff
from timebank.ledger.models import AccountKind
from timebank.people import services as people
from timebank.people.models import Role
from timebank.regions import services as regions

NANJING_TREE = """code,name,name_en,level,parent_code
320000,江苏省,Jiangsu,province,
320100,南京市,Nanjing,city,320000
320102,玄武区,Xuanwu District,district,320100
320102002,梅园新村街道,Meiyuan Xincun Subdistrict,street,320102
320102002001,梅园新村社区,Meiyuan Xincun Community,community,320102002
"""


def test_a_new_member_has_an_empty_time_account_at_home(yandang_staff, elder, tree):
    # then
    account = elder.account
    assert account is not None
    assert (account.kind, account.balance, account.held, account.floor, account.cap) == (
        AccountKind.MEMBER,
        0,
        0,
        0,
        None,
    )
    assert account.area == "310000"


def test_under_the_nanjing_rules_the_account_is_capped_at_1500_hours(admin_user, db):
    # given the Nanjing preset in force in Nanjing
    regions.regions_import_csv(actor=None, text=NANJING_TREE)
    from timebank.regions.models import Region

    regions.policy_load_preset(
        actor=None,
        preset="nanjing-2019",
        region=Region.objects.get(code="320100"),
        effective_from=dt.date(2019, 7, 1),
    )
    home = Region.objects.get(code="320102002001")
    nanjing_staff = staff(admin_user, "nanjing-staff", Role.COMMUNITY_STAFF, home)

    # when
    member = people.member_register(
        actor=nanjing_staff,
        name="王秀兰",
        home_region=home,
        id_number=make_id_number(dt.date(1955, 5, 5), "F", "320102", serial=5),
    )

    # then
    assert member.account is not None
    assert member.account.cap == 1500 * 60
    assert member.account.area == "320000"


@pytest.mark.parametrize("credit_line", [0, 120])
def test_a_policy_credit_line_lowers_the_floor(admin_user, tree, credit_line):
    # given a policy with a credit line on the district
    rules = regions.policy_preset_rules("shanghai-2026") | {"credit_line_minutes": credit_line}
    regions.policy_create(actor=None, region=tree["310101"], effective_from=dt.date(2020, 1, 1), rules=rules)
    registrar = staff(admin_user, "registrar", Role.COMMUNITY_STAFF, tree["310101023001"])

    # when
    member = people.member_register(actor=registrar, name="赵建平", home_region=tree["310101023001"])

    # then
    assert member.account is not None
    assert member.account.floor == -credit_line
