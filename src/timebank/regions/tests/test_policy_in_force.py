"""Which rules apply where and when: the nearest ancestor with a version in effect, its latest version."""

from __future__ import annotations

import datetime as dt

from timebank.regions.selectors import policy_in_force, policy_versions
from timebank.regions.services import policy_load_preset

JAN_1 = dt.date(2026, 1, 1)
JUL_1 = dt.date(2026, 7, 1)


def test_a_policy_on_the_province_applies_to_every_node_below(tree):
    # given Shanghai's 2026 rules on the province
    shanghai = policy_load_preset(
        actor=None, preset="shanghai-2026", region=tree["310000"], effective_from=JAN_1
    )

    # when the rules for each node are asked on 1 March
    found = {code: policy_in_force(region, dt.date(2026, 3, 1)) for code, region in tree.items()}

    # then every node, down to the communities, is under them
    assert set(found.values()) == {shanghai}


def test_a_deeper_policy_overrides_its_ancestors_only_in_its_own_subtree(tree):
    # given Shanghai's rules on the province and the tiered proposal on 虹口区
    shanghai = policy_load_preset(
        actor=None, preset="shanghai-2026", region=tree["310000"], effective_from=JAN_1
    )
    tiered = policy_load_preset(
        actor=None, preset="paper-tiered", region=tree["310109"], effective_from=JAN_1
    )
    day = dt.date(2026, 3, 1)

    # when the rules are asked for communities in each district
    jinyang = policy_in_force(tree["310109018021"], day)
    yandang = policy_in_force(tree["310101023001"], day)

    # then 晋阳 (in 虹口区) follows the tiered proposal and 雁荡 (in 黄浦区) Shanghai's rules
    assert jinyang == tiered
    assert yandang == shanghai
    assert policy_in_force(tree["310109"], day) == tiered
    assert policy_in_force(tree["310109018"], day) == tiered
    assert policy_in_force(tree["310100"], day) == shanghai
    assert policy_in_force(tree["310000"], day) == shanghai


def test_the_version_in_force_is_chosen_by_its_effective_date(tree):
    # given version 1 from 1 January and version 2 from 1 July on the province
    v1 = policy_load_preset(actor=None, preset="shanghai-2026", region=tree["310000"], effective_from=JAN_1)
    v2 = policy_load_preset(actor=None, preset="nanjing-2019", region=tree["310000"], effective_from=JUL_1)
    yandang = tree["310101023001"]

    # when the rules are asked around the change
    # then version 1 applies up to the day before, version 2 from the day itself
    assert policy_in_force(yandang, JAN_1) == v1
    assert policy_in_force(yandang, dt.date(2026, 6, 30)) == v1
    assert policy_in_force(yandang, JUL_1) == v2
    assert policy_in_force(yandang, dt.date(2030, 1, 1)) == v2
    assert (v1.version, v2.version) == (1, 2)


def test_a_later_version_with_the_same_date_replaces_the_earlier(tree):
    # given two versions effective on the same day (a correction)
    policy_load_preset(actor=None, preset="shanghai-2026", region=tree["310000"], effective_from=JAN_1)
    correction = policy_load_preset(
        actor=None, preset="beijing-2022", region=tree["310000"], effective_from=JAN_1
    )

    # when the rules are asked for that day
    found = policy_in_force(tree["310101023001"], JAN_1)

    # then the correction applies
    assert found == correction


def test_before_the_first_effective_date_no_policy_is_in_force(tree):
    # given rules from 1 January 2026 only
    policy_load_preset(actor=None, preset="shanghai-2026", region=tree["310000"], effective_from=JAN_1)

    # when the rules are asked the day before
    found = policy_in_force(tree["310101023001"], dt.date(2025, 12, 31))

    # then there are none
    assert found is None


def test_without_any_policy_nothing_is_in_force(tree):
    # given a tree without policies
    # when the rules are asked
    # then there are none
    assert policy_in_force(tree["310109018021"], JAN_1) is None


def test_a_deeper_policy_not_yet_in_effect_leaves_the_ancestor_in_force(tree):
    # given Shanghai's rules from January and the tiered proposal on 虹口区 only from July
    shanghai = policy_load_preset(
        actor=None, preset="shanghai-2026", region=tree["310000"], effective_from=JAN_1
    )
    tiered = policy_load_preset(
        actor=None, preset="paper-tiered", region=tree["310109"], effective_from=JUL_1
    )
    jinyang = tree["310109018021"]

    # when the rules for 晋阳 are asked before and after July
    # then Shanghai's rules apply until the district's take effect
    assert policy_in_force(jinyang, dt.date(2026, 3, 1)) == shanghai
    assert policy_in_force(jinyang, JUL_1) == tiered


def test_a_policy_below_a_node_does_not_apply_to_the_node(tree):
    # given rules only on 虹口区
    policy_load_preset(actor=None, preset="paper-tiered", region=tree["310109"], effective_from=JAN_1)

    # when the rules for the province and for 黄浦区 are asked
    # then none apply: rules flow down the tree, never up or sideways
    assert policy_in_force(tree["310000"], dt.date(2026, 3, 1)) is None
    assert policy_in_force(tree["310101023001"], dt.date(2026, 3, 1)) is None


def test_versions_are_listed_newest_first(tree):
    # given three versions on the province
    v1 = policy_load_preset(actor=None, preset="shanghai-2026", region=tree["310000"], effective_from=JAN_1)
    v2 = policy_load_preset(actor=None, preset="nanjing-2019", region=tree["310000"], effective_from=JUL_1)
    v3 = policy_load_preset(actor=None, preset="beijing-2022", region=tree["310000"], effective_from=JUL_1)

    # when the versions are listed
    listed = list(policy_versions(tree["310000"]))

    # then the latest effective date and, within it, the latest version come first
    assert listed == [v3, v2, v1]
    assert list(policy_versions(tree["310101"])) == []
