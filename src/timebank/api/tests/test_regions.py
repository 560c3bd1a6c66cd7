"""``/api/v1`` regions and jurisdiction policies (read): the tree a level at a time, the rules in force."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client

from timebank.api.endpoints.regions import PolicyRulesOut
from timebank.api.tests.conftest import bearer
from timebank.api.tests.test_people import refused, walk
from timebank.care.tests.conftest import user_of
from timebank.people.models import Member
from timebank.regions import services as regions
from timebank.regions.models import Policy, Region


def codes(rows: list[dict[str, Any]]) -> list[str]:
    return [str(r["code"]) for r in rows]


def test_the_tree_is_read_a_level_at_a_time_page_by_page(client: Client, old_elder: Member) -> None:
    headers = bearer(user_of(old_elder), user_of(old_elder), ("read",))
    roots = walk(client, "/api/v1/regions", headers, "regions")
    assert roots == [
        {"code": "310000", "name": "上海市", "name_en": "Shanghai", "level": "province", "parent": None}
    ]
    districts = walk(client, "/api/v1/regions?parent=310100&limit=1", headers, "regions")
    assert sorted(codes(districts)) == ["310101", "310109"] and len(districts) == 2
    communities = walk(client, "/api/v1/regions?parent=310101023", headers, "regions")
    assert sorted(codes(communities)) == ["310101023001", "310101023002"]
    assert {c["parent"] for c in communities} == {"310101023"}
    assert walk(client, "/api/v1/regions?parent=310101023001", headers, "regions") == []
    refused(client.get("/api/v1/regions?parent=999999", **headers), 404, "region_not_found")
    refused(client.get("/api/v1/regions?limit=-1", **headers), 422)


def test_the_policy_in_force_is_inherited_from_the_nearest_node_above(
    client: Client, old_elder: Member, policies: dict[str, Policy]
) -> None:
    # given
    headers = bearer(user_of(old_elder), user_of(old_elder), ("read",))

    # when
    yandang = client.get("/api/v1/regions/310101023001/policy", **headers).json()
    jinyang = client.get("/api/v1/regions/310109018021/policy?day=2024-05-01", **headers).json()

    # then 雁荡 lives under Shanghai's rules, 晋阳 under Hongkou's tiered proposal
    shanghai = policies["shanghai"]
    assert (yandang["region"], yandang["version"], yandang["name"]) == ("310000", 1, shanghai.name)
    assert yandang["effective_from"] == "2020-01-01"
    assert yandang["rules"] == {field: getattr(shanghai, field) for field in regions.POLICY_FIELDS}
    assert yandang["rules"]["withdrawal_age"] == 65
    assert "emotional_support" in [c["code"] for c in yandang["categories"]]
    assert jinyang["region"] == "310109" and jinyang["name"] == policies["tiered"].name


def test_the_rules_answered_are_every_rule_a_policy_has() -> None:
    assert set(PolicyRulesOut.model_fields) == set(regions.POLICY_FIELDS)


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/v1/regions/310101023001/policy?day=2019-12-31", 404, "policy_not_found"),
        ("/api/v1/regions/310101023001/policy?day=2024-02-30", 422, None),
        ("/api/v1/regions/310101023001/policy?day=tomorrow", 422, None),
        ("/api/v1/regions/999999/policy", 404, "region_not_found"),
        ("/api/v1/regions/999999/policies", 404, "region_not_found"),
    ],
)
def test_a_day_without_rules_or_a_bad_day_or_region_is_refused(
    client: Client, old_elder: Member, path: str, status: int, code: str | None
) -> None:
    refused(client.get(path, **bearer(user_of(old_elder), user_of(old_elder))), status, code)


def test_a_regions_versions_are_listed_the_latest_first(
    client: Client, old_elder: Member, tree: dict[str, Region], policies: dict[str, Policy]
) -> None:
    # given Shanghai's rules get a new version
    regions.policy_load_preset(
        actor=None, preset="nanjing-2019", region=tree["310000"], effective_from=dt.date(2030, 1, 1)
    )
    headers = bearer(user_of(old_elder), user_of(old_elder), ("read",))

    # when
    versions = client.get("/api/v1/regions/310000/policies", **headers).json()["policies"]

    # then
    assert [(v["version"], v["effective_from"]) for v in versions] == [(2, "2030-01-01"), (1, "2020-01-01")]
    assert client.get("/api/v1/regions/310101/policies", **headers).json() == {"policies": []}
    assert client.get("/api/v1/regions/310000/policy?day=2030-01-01", **headers).json()["version"] == 2
    assert client.get("/api/v1/regions/310000/policy?day=2029-12-31", **headers).json()["version"] == 1
