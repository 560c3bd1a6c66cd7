"""Jurisdiction policies: the shipped presets, versioning, and refusal of bad rules without a trace."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import translation

from timebank.audit.models import AuditEvent
from timebank.common.errors import NotFound, ValidationFailed
from timebank.regions.models import Policy, ServiceCategory
from timebank.regions.services import (
    PRESETS,
    policy_create,
    policy_load_file,
    policy_load_preset,
    policy_preset_rules,
)

JAN_1 = dt.date(2026, 1, 1)
SHANGHAI_CATEGORIES = [
    "emotional_support",
    "assistance",
    "outing_companionship",
    "culture_recreation",
    "health_education",
    "legal_aid",
    "training_talks",
    "fraud_prevention",
    "other",
]
# The research paper's further examples, offered under every preset (×1.0 outside the tiered proposal).
PAPER_EXAMPLES = ["home_visit", "hospital_medicine", "sudden_difficulty", "psychological_counselling"]
DROP = object()


def valid_rules(**changes: Any) -> dict[str, Any]:
    rules: dict[str, Any] = {
        "name": "测试政策",
        "minutes_per_coin": 60,
        "categories": [
            {"code": "assistance", "name": "生活协助", "name_en": "Assistance"},
            {
                "code": "legal_aid",
                "name": "法律援助",
                "name_en": "Legal aid",
                "tier": 3,
                "coefficient_permille": 1500,
                "requires_certification": "lawyer",
            },
        ],
    }
    for key, value in changes.items():
        if value is DROP:
            rules.pop(key, None)
        else:
            rules[key] = value
    return rules


def with_second_category(**changes: Any) -> list[dict[str, Any]]:
    second = dict(valid_rules()["categories"][1])
    for key, value in changes.items():
        if value is DROP:
            second.pop(key, None)
        else:
            second[key] = value
    return [valid_rules()["categories"][0], second]


def counts() -> tuple[int, int, int]:
    return Policy.objects.count(), ServiceCategory.objects.count(), AuditEvent.objects.count()


# --- presets ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_loads_with_all_its_categories(tree, preset):
    # given a preset's rules as shipped
    rules = policy_preset_rules(preset)

    # when it is loaded onto Shanghai
    policy = policy_load_preset(actor=None, preset=preset, region=tree["310000"], effective_from=JAN_1)

    # then it is version 1 with the preset's name and every category in file order
    policy.refresh_from_db()
    assert (policy.preset, policy.version, policy.effective_from) == (preset, 1, JAN_1)
    assert policy.name == rules["name"]
    assert policy.region == tree["310000"]
    assert list(policy.categories.values_list("code", flat=True)) == [c["code"] for c in rules["categories"]]


def test_shanghai_2026_has_the_product_figures(tree):
    # given the Shanghai 2026 preset
    # when it is loaded
    policy = policy_load_preset(
        actor=None, preset="shanghai-2026", region=tree["310000"], effective_from=JAN_1
    )

    # then it withdraws from 65 (60 in hardship), has its nine categories and the paper's four at ×1.0 (the
    # counselling one for certified counsellors), the five star levels, no goods
    policy.refresh_from_db()
    assert policy.withdrawal_age == 65
    assert policy.hardship_withdrawal_age == 60
    assert policy.min_volunteer_age == 18
    assert policy.minutes_per_coin == 60
    categories = list(policy.categories.all())
    assert [c.code for c in categories] == SHANGHAI_CATEGORIES[:-1] + PAPER_EXAMPLES + ["other"]
    assert {c.coefficient_permille for c in categories} == {1000}
    assert {c.code: c.requires_certification for c in categories if c.requires_certification} == {
        "psychological_counselling": "counsellor"
    }
    assert policy.star_thresholds_hours == [100, 300, 600, 1000, 1500]
    assert policy.goods_allowed is False
    assert policy.money_purchase_allowed is False
    assert policy.account_cap_minutes is None


def test_nanjing_2019_has_the_product_figures(tree):
    # given the Nanjing 2019 preset
    # when it is loaded
    policy = policy_load_preset(
        actor=None, preset="nanjing-2019", region=tree["310000"], effective_from=JAN_1
    )

    # then 1,500 hours per account with the excess pooled, withdrawal from 60, transfers to people 60+,
    # and group-earned time only donated
    policy.refresh_from_db()
    assert policy.account_cap_minutes == 90000
    assert policy.cap_overflow == "pool"
    assert policy.withdrawal_age == 60
    assert policy.hardship_withdrawal_age is None
    assert policy.transfer_recipient_min_age == 60
    assert policy.group_time_donation_only is True
    assert policy.categories.count() == 13  # the nine and the paper's four examples


def test_beijing_2022_has_the_product_figures(tree):
    # given the Beijing 2022 preset
    # when it is loaded
    policy = policy_load_preset(
        actor=None, preset="beijing-2022", region=tree["310000"], effective_from=JAN_1
    )

    # then no goods and no money, the spouse may withdraw, and transfers go to lineal relatives only
    policy.refresh_from_db()
    assert policy.goods_allowed is False
    assert policy.money_purchase_allowed is False
    assert policy.purchase_fen_per_coin is None
    assert policy.spouse_may_withdraw is True
    assert policy.withdrawal_age == 60
    assert sorted(policy.transfer_relations) == ["child", "grandchild", "grandparent", "parent"]


def test_the_paper_tiered_preset_weights_categories_by_tier(tree):
    # given the tiered proposal
    # when it is loaded
    policy = policy_load_preset(
        actor=None, preset="paper-tiered", region=tree["310000"], effective_from=JAN_1
    )

    # then three tiers at ×1.0, ×1.2 and ×1.5, and the skilled categories need a certificate
    categories = list(policy.categories.all())
    assert {c.tier: c.coefficient_permille for c in categories} == {1: 1000, 2: 1200, 3: 1500}
    assert {c.coefficient_permille for c in categories} == {1000, 1200, 1500}
    certified = {c.code: c.requires_certification for c in categories if c.requires_certification}
    assert certified == {
        "psychological_counselling": "counsellor",
        "legal_aid": "lawyer",
        "personal_care": "care_worker",
    }
    by_code = {c.code: c for c in categories}
    assert by_code["emotional_support"].coefficient_permille == 1000
    assert by_code["assistance"].coefficient_permille == 1200
    assert by_code["personal_care"].coefficient_permille == 1500
    assert by_code["other"].requires_certification == ""
    policy.refresh_from_db()
    assert policy.money_purchase_allowed is True
    assert policy.purchase_fen_per_coin == 2000
    assert policy.rounding_minutes == 15


def test_versions_count_up_per_region(tree):
    # given the shared tree
    # when two versions go onto Shanghai and one onto 虹口区
    first = policy_load_preset(
        actor=None, preset="shanghai-2026", region=tree["310000"], effective_from=JAN_1
    )
    hongkou = policy_load_preset(
        actor=None, preset="paper-tiered", region=tree["310109"], effective_from=JAN_1
    )
    second = policy_load_preset(
        actor=None, preset="nanjing-2019", region=tree["310000"], effective_from=dt.date(2026, 7, 1)
    )
    third = policy_create(
        actor=None, region=tree["310000"], effective_from=dt.date(2027, 1, 1), rules=valid_rules()
    )

    # then each region numbers its own versions from 1
    assert [first.version, second.version, third.version] == [1, 2, 3]
    assert hongkou.version == 1


def test_a_new_policy_is_audited(tree):
    # given the shared tree
    # when a preset is loaded
    policy = policy_load_preset(
        actor=None, preset="shanghai-2026", region=tree["310000"], effective_from=JAN_1
    )

    # then a "policy.created" event records its version, date and preset
    event = AuditEvent.objects.get(event_type="policy.created")
    assert event.subject_id == str(policy.pk)
    assert event.region == tree["310000"]
    new = event.new or {}
    assert new["version"] == 1
    assert new["effective_from"] == "2026-01-01"
    assert new["preset"] == "shanghai-2026"
    assert new["withdrawal_age"] == 65


@pytest.mark.parametrize("preset", ["shanghai-2025", "", "../presets/shanghai-2026"])
def test_an_unknown_preset_is_not_found(tree, preset):
    # given the shared tree
    before = counts()

    # when an unknown preset is loaded
    with pytest.raises(NotFound) as caught:
        policy_load_preset(actor=None, preset=preset, region=tree["310000"], effective_from=JAN_1)

    # then it is "preset_not_found" and nothing is written
    assert caught.value.code == "preset_not_found"
    assert counts() == before


# --- policy_create ----------------------------------------------------------------------------------------


def test_valid_rules_create_a_policy_with_defaults_and_categories(tree):
    # given rules that set only a few fields
    # when they are saved
    policy = policy_create(actor=None, region=tree["310101"], effective_from=JAN_1, rules=valid_rules())

    # then the rest take the model defaults and the categories keep their order, tier and coefficient
    policy.refresh_from_db()
    assert (policy.name, policy.version, policy.preset) == ("测试政策", 1, "")
    assert policy.withdrawal_age == 60
    assert policy.cap_overflow == "refuse"
    categories = list(policy.categories.all())
    assert [
        (c.code, c.tier, c.coefficient_permille, c.requires_certification, c.position) for c in categories
    ] == [
        ("assistance", 1, 1000, "", 0),
        ("legal_aid", 3, 1500, "lawyer", 1),
    ]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"minutes_per_coin": "60"}, "minutes_per_coin", id="string-for-int"),
        pytest.param({"minutes_per_coin": 60.0}, "minutes_per_coin", id="float-for-int"),
        pytest.param({"minutes_per_coin": None}, "minutes_per_coin", id="null-for-required-int"),
        pytest.param({"withdrawal_age": True}, "withdrawal_age", id="bool-for-int"),
        pytest.param({"account_cap_minutes": False}, "account_cap_minutes", id="bool-for-nullable-int"),
        pytest.param({"goods_allowed": 1}, "goods_allowed", id="int-for-bool"),
        pytest.param({"spouse_may_withdraw": "true"}, "spouse_may_withdraw", id="string-for-bool"),
        pytest.param({"transfer_relations": "spouse"}, "transfer_relations", id="string-for-list"),
        pytest.param({"cap_overflow": 1}, "cap_overflow", id="int-for-string"),
        pytest.param({"credit_line_minutes": -60}, "credit_line_minutes", id="negative"),
        pytest.param({"account_cap_minutes": -1}, "account_cap_minutes", id="negative-nullable"),
        pytest.param({"hardship_withdrawal_age": -5}, "hardship_withdrawal_age", id="negative-age"),
        pytest.param({"minutes_per_coin": 0}, "minutes_per_coin", id="zero-minutes-per-coin"),
        pytest.param({"rounding_minutes": 0}, "rounding_minutes", id="zero-rounding"),
        pytest.param({"minutes_per_hour": 60}, "minutes_per_hour", id="unknown-field"),
        pytest.param(
            {"transfer_relations": ["spouse", "neighbour"]}, "transfer_relations", id="unknown-relation"
        ),
        pytest.param({"cap_overflow": "spill"}, "cap_overflow", id="unknown-cap-overflow"),
        pytest.param({"rounding_mode": "banker"}, "rounding_mode", id="unknown-rounding-mode"),
        pytest.param(
            {"star_thresholds_hours": [100, 100, 300]}, "star_thresholds_hours", id="stars-repeated"
        ),
        pytest.param({"star_thresholds_hours": [300, 100]}, "star_thresholds_hours", id="stars-decreasing"),
        pytest.param({"star_thresholds_hours": [0, 100]}, "star_thresholds_hours", id="stars-zero"),
        pytest.param({"star_thresholds_hours": [-100]}, "star_thresholds_hours", id="stars-negative"),
        pytest.param({"star_thresholds_hours": [100, "300"]}, "star_thresholds_hours", id="stars-string"),
        pytest.param({"star_thresholds_hours": [100, 250.5]}, "star_thresholds_hours", id="stars-float"),
        pytest.param({"star_thresholds_hours": [True, 300]}, "star_thresholds_hours", id="stars-bool"),
        pytest.param({"money_purchase_allowed": True}, "purchase_fen_per_coin", id="money-without-price"),
        pytest.param(
            {"money_purchase_allowed": True, "purchase_fen_per_coin": None},
            "purchase_fen_per_coin",
            id="money-with-null-price",
        ),
        pytest.param(
            {"money_purchase_allowed": True, "purchase_fen_per_coin": 0},
            "purchase_fen_per_coin",
            id="money-with-zero-price",
        ),
        pytest.param({"name": DROP}, "name", id="no-name"),
        pytest.param({"name": "  "}, "name", id="blank-name"),
        pytest.param({"name": 2026}, "name", id="number-name"),
        pytest.param({"categories": DROP}, "categories", id="no-categories"),
        pytest.param({"categories": []}, "categories", id="empty-categories"),
        pytest.param({"categories": {"code": "assistance"}}, "categories", id="categories-not-a-list"),
        pytest.param({"categories": ["assistance"]}, "categories[0]", id="category-not-an-object"),
        pytest.param(
            {"categories": with_second_category(code="legal aid")}, "categories[1]", id="cat-code-space"
        ),
        pytest.param({"categories": with_second_category(code="")}, "categories[1]", id="cat-code-empty"),
        pytest.param({"categories": with_second_category(code=7)}, "categories[1]", id="cat-code-number"),
        pytest.param({"categories": with_second_category(code=DROP)}, "categories[1]", id="cat-code-missing"),
        pytest.param(
            {"categories": with_second_category(code="legal/aid")}, "categories[1]", id="cat-code-slash"
        ),
        pytest.param(
            {"categories": with_second_category(code="assistance")}, "categories[1]", id="cat-code-duplicate"
        ),
        pytest.param(
            {"categories": with_second_category(coefficient_permille=0)},
            "categories[1]",
            id="cat-coefficient-zero",
        ),
        pytest.param(
            {"categories": with_second_category(coefficient_permille=-1000)},
            "categories[1]",
            id="cat-coefficient-negative",
        ),
        pytest.param(
            {"categories": with_second_category(coefficient_permille=1.5)},
            "categories[1]",
            id="cat-coefficient-float",
        ),
        pytest.param(
            {"categories": with_second_category(coefficient_permille=True)},
            "categories[1]",
            id="cat-coefficient-bool",
        ),
        pytest.param({"categories": with_second_category(tier=0)}, "categories[1]", id="cat-tier-zero"),
        pytest.param({"categories": with_second_category(tier="3")}, "categories[1]", id="cat-tier-string"),
        pytest.param({"categories": with_second_category(name=" ")}, "categories[1]", id="cat-name-blank"),
        pytest.param(
            {"categories": with_second_category(name_en=DROP)}, "categories[1]", id="cat-no-english-name"
        ),
        pytest.param({"categories": with_second_category(weight=2)}, "categories[1]", id="cat-unknown-field"),
    ],
)
def test_bad_rules_are_refused_naming_the_field_and_nothing_is_written(tree, changes, field):
    # given rules with one bad field
    rules = valid_rules(**changes)
    before = counts()

    # when they are saved
    with pytest.raises(ValidationFailed) as caught:
        policy_create(actor=None, region=tree["310000"], effective_from=JAN_1, rules=rules)

    # then the policy is invalid, that field is named with a reason, and no row of any kind is written
    assert caught.value.code == "policy_invalid"
    assert list(caught.value.fields) == [field]
    assert all(isinstance(m, str) and m.strip() for m in caught.value.fields[field])
    assert counts() == before


def test_every_bad_field_is_reported_at_once(tree):
    # given rules with four different mistakes
    rules = valid_rules(
        minutes_per_coin="60",
        cap_overflow="spill",
        colour="red",
        categories=with_second_category(coefficient_permille=0),
    )
    before = counts()

    # when they are saved
    with pytest.raises(ValidationFailed) as caught:
        policy_create(actor=None, region=tree["310000"], effective_from=JAN_1, rules=rules)

    # then all four are named in one error
    assert set(caught.value.fields) == {"minutes_per_coin", "cap_overflow", "colour", "categories[1]"}
    assert counts() == before


def test_a_good_category_next_to_a_bad_one_is_not_saved(tree):
    # given rules whose first category is fine and whose second is not
    rules = valid_rules(categories=with_second_category(coefficient_permille=0))
    before = counts()

    # when they are saved
    with pytest.raises(ValidationFailed):
        policy_create(actor=None, region=tree["310000"], effective_from=JAN_1, rules=rules)

    # then not even the good category is written
    assert ServiceCategory.objects.filter(code="assistance").count() == 0
    assert counts() == before


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"withdrawal_age": 70000}, "withdrawal_age", id="age-beyond-smallint"),
        pytest.param({"account_cap_minutes": 2**31}, "account_cap_minutes", id="cap-beyond-integer"),
        pytest.param({"name": "政" * 121}, "name", id="policy-name-over-120"),
        pytest.param(
            {"categories": with_second_category(name="援" * 65)}, "categories[1]", id="cat-name-over-64"
        ),
        pytest.param(
            {"categories": with_second_category(code="c" * 41)}, "categories[1]", id="cat-code-over-40"
        ),
    ],
)
def test_values_the_database_cannot_hold_are_refused_as_field_errors(tree, changes, field):
    # given rules with a value too big for its column
    rules = valid_rules(**changes)
    before = counts()

    # when they are saved
    with pytest.raises(ValidationFailed) as caught:
        policy_create(actor=None, region=tree["310000"], effective_from=JAN_1, rules=rules)

    # then the field is named like any other bad value (not a database error, not silently stored)
    assert caught.value.code == "policy_invalid"
    assert field in caught.value.fields
    assert counts() == before


# --- policy_load_file -------------------------------------------------------------------------------------


def test_a_policy_file_loads_like_rules(tree):
    # given a JSON policy file
    text = (
        '{"name": "文件政策", "withdrawal_age": 62,\n'
        ' "categories": [{"code": "a", "name": "甲", "name_en": "A"}]}'
    )

    # when it is loaded
    policy = policy_load_file(actor=None, text=text, region=tree["310101"], effective_from=JAN_1)

    # then it is a new version with those rules
    policy.refresh_from_db()
    assert (policy.name, policy.withdrawal_age, policy.version) == ("文件政策", 62, 1)
    assert list(policy.categories.values_list("code", flat=True)) == ["a"]


def test_invalid_json_is_refused_naming_the_line_and_column(tree):
    # given a file with a stray word on line 4, column 3
    text = '{\n  "name": "x",\n  "minutes_per_coin": 60,\n  oops\n}\n'
    before = counts()

    # when it is loaded
    with translation.override("en"), pytest.raises(ValidationFailed) as caught:
        policy_load_file(actor=None, text=text, region=tree["310000"], effective_from=JAN_1)

    # then the message points at that place, the file is blamed, and nothing is written
    message = str(caught.value.message)
    assert "line 4" in message
    assert "column 3" in message
    assert caught.value.code == "policy_invalid"
    assert caught.value.fields["file"]
    assert counts() == before


def test_a_file_with_bad_rules_names_the_fields(tree):
    # given well-formed JSON with a wrong type
    text = (
        '{"name": "x", "minutes_per_coin": "60", "categories": [{"code": "a", "name": "甲", "name_en": "A"}]}'
    )
    before = counts()

    # when it is loaded
    with pytest.raises(ValidationFailed) as caught:
        policy_load_file(actor=None, text=text, region=tree["310000"], effective_from=JAN_1)

    # then the field is named and nothing is written
    assert caught.value.code == "policy_invalid"
    assert list(caught.value.fields) == ["minutes_per_coin"]
    assert counts() == before


@pytest.mark.parametrize("text", ["[]", '"shanghai-2026"', "60", "null"])
def test_a_file_that_is_not_an_object_is_an_invalid_policy(tree, text):
    # given valid JSON that is not an object
    before = counts()

    # when it is loaded
    with pytest.raises(ValidationFailed) as caught:
        policy_load_file(actor=None, text=text, region=tree["310000"], effective_from=JAN_1)

    # then it is refused with the same stable code as every other bad policy, and nothing is written
    assert caught.value.fields
    assert caught.value.code == "policy_invalid"
    assert counts() == before
