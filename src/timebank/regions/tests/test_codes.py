"""Administrative codes: every level's shape and every way a code can fail to fit under its parent."""

from __future__ import annotations

import pytest

from timebank.regions.codes import CODE_LENGTH, LEVEL_ORDER, Level, code_problems, level_depth


@pytest.mark.parametrize(
    ("code", "level", "parent_code", "parent_level"),
    [
        ("310000", Level.PROVINCE, None, None),
        ("110000", Level.PROVINCE, None, None),
        ("310100", Level.CITY, "310000", Level.PROVINCE),
        ("320100", Level.CITY, "320000", Level.PROVINCE),
        ("310101", Level.DISTRICT, "310100", Level.CITY),
        ("310151", Level.DISTRICT, "310100", Level.CITY),
        ("310101023", Level.STREET, "310101", Level.DISTRICT),
        ("310101023001", Level.COMMUNITY, "310101023", Level.STREET),
        ("310109018021", Level.COMMUNITY, "310109018", Level.STREET),
    ],
)
def test_a_well_formed_code_under_the_right_parent_has_no_problems(code, level, parent_code, parent_level):
    # given a real code at its level under its real parent
    # when it is checked
    problems = code_problems(code, level, parent_code, parent_level)

    # then nothing is wrong with it
    assert problems == []


@pytest.mark.parametrize(
    ("code", "level", "parent_code", "parent_level"),
    [
        pytest.param("31000", Level.PROVINCE, None, None, id="province-too-short"),
        pytest.param("3100000", Level.PROVINCE, None, None, id="province-too-long"),
        pytest.param("31010", Level.DISTRICT, "310100", Level.CITY, id="district-too-short"),
        pytest.param("310101023", Level.DISTRICT, "310100", Level.CITY, id="district-with-street-length"),
        pytest.param("310101", Level.STREET, "310101", Level.DISTRICT, id="street-with-district-length"),
        pytest.param("31010102300", Level.COMMUNITY, "310101023", Level.STREET, id="community-too-short"),
        pytest.param("3101010230011", Level.COMMUNITY, "310101023", Level.STREET, id="community-too-long"),
        pytest.param("", Level.PROVINCE, None, None, id="empty"),
        pytest.param("31a000", Level.PROVINCE, None, None, id="letter"),
        pytest.param("3101 1", Level.DISTRICT, "310100", Level.CITY, id="space"),
        pytest.param("-31000", Level.PROVINCE, None, None, id="sign"),
        pytest.param("３１００００", Level.PROVINCE, None, None, id="full-width-digits"),
        pytest.param("990000", Level.PROVINCE, None, None, id="unknown-province-prefix"),
        pytest.param("000000", Level.PROVINCE, None, None, id="zero-province-prefix"),
        pytest.param("310100", Level.PROVINCE, None, None, id="province-not-ending-0000"),
        pytest.param("310001", Level.PROVINCE, None, None, id="province-ending-0001"),
        pytest.param("310101", Level.CITY, "310000", Level.PROVINCE, id="city-not-ending-00"),
        pytest.param("310000", Level.CITY, "310000", Level.PROVINCE, id="city-with-zero-city-part"),
        pytest.param("310100", Level.DISTRICT, "310100", Level.CITY, id="district-ending-00"),
        pytest.param("310101000", Level.STREET, "310101", Level.DISTRICT, id="street-ending-000"),
        pytest.param("310101023000", Level.COMMUNITY, "310101023", Level.STREET, id="community-ending-000"),
        pytest.param("320100", Level.CITY, "310000", Level.PROVINCE, id="city-under-other-province"),
        pytest.param("310201", Level.DISTRICT, "310100", Level.CITY, id="district-under-other-city"),
        pytest.param("310109018", Level.STREET, "310101", Level.DISTRICT, id="street-under-other-district"),
        pytest.param(
            "310109018021", Level.COMMUNITY, "310101023", Level.STREET, id="community-under-other-street"
        ),
        pytest.param("310101023", Level.STREET, "310100", Level.CITY, id="street-under-a-city"),
        pytest.param(
            "310101023001", Level.COMMUNITY, "310101", Level.DISTRICT, id="community-under-district"
        ),
        pytest.param("310101", Level.DISTRICT, "310000", Level.PROVINCE, id="district-under-a-province"),
        pytest.param("310100", Level.CITY, "310100", Level.CITY, id="city-under-a-city"),
        pytest.param("310000", Level.PROVINCE, "110000", Level.PROVINCE, id="province-with-parent"),
        pytest.param("310100", Level.CITY, None, None, id="city-without-parent"),
        pytest.param("310101", Level.DISTRICT, None, None, id="district-without-parent"),
        pytest.param("310101023", Level.STREET, "", None, id="street-with-empty-parent"),
        pytest.param("310101023001", Level.COMMUNITY, None, None, id="community-without-parent"),
        pytest.param("310000", "village", None, None, id="unknown-level"),
    ],
)
def test_a_code_that_does_not_fit_is_rejected_with_a_reason(code, level, parent_code, parent_level):
    # given a code with exactly one thing wrong with it
    # when it is checked
    problems = code_problems(code, level, parent_code, parent_level)

    # then that thing is reported in words
    assert problems, f"{code!r} as {level} under {parent_code!r} was accepted"
    assert all(isinstance(p, str) and p.strip() for p in problems)


def test_a_problem_names_the_code_that_has_the_wrong_length():
    # given a district code one digit short
    # when it is checked
    problems = code_problems("31010", Level.DISTRICT, "310100", Level.CITY)

    # then the message quotes the code so the user can find it
    assert len(problems) == 1
    assert "31010" in problems[0]


def test_a_prefix_problem_names_the_parent_prefix():
    # given a street whose code belongs to 虹口区 placed under 黄浦区
    # when it is checked
    problems = code_problems("310109018", Level.STREET, "310101", Level.DISTRICT)

    # then the message names the prefix it should have started with
    assert len(problems) == 1
    assert "310101" in problems[0]


def test_levels_are_ordered_root_to_leaf_with_growing_code_lengths():
    # given the five levels
    # when their depths and code lengths are read
    depths = [level_depth(level) for level in LEVEL_ORDER]
    lengths = [CODE_LENGTH[level] for level in LEVEL_ORDER]

    # then province is the root and community the leaf, and codes only grow
    assert LEVEL_ORDER[0] == Level.PROVINCE
    assert LEVEL_ORDER[-1] == Level.COMMUNITY
    assert depths == [0, 1, 2, 3, 4]
    assert lengths == [6, 6, 6, 9, 12]
