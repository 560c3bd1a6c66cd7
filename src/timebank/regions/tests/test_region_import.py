"""regions_import_csv: all lines checked first, every bad line named, nothing half-imported, re-runnable."""

from __future__ import annotations

import re

import pytest
from django.utils import translation

from timebank.audit.models import AuditEvent
from timebank.regions.models import Region
from timebank.regions.services import RegionImportFailed, regions_import_csv

HEADER = "code,name,name_en,level,parent_code\n"
GOOD_CSV = (
    HEADER
    + "310000,上海市,Shanghai,province,\n"
    + "310100,市辖区,Shanghai Municipal Districts,city,310000\n"
    + "310101,黄浦区,Huangpu District,district,310100\n"
    + "310109,虹口区,Hongkou District,district,310100\n"
    + "310101023,瑞金二路街道,Ruijin Erlu Subdistrict,street,310101\n"
    + "310101023001,雁荡居委会,Yandang,community,310101023\n"
)
# The shared ``tree`` fixture holds exactly these nine nodes.
TREE_CODES = {
    "310000",
    "310100",
    "310101",
    "310109",
    "310101023",
    "310109018",
    "310101023001",
    "310101023002",
    "310109018021",
}


def parent_code(region: Region) -> str:
    return region.parent.code if region.parent else ""


def import_failure(text: str) -> RegionImportFailed:
    with translation.override("en"), pytest.raises(RegionImportFailed) as caught:
        regions_import_csv(actor=None, text=text)
    return caught.value


def bad_line_numbers(error: RegionImportFailed) -> set[int]:
    return {line for line, _problem in error.extra["lines"]}


def file_line_numbers(error: RegionImportFailed) -> set[int]:
    numbers = set()
    for message in error.fields["file"]:
        match = re.match(r"line (\d+): \S", message)
        assert match, f"not a 'line N: problem' message: {message!r}"
        numbers.add(int(match.group(1)))
    return numbers


def test_a_good_file_imports_every_row_with_paths(db):
    # given an empty tree
    # when a good file is imported
    report = regions_import_csv(actor=None, text=GOOD_CSV)

    # then every row is a region in its place and nothing is reported wrong
    assert (report.created, report.renamed, report.unchanged, report.errors) == (6, 0, 0, [])
    paths = dict(Region.objects.values_list("code", "path"))
    assert paths == {
        "310000": "310000/",
        "310100": "310000/310100/",
        "310101": "310000/310100/310101/",
        "310109": "310000/310100/310109/",
        "310101023": "310000/310100/310101/310101023/",
        "310101023001": "310000/310100/310101/310101023/310101023001/",
    }
    community = Region.objects.get(code="310101023001")
    assert (community.name, community.name_en, community.level, community.depth) == (
        "雁荡居委会",
        "Yandang",
        "community",
        4,
    )
    assert parent_code(community) == "310101023"


def test_an_import_that_creates_rows_records_one_audit_event(db):
    # given an empty tree
    # when a good file is imported
    regions_import_csv(actor=None, text=GOOD_CSV)

    # then one "regions.imported" event at the root counts what was created
    event = AuditEvent.objects.get(event_type="regions.imported")
    assert event.region_path == "310000/"
    assert event.new == {"created": 6, "renamed": 0}


def test_rows_can_hang_under_parents_already_in_the_database(tree):
    # given the shared tree
    text = HEADER + "310101023003,巨鹿居委会,Julu,community,310101023\n"

    # when a file adds one community under an existing street
    report = regions_import_csv(actor=None, text=text)

    # then it is created in the right place
    assert report.created == 1
    assert Region.objects.get(code="310101023003").path == "310000/310100/310101/310101023/310101023003/"


def test_every_bad_line_is_named_with_its_line_number_and_nothing_is_imported(tree):
    # given a file with good lines (a new district and a rename) among six kinds of bad line
    text = (
        HEADER  # line 1
        + "310104,徐汇区,Xuhui District,district,310100\n"  # 2 good, new
        + "310101,黄浦区（新）,Huangpu,district,310100\n"  # 3 good, rename
        + "31010X,某区,,district,310100\n"  # 4 bad code
        + "310104001,某街道,,street,310199\n"  # 5 unknown parent
        + "310105,长宁区,Changning,village,310100\n"  # 6 unknown level
        + "310106,静安区,Jing'an,street,310100\n"  # 7 a district code given as a street
        + "310104,徐汇区,Xuhui District,district,310100\n"  # 8 same code as line 2
        + "\n"  # 9 blank, skipped
        + "310107,普陀区,Putuo District,district\n"  # 10 four columns
        + "310110,杨浦区,Yangpu District,district,310100,extra\n"  # 11 six columns
        + "310112,闵行区,Minhang District,district,310100\n"  # 12 good
    )
    regions_before = Region.objects.count()
    events_before = AuditEvent.objects.count()

    # when it is imported
    error = import_failure(text)

    # then each bad line, and only those, is named by number in the details and in the file field
    assert error.code == "region_import_failed"
    assert bad_line_numbers(error) == {4, 5, 6, 7, 8, 10, 11}
    assert file_line_numbers(error) == {4, 5, 6, 7, 8, 10, 11}
    assert all(isinstance(problem, str) and problem.strip() for _line, problem in error.extra["lines"])
    # and nothing at all was written: no new rows, no rename, no audit rows
    assert Region.objects.count() == regions_before
    assert set(Region.objects.values_list("code", flat=True)) == TREE_CODES
    assert Region.objects.get(code="310101").name == "黄浦区"
    assert AuditEvent.objects.count() == events_before


def test_a_line_with_several_problems_is_reported_for_each(db):
    # given a province line with a parent and a blank name
    text = HEADER + "310000,,Shanghai,province,999999\n"

    # when it is imported
    error = import_failure(text)

    # then every problem is listed against line 2
    assert [line for line, _problem in error.extra["lines"]] == [2, 2, 2]
    assert len(error.fields["file"]) == 3
    assert Region.objects.count() == 0


def test_line_numbers_stay_right_after_a_quoted_value_spanning_two_lines(db):
    # given a file whose line 2 holds a quoted English name broken over two physical lines (as a
    # spreadsheet writes a cell with a line break), and whose line 4 is bad
    text = (
        HEADER  # line 1
        + '310000,上海市,"Shanghai\nMunicipality",province,\n'  # lines 2-3
        + "310100,市辖区,,city,31000X\n"  # line 4: unknown parent
    )

    # when it is imported
    error = import_failure(text)

    # then the bad line is reported as line 4, the line the user sees in an editor
    assert bad_line_numbers(error) == {4}


def test_a_wrong_header_is_refused(db):
    # given a file whose columns are in another order
    text = "code,name,level,name_en,parent_code\n310000,上海市,province,Shanghai,\n"

    # when it is imported
    error = import_failure(text)

    # then line 1 is blamed and nothing is imported
    assert error.code == "region_import_failed"
    assert error.fields["file"]
    assert error.fields["file"][0].startswith("line 1")
    assert Region.objects.count() == 0


@pytest.mark.parametrize(
    "text", ["", "\n", "310000,上海市,Shanghai,province,\n"], ids=["empty", "blank", "no-header"]
)
def test_a_file_without_the_header_is_refused(db, text):
    # given a file without the header line
    # when it is imported
    error = import_failure(text)

    # then the file is blamed and nothing is imported
    assert error.fields["file"]
    assert Region.objects.count() == 0


def test_importing_the_same_file_again_changes_nothing(db):
    # given a file already imported
    regions_import_csv(actor=None, text=GOOD_CSV)
    paths_before = dict(Region.objects.values_list("code", "path"))
    events_before = AuditEvent.objects.count()

    # when it is imported again
    report = regions_import_csv(actor=None, text=GOOD_CSV)

    # then every row is left alone and no event is recorded
    assert (report.created, report.renamed, report.unchanged) == (0, 0, 6)
    assert dict(Region.objects.values_list("code", "path")) == paths_before
    assert AuditEvent.objects.count() == events_before


def test_a_rename_updates_the_name_and_is_audited(tree):
    # given 黄浦区 in the tree
    huangpu = tree["310101"]
    text = HEADER + "310101,黄浦新区,Huangpu New District,district,310100\n"
    imports_before = AuditEvent.objects.filter(event_type="regions.imported").count()

    # when a file gives it another name
    report = regions_import_csv(actor=None, text=text)

    # then the name changes in place and the old and new names are audited
    assert (report.created, report.renamed, report.unchanged) == (0, 1, 0)
    huangpu.refresh_from_db()
    assert (huangpu.name, huangpu.name_en, huangpu.path) == (
        "黄浦新区",
        "Huangpu New District",
        "310000/310100/310101/",
    )
    event = AuditEvent.objects.get(event_type="region.renamed")
    assert event.subject_id == str(huangpu.pk)
    assert event.old == {"name": "黄浦区", "name_en": "Huangpu District"}
    assert event.new == {"name": "黄浦新区", "name_en": "Huangpu New District"}
    assert AuditEvent.objects.filter(event_type="regions.imported").count() == imports_before


def test_a_code_already_in_the_tree_under_another_parent_is_refused(tree):
    # given 雁荡居委会 under 瑞金二路街道 in the tree
    text = HEADER + "310101023001,雁荡居委会,Yandang,community,310109018\n"

    # when a file places it under 北外滩街道
    error = import_failure(text)

    # then line 2 is refused and the community stays where it was
    assert bad_line_numbers(error) == {2}
    assert parent_code(Region.objects.get(code="310101023001")) == "310101023"


def test_a_byte_order_mark_at_the_start_is_accepted(db):
    # given a file saved by a spreadsheet with a UTF-8 byte order mark
    text = "\ufeff" + GOOD_CSV

    # when it is imported
    report = regions_import_csv(actor=None, text=text)

    # then the header is recognised and every row is imported
    assert report.created == 6
    assert Region.objects.filter(code="310000").exists()


def test_windows_line_endings_and_padding_are_accepted(db):
    # given a file with CRLF line endings and spaces around the cells
    text = GOOD_CSV.replace(",", " , ").replace("\n", "\r\n")

    # when it is imported
    report = regions_import_csv(actor=None, text=text)

    # then the cells are trimmed and every row is imported
    assert report.created == 6
    assert Region.objects.get(code="310101023001").name == "雁荡居委会"


def test_a_child_before_its_parent_is_a_bad_line(db):
    # given a file that lists a city before its province
    text = HEADER + "310100,市辖区,,city,310000\n" + "310000,上海市,Shanghai,province,\n"

    # when it is imported
    error = import_failure(text)

    # then the city's line is named and not even the province is imported
    assert bad_line_numbers(error) == {2}
    assert Region.objects.count() == 0


@pytest.mark.parametrize(
    ("name", "name_en"),
    [
        pytest.param("黄" * 65, "Huangpu", id="name-over-64"),
        pytest.param("黄浦区", "H" * 129, id="name-en-over-128"),
    ],
)
def test_a_name_too_long_to_store_is_a_bad_line(tree, name, name_en):
    # given a file whose line 3 holds a name longer than a region name can be
    text = (
        HEADER
        + "310104,徐汇区,Xuhui District,district,310100\n"
        + f"310105,{name},{name_en},district,310100\n"
    )
    codes_before = set(Region.objects.values_list("code", flat=True))

    # when it is imported
    error = import_failure(text)

    # then line 3 is named like any other bad line (not a database error, not silently stored)
    assert bad_line_numbers(error) == {3}
    assert set(Region.objects.values_list("code", flat=True)) == codes_before
