"""region_create: one node at a time, checked against its parent, audited."""

from __future__ import annotations

import pytest

from timebank.audit.models import AuditEvent
from timebank.common.errors import ValidationFailed
from timebank.regions.codes import Level
from timebank.regions.models import Region
from timebank.regions.services import region_create


def test_a_province_is_a_root_with_its_own_path(db):
    # given an empty tree
    # when Shanghai is created
    shanghai = region_create(actor=None, code="310000", name="上海市", level=Level.PROVINCE, parent=None)

    # then it is the root: depth 0, path of its own code
    shanghai.refresh_from_db()
    assert (shanghai.code, shanghai.name, shanghai.level) == ("310000", "上海市", Level.PROVINCE)
    assert shanghai.parent is None
    assert shanghai.depth == 0
    assert shanghai.path == "310000/"


def test_each_level_extends_the_parent_path(db):
    # given a province
    province = region_create(actor=None, code="310000", name="上海市", level=Level.PROVINCE, parent=None)

    # when a chain down to a community is created
    city = region_create(actor=None, code="310100", name="市辖区", level=Level.CITY, parent=province)
    district = region_create(actor=None, code="310101", name="黄浦区", level=Level.DISTRICT, parent=city)
    street = region_create(
        actor=None, code="310101023", name="瑞金二路街道", level=Level.STREET, parent=district
    )
    community = region_create(
        actor=None,
        code="310101023001",
        name="雁荡居委会",
        name_en="Yandang",
        level=Level.COMMUNITY,
        parent=street,
    )

    # then every node's path is the chain of codes from the root and its depth is its level
    community.refresh_from_db()
    assert community.path == "310000/310100/310101/310101023/310101023001/"
    assert community.depth == 4
    assert community.parent == street
    assert community.name_en == "Yandang"
    assert [city.depth, district.depth, street.depth] == [1, 2, 3]
    assert street.path == "310000/310100/310101/310101023/"


def test_creating_a_region_records_an_audit_event(db):
    # given an empty tree
    # when a province is created
    shanghai = region_create(actor=None, code="310000", name="上海市", level=Level.PROVINCE, parent=None)

    # then one "region.created" event names the region
    events = AuditEvent.objects.filter(event_type="region.created")
    assert events.count() == 1
    event = events.get()
    assert event.subject_type == "regions.region"
    assert event.subject_id == str(shanghai.pk)
    assert event.region == shanghai
    assert event.region_path == "310000/"
    assert event.new == {"name": "上海市"}


@pytest.mark.parametrize(
    ("code", "level", "parent_code"),
    [
        pytest.param("31010", Level.DISTRICT, "310100", id="too-short"),
        pytest.param("31010X", Level.DISTRICT, "310100", id="non-digit"),
        pytest.param("310100", Level.DISTRICT, "310100", id="district-ending-00"),
        pytest.param("310201", Level.DISTRICT, "310100", id="other-city-prefix"),
        pytest.param("310109018", Level.STREET, "310101", id="street-under-other-district"),
        pytest.param("310101024", Level.STREET, "310100", id="street-under-a-city"),
        pytest.param("310102", Level.DISTRICT, None, id="district-without-parent"),
    ],
)
def test_a_bad_code_is_refused_and_nothing_is_written(tree, code, level, parent_code):
    # given the shared tree
    codes_before = set(Region.objects.values_list("code", flat=True))
    events_before = AuditEvent.objects.count()
    parent = tree[parent_code] if parent_code else None

    # when a node with a bad code is created
    with pytest.raises(ValidationFailed) as caught:
        region_create(actor=None, code=code, name="某区", level=level, parent=parent)

    # then the code field is blamed, and neither a region nor an audit row is written
    assert caught.value.fields["code"]
    assert all(m.strip() for m in caught.value.fields["code"])
    assert set(Region.objects.values_list("code", flat=True)) == codes_before
    assert AuditEvent.objects.count() == events_before


def test_a_duplicate_code_is_refused(tree):
    # given 黄浦区 already in the tree
    regions_before = Region.objects.count()
    events_before = AuditEvent.objects.count()

    # when it is created again
    with pytest.raises(ValidationFailed) as caught:
        region_create(actor=None, code="310101", name="黄浦区", level=Level.DISTRICT, parent=tree["310100"])

    # then the code field is blamed and the tree is unchanged
    assert caught.value.fields["code"]
    assert "310101" in " ".join(caught.value.fields["code"])
    assert Region.objects.count() == regions_before
    assert AuditEvent.objects.count() == events_before


def test_a_blank_name_is_refused_together_with_a_bad_code(tree):
    # given the shared tree
    regions_before = Region.objects.count()

    # when a node has both a bad code and a blank name
    with pytest.raises(ValidationFailed) as caught:
        region_create(actor=None, code="310100", name="   ", level=Level.DISTRICT, parent=tree["310100"])

    # then both fields are reported at once and nothing is written
    assert set(caught.value.fields) == {"code", "name"}
    assert Region.objects.count() == regions_before


def test_a_name_too_long_to_store_is_refused_as_a_field_error(tree):
    # given a name longer than a region name can be
    codes_before = set(Region.objects.values_list("code", flat=True))

    # when a district is created with it
    with pytest.raises(ValidationFailed) as caught:
        region_create(actor=None, code="310104", name="徐" * 65, level=Level.DISTRICT, parent=tree["310100"])

    # then the name is blamed (not a database error, not silently stored) and nothing is written
    assert caught.value.fields["name"]
    assert set(Region.objects.values_list("code", flat=True)) == codes_before
