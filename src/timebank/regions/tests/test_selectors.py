"""Reads over the region tree: subtrees, ancestors, containment."""

from __future__ import annotations

import pytest

from timebank.common.errors import NotFound
from timebank.regions.models import Region
from timebank.regions.selectors import region_ancestors, region_get, region_subtree
from timebank.regions.services import regions_import_shipped


def test_a_subtree_holds_the_node_and_its_descendants_only(tree):
    # given the shared tree with 黄浦区 and 虹口区
    # when 黄浦区's subtree is read
    codes = set(region_subtree(tree["310101"]).values_list("code", flat=True))

    # then it holds 黄浦区 and everything below it, and nothing of 虹口区 or above
    assert codes == {"310101", "310101023", "310101023001", "310101023002"}


def test_a_subtree_can_leave_out_the_node_itself(tree):
    # given the shared tree
    # when 瑞金二路街道's subtree is read without the node
    codes = set(region_subtree(tree["310101023"], include_self=False).values_list("code", flat=True))

    # then only its communities remain
    assert codes == {"310101023001", "310101023002"}


def test_a_district_subtree_in_the_shipped_data_has_no_node_of_another_district(db):
    # given the full shipped Shanghai data
    regions_import_shipped(actor=None, name="shanghai")
    huangpu = region_get("310101")

    # when 黄浦区's subtree is read
    codes = list(region_subtree(huangpu).values_list("code", flat=True))

    # then every node is 黄浦区's, all of its communities are there, and none of 虹口区's
    assert all(code.startswith("310101") for code in codes)
    assert not any(code.startswith("310109") for code in codes)
    assert "310101023001" in codes
    assert len(codes) == Region.objects.filter(code__startswith="310101").count()


def test_a_leaf_subtree_is_the_leaf_alone(tree):
    # given a community
    # when its subtree is read
    codes = list(region_subtree(tree["310109018021"]).values_list("code", flat=True))

    # then it is just the community
    assert codes == ["310109018021"]


def test_ancestors_run_from_the_root_to_the_node(tree):
    # given 晋阳居委会
    # when its ancestors are read
    codes = list(region_ancestors(tree["310109018021"]).values_list("code", flat=True))

    # then they run province → city → district → street → the node itself
    assert codes == ["310000", "310100", "310109", "310109018", "310109018021"]


def test_the_root_is_its_own_only_ancestor(tree):
    # given the province
    # when its ancestors are read
    codes = list(region_ancestors(tree["310000"]).values_list("code", flat=True))

    # then the chain is the province alone
    assert codes == ["310000"]


def test_a_node_contains_its_descendants_and_itself_but_not_its_cousins(tree):
    # given 黄浦区, one of its communities and a community of 虹口区
    huangpu, yandang, jinyang = tree["310101"], tree["310101023001"], tree["310109018021"]

    # when containment is asked
    # then it follows the tree
    assert huangpu.contains(yandang)
    assert huangpu.contains(huangpu)
    assert tree["310000"].contains(jinyang)
    assert not huangpu.contains(jinyang)
    assert not yandang.contains(huangpu)
    assert not tree["310101023001"].contains(tree["310101023002"])


def test_an_unknown_code_is_not_found(db):
    # given an empty tree
    # when a code is looked up
    with pytest.raises(NotFound) as caught:
        region_get("310101")

    # then the error says which kind of thing is missing
    assert caught.value.code == "region_not_found"
