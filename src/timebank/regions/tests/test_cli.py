"""The `regions` and `policies` management commands: thin wrappers that print results and clear errors."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import translation

from timebank.audit.models import AuditEvent
from timebank.regions.models import Policy, Region
from timebank.regions.services import PRESETS, policy_load_preset

GOOD_CSV = (
    "code,name,name_en,level,parent_code\n"
    "310000,上海市,Shanghai,province,\n"
    "310100,市辖区,Shanghai Municipal Districts,city,310000\n"
    "310101,黄浦区,Huangpu District,district,310100\n"
)


def run(*args: str) -> str:
    out = io.StringIO()
    with translation.override("en"):
        call_command(*args, stdout=out)
    return out.getvalue()


def run_failing(*args: str) -> str:
    with translation.override("en"), pytest.raises(CommandError) as caught:
        call_command(*args, stdout=io.StringIO(), stderr=io.StringIO())
    return str(caught.value)


# --- regions ----------------------------------------------------------------------------------------------


def test_regions_import_prints_the_counts(db, tmp_path):
    # given a CSV file
    path = tmp_path / "tree.csv"
    path.write_text(GOOD_CSV, encoding="utf-8")

    # when it is imported twice
    first = run("regions", "import", str(path))
    second = run("regions", "import", str(path))

    # then the first run creates every row and the second leaves them alone
    assert "3 created, 0 renamed, 0 unchanged" in first
    assert "0 created, 0 renamed, 3 unchanged" in second
    assert Region.objects.count() == 3


def test_regions_import_audits_as_the_command_line(db, tmp_path):
    # given a CSV file
    path = tmp_path / "tree.csv"
    path.write_text(GOOD_CSV, encoding="utf-8")

    # when it is imported from the command line
    run("regions", "import", str(path))

    # then the audit event says where the change came from
    assert AuditEvent.objects.get(event_type="regions.imported").channel == "cli"


def test_regions_import_accepts_a_file_with_a_byte_order_mark(db, tmp_path):
    # given a CSV file saved with a UTF-8 byte order mark
    path = tmp_path / "tree.csv"
    path.write_bytes(GOOD_CSV.encode("utf-8-sig"))

    # when it is imported
    out = run("regions", "import", str(path))

    # then every row is imported
    assert "3 created" in out


def test_regions_import_of_a_bad_file_lists_every_bad_line(db, tmp_path):
    # given a file whose lines 4 and 5 are bad
    path = tmp_path / "bad.csv"
    path.write_text(
        GOOD_CSV.splitlines()[0] + "\n"
        "310000,上海市,Shanghai,province,\n"
        "310100,市辖区,,city,310000\n"
        "31010X,黄浦区,,district,310100\n"
        "310109,虹口区,,district\n",
        encoding="utf-8",
    )

    # when it is imported
    message = run_failing("regions", "import", str(path))

    # then the error names the code and each bad line, and nothing is imported
    assert "[region_import_failed]" in message
    assert "line 4:" in message
    assert "line 5:" in message
    assert "line 2:" not in message
    assert "line 3:" not in message
    assert Region.objects.count() == 0


def test_regions_import_of_a_missing_file_is_an_error(db, tmp_path):
    # given no such file
    # when it is imported
    message = run_failing("regions", "import", str(tmp_path / "missing.csv"))

    # then the error names it
    assert "missing.csv" in message


def test_regions_import_shipped_imports_shanghai(db):
    # given an empty tree
    # when the shipped Shanghai data is imported
    out = run("regions", "import-shipped", "shanghai")

    # then the whole of it is there
    count = Region.objects.count()
    assert f"{count} created" in out
    assert Region.objects.filter(level="district").count() == 16
    assert Region.objects.filter(code="310109018021").exists()


def test_regions_import_shipped_of_an_unknown_name_is_a_clear_error(db):
    # given no shipped file called "shenzhen"
    # when it is imported
    message = run_failing("regions", "import-shipped", "shenzhen")

    # then the command fails with a message naming it, not a traceback
    assert "shenzhen" in message
    assert Region.objects.count() == 0


def test_regions_list_shows_a_node_and_one_level_below(tree):
    # given the shared tree
    # when 黄浦区 is listed one level deep
    out = run("regions", "list", "310101", "--depth", "1")

    # then the district and its street are shown, indented by depth, and nothing deeper or elsewhere
    assert out.splitlines() == [
        "    310101  黄浦区  (district)",
        "      310101023  瑞金二路街道  (street)",
    ]


def test_regions_list_goes_deeper_on_request(tree):
    # given the shared tree
    # when 黄浦区 is listed two levels deep
    out = run("regions", "list", "310101", "--depth", "2")

    # then its communities appear too, but none of 虹口区
    codes = [line.split()[0] for line in out.splitlines()]
    assert codes == ["310101", "310101023", "310101023001", "310101023002"]


def test_regions_list_without_a_code_starts_at_the_top(tree):
    # given the shared tree
    # when the tree is listed with no code
    out = run("regions", "list")

    # then the provinces and cities are shown
    assert [line.split()[0] for line in out.splitlines()] == ["310000", "310100"]


def test_regions_list_of_an_unknown_code_is_an_error(tree):
    # given no region 310199
    # when it is listed
    message = run_failing("regions", "list", "310199")

    # then the error says it was not found
    assert "region_not_found" in message


# --- policies ---------------------------------------------------------------------------------------------


def test_policies_presets_lists_every_preset(db):
    # given the shipped presets
    # when they are listed
    out = run("policies", "presets")

    # then each key and name appears
    for key, name in PRESETS.items():
        assert key in out
        assert name in out
    assert len(out.splitlines()) == len(PRESETS)


def test_policies_load_preset_attaches_a_version(tree):
    # given the shared tree
    # when the Shanghai preset is loaded onto the province
    out = run(
        "policies", "load-preset", "shanghai-2026", "--region", "310000", "--effective-from", "2026-01-01"
    )

    # then version 1 of the preset is in place from that day
    policy = Policy.objects.get()
    assert (policy.region.code, policy.preset, policy.version) == ("310000", "shanghai-2026", 1)
    assert policy.effective_from == dt.date(2026, 1, 1)
    assert "310000" in out
    assert policy.name in out


def test_policies_show_prints_the_policy_in_force_with_its_categories(tree):
    # given Shanghai's rules on the province
    policy_load_preset(
        actor=None, preset="shanghai-2026", region=tree["310000"], effective_from=dt.date(2026, 1, 1)
    )

    # when the rules for 雁荡 on 1 March are shown
    out = run("policies", "show", "310101023001", "--on", "2026-03-01")

    # then the inherited policy is named with its figures and every category
    assert "上海市时间银行 2026" in out
    assert "version 1 of 310000" in out
    assert "withdrawal_age: 65" in out
    for code, name in [("emotional_support", "情感慰藉"), ("legal_aid", "法律援助"), ("other", "其他")]:
        assert f"category {code}: {name}" in out
    assert out.count("  category ") == 13  # the nine and the paper's four examples


def test_policies_show_before_any_policy_is_an_error(tree):
    # given Shanghai's rules from 2026
    policy_load_preset(
        actor=None, preset="shanghai-2026", region=tree["310000"], effective_from=dt.date(2026, 1, 1)
    )

    # when the rules for 2025 are shown
    message = run_failing("policies", "show", "310101023001", "--on", "2025-06-01")

    # then the command says none is in force
    assert "310101023001" in message


def test_policies_load_reads_a_json_file(tree, tmp_path):
    # given a policy file
    path = tmp_path / "policy.json"
    rules = {
        "name": "黄浦试点",
        "categories": [{"code": "assistance", "name": "生活协助", "name_en": "Assistance"}],
    }
    path.write_text(json.dumps(rules, ensure_ascii=False), encoding="utf-8")

    # when it is loaded onto 黄浦区
    run("policies", "load", str(path), "--region", "310101", "--effective-from", "2026-01-01")

    # then it is version 1 there
    policy = Policy.objects.get()
    assert (policy.name, policy.region.code, policy.version) == ("黄浦试点", "310101", 1)


def test_policies_load_of_bad_json_is_an_error_naming_the_place(tree, tmp_path):
    # given a file that is not JSON at line 2
    path = tmp_path / "policy.json"
    path.write_text('{"name": "x",\n  minutes_per_coin: 60}\n', encoding="utf-8")

    # when it is loaded
    message = run_failing(
        "policies", "load", str(path), "--region", "310000", "--effective-from", "2026-01-01"
    )

    # then the error is a policy error pointing at line 2, and nothing is saved
    assert "[policy_invalid]" in message
    assert "line 2" in message
    assert Policy.objects.count() == 0


def test_policies_load_of_bad_rules_lists_each_field(tree, tmp_path):
    # given a file with two bad fields
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"name": "x", "minutes_per_coin": "60", "categories": []}), encoding="utf-8")

    # when it is loaded
    message = run_failing(
        "policies", "load", str(path), "--region", "310000", "--effective-from", "2026-01-01"
    )

    # then each field is on its own line of the error
    assert "  minutes_per_coin: " in message
    assert "  categories: " in message
    assert Policy.objects.count() == 0


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(
            ("load-preset", "shanghai-2026", "--region", "310199", "--effective-from", "2026-01-01"),
            id="load-preset",
        ),
        pytest.param(("show", "310199", "--on", "2026-03-01"), id="show"),
    ],
)
def test_policies_for_an_unknown_region_are_an_error(tree, args):
    # given no region 310199
    # when a policy command names it
    message = run_failing("policies", *args)

    # then the command fails saying it was not found, and nothing is saved
    assert "region_not_found" in message
    assert Policy.objects.count() == 0


@pytest.mark.parametrize("day", ["2026-13-01", "2026-02-30", "01/03/2026", "tomorrow"])
def test_policies_with_a_bad_date_are_an_error(tree, day):
    # given a date that is not a calendar day in YYYY-MM-DD
    # when it is given
    message = run_failing(
        "policies", "load-preset", "shanghai-2026", "--region", "310000", "--effective-from", day
    )

    # then the command fails naming the date, and nothing is saved
    assert day in message
    assert Policy.objects.count() == 0


def test_policies_show_with_a_bad_date_is_an_error(tree):
    # given the shared tree
    # when a bad date is asked for
    message = run_failing("policies", "show", "310101023001", "--on", "2026-3-1x")

    # then the command names the date
    assert "2026-3-1x" in message


def test_policies_load_preset_of_an_unknown_preset_is_an_error(tree):
    # given no preset called shanghai-2025
    # when it is loaded
    message = run_failing(
        "policies", "load-preset", "shanghai-2025", "--region", "310000", "--effective-from", "2026-01-01"
    )

    # then the command fails naming it and nothing is saved
    assert "shanghai-2025" in message
    assert Policy.objects.count() == 0
