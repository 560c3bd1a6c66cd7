"""The region data shipped with TimeBank: real GB/T 2260 codes that pass our own checks."""

from __future__ import annotations

import csv
import io
from importlib import resources

from timebank.regions.codes import code_problems, level_depth
from timebank.regions.models import Region
from timebank.regions.services import regions_import_shipped

SHANGHAI_DISTRICTS = {
    "310101": "黄浦区",
    "310104": "徐汇区",
    "310105": "长宁区",
    "310106": "静安区",
    "310107": "普陀区",
    "310109": "虹口区",
    "310110": "杨浦区",
    "310112": "闵行区",
    "310113": "宝山区",
    "310114": "嘉定区",
    "310115": "浦东新区",
    "310116": "金山区",
    "310117": "松江区",
    "310118": "青浦区",
    "310120": "奉贤区",
    "310151": "崇明区",
}


def parent_code(region: Region) -> str:
    return region.parent.code if region.parent else ""


def shipped_rows(name: str) -> list[dict[str, str]]:
    text = resources.files("timebank.regions").joinpath("data", f"{name}.csv").read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def test_shanghai_has_exactly_its_sixteen_districts_under_the_municipal_districts(db):
    # given an empty tree
    # when the shipped Shanghai data is imported
    regions_import_shipped(actor=None, name="shanghai")

    # then the districts are the sixteen real ones, with their real codes, under 310100
    districts = Region.objects.filter(level="district").select_related("parent")
    assert {d.code: d.name for d in districts} == SHANGHAI_DISTRICTS
    assert {parent_code(d) for d in districts} == {"310100"}
    city = Region.objects.get(code="310100")
    assert (city.level, parent_code(city)) == ("city", "310000")
    assert Region.objects.get(code="310000").level == "province"


def test_shanghai_imports_every_shipped_row(db):
    # given the rows of the shipped file
    rows = shipped_rows("shanghai")

    # when it is imported
    report = regions_import_shipped(actor=None, name="shanghai")

    # then each row is one region and nothing was skipped
    assert report.created == len(rows) == Region.objects.count()
    assert set(Region.objects.values_list("code", flat=True)) == {row["code"] for row in rows}


def test_shanghai_includes_the_communities_the_demo_relies_on(db):
    # given an empty tree
    # when the shipped Shanghai data is imported
    regions_import_shipped(actor=None, name="shanghai")

    # then 雁荡 and 晋阳 are communities under their real streets
    yandang = Region.objects.get(code="310101023001")
    jinyang = Region.objects.get(code="310109018021")
    assert (yandang.name, yandang.level, parent_code(yandang)) == ("雁荡居委会", "community", "310101023")
    assert (jinyang.name, jinyang.level, parent_code(jinyang)) == ("晋阳居委会", "community", "310109018")
    assert yandang.path == "310000/310100/310101/310101023/310101023001/"
    assert jinyang.ancestor_codes == ["310000", "310100", "310109", "310109018", "310109018021"]


def test_every_shipped_node_passes_the_code_checks_against_its_parent(db):
    # given all shipped data imported
    regions_import_shipped(actor=None, name="shanghai")
    regions_import_shipped(actor=None, name="other-cities")
    nodes = list(Region.objects.select_related("parent"))

    # when every node is checked against its parent
    problems = {
        node.code: code_problems(
            node.code,
            node.level,
            node.parent.code if node.parent else None,
            node.parent.level if node.parent else None,
        )
        for node in nodes
    }

    # then none has a problem, and every path and depth agree with the parent
    assert {code: p for code, p in problems.items() if p} == {}
    for node in nodes:
        assert node.path == (node.parent.path if node.parent else "") + node.code + "/"
        assert node.depth == level_depth(node.level)
    assert Region.objects.filter(code__in=["110000", "320000", "320100"]).count() == 3


def test_importing_the_shipped_data_twice_changes_nothing(db):
    # given the shipped Shanghai data imported once
    first = regions_import_shipped(actor=None, name="shanghai")

    # when it is imported again
    second = regions_import_shipped(actor=None, name="shanghai")

    # then every row is unchanged
    assert (second.created, second.renamed, second.unchanged) == (0, 0, first.created)
    assert Region.objects.count() == first.created
