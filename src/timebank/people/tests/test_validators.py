"""Resident ID numbers (GB 11643-1999) and mainland mobile numbers."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import translation

from timebank.people.validators import (
    InvalidValue,
    age_on,
    id_check_digit,
    mask_id_number,
    normalize_mobile,
    parse_id_number,
)

TODAY = dt.date(2025, 6, 1)
WEIGHTS = [2 ** (17 - i) % 11 for i in range(17)]  # ISO 7064 MOD 11-2, derived rather than copied


def reference_check_digit(first17: str) -> str:
    value = (12 - sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11) % 11
    return "X" if value == 10 else str(value)


def english_error(raw: str, **kwargs: dt.date) -> str:
    with translation.override("en"), pytest.raises(InvalidValue) as exc:
        parse_id_number(raw, **kwargs)
    return str(exc.value)


def test_the_standard_example_number_is_valid():
    # given the example number of GB 11643-1999
    # when
    parsed = parse_id_number("11010519491231002X", today=TODAY)

    # then
    assert parsed.number == "11010519491231002X"
    assert parsed.birth_date == dt.date(1949, 12, 31)
    assert parsed.sex == "F"
    assert parsed.masked == "1101**********002X"


def test_a_wrong_check_digit_is_refused_naming_the_expected_one():
    # given the example number with its last character changed
    # when
    message = english_error("110105194912310021", today=TODAY)

    # then
    assert "should be X" in message


def test_a_lowercase_x_is_accepted_and_stored_uppercase():
    # given / when
    parsed = parse_id_number("11010519491231002x", today=TODAY)

    # then
    assert parsed.number == "11010519491231002X"


def test_surrounding_spaces_are_ignored():
    assert parse_id_number(" 11010519491231002X \n", today=TODAY).number == "11010519491231002X"


@pytest.mark.parametrize("raw", ["11010519491231002", "11010519491231002X1", "", "11010519491231002XX"])
def test_a_number_without_18_characters_is_refused(raw):
    # given / when
    message = english_error(raw, today=TODAY)

    # then
    assert "18 characters" in message
    assert f"this one has {len(raw.strip())}" in message


@pytest.mark.parametrize(
    "raw",
    [
        "1101051949A231002X",
        "X10105194912310021",
        "11010519491231002Y",
        "１１０１０５１９４９１２３１００２Ｘ",
    ],
    ids=["letter-inside", "letter-first", "bad-last-char", "fullwidth-digits"],
)
def test_letters_other_than_a_final_x_are_refused(raw):
    # given / when
    message = english_error(raw, today=TODAY)

    # then
    assert "17 digits followed by a digit or X" in message


def test_an_unknown_province_prefix_is_refused():
    # given a number from province "99", with a correct check digit
    first17 = "99010519491231002"
    # when
    message = english_error(first17 + id_check_digit(first17), today=TODAY)

    # then
    assert "“99”" in message
    assert "province" in message


@pytest.mark.parametrize("birth", ["19491301", "19500230", "19490229", "19490100"])
def test_an_impossible_birth_date_is_refused(birth):
    # given month 13, 30 February, 29 February of a common year, day 0 (each with a correct check digit)
    first17 = f"110105{birth}002"
    # when
    message = english_error(first17 + id_check_digit(first17), today=TODAY)

    # then
    assert "not a real birth date" in message


@pytest.mark.parametrize("birth", ["20250602", "20990101", "18991231", "18000101"])
def test_a_birth_date_in_the_future_or_before_1900_is_refused(birth):
    # given
    first17 = f"110105{birth}002"
    # when
    message = english_error(first17 + id_check_digit(first17), today=TODAY)

    # then
    assert "not plausible" in message


def test_the_birth_date_may_be_today_and_the_first_of_1900():
    # given / when / then
    for birth in (TODAY, dt.date(1900, 1, 1)):
        first17 = f"110105{birth:%Y%m%d}002"
        assert parse_id_number(first17 + id_check_digit(first17), today=TODAY).birth_date == birth


def test_a_birth_date_after_the_real_today_is_refused_by_default():
    # given a person born next year
    next_year = dt.date.today().year + 1
    first17 = f"110105{next_year}0101002"
    # when / then
    with pytest.raises(InvalidValue):
        parse_id_number(first17 + id_check_digit(first17))


@pytest.mark.parametrize(("digit", "sex"), [(str(d), "M" if d % 2 else "F") for d in range(10)])
def test_sex_comes_from_the_17th_digit(digit, sex):
    # given
    first17 = f"3101011980010100{digit}"
    # when
    parsed = parse_id_number(first17 + id_check_digit(first17), today=TODAY)

    # then
    assert parsed.sex == sex


@pytest.mark.parametrize(
    "first17",
    [
        "11010519800101001",
        "44030419900615235",
        "51010719751108452",
        "31010120000229001",
        "65010219330303007",
        "81000019561010123",
    ],
)
def test_generated_numbers_parse_and_any_other_last_character_is_refused(first17):
    # given
    check = id_check_digit(first17)
    # when
    parsed = parse_id_number(first17 + check, today=TODAY)

    # then
    assert check == reference_check_digit(first17)
    assert parsed.number == first17 + check
    for wrong in set("0123456789X") - {check}:
        with pytest.raises(InvalidValue):
            parse_id_number(first17 + wrong, today=TODAY)


def test_the_check_digit_agrees_with_iso_7064_on_many_numbers():
    # given every 17-digit body from one office and birth date, all serials
    bodies = [f"310101195001{day:02d}{serial:03d}" for day in (1, 15, 28) for serial in range(0, 1000, 7)]
    # when / then
    assert [id_check_digit(b) for b in bodies] == [reference_check_digit(b) for b in bodies]
    assert {id_check_digit(b) for b in bodies} == set("0123456789X")


def test_masking_keeps_the_first_and_last_four():
    assert mask_id_number("11010519491231002X") == "1101**********002X"
    assert mask_id_number("440304199006152350") == "4403**********2350"


@pytest.mark.parametrize(
    "raw",
    [
        "13912345678",
        "+86 139 1234 5678",
        "+8613912345678",
        "139-1234-5678",
        "008613912345678",
        " 13912345678 ",
    ],
)
def test_mobile_numbers_are_normalized(raw):
    assert normalize_mobile(raw) == "13912345678"


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        ("12912345678", "starts with 13 to 19"),
        ("10912345678", "starts with 13 to 19"),
        ("23912345678", "starts with 13 to 19"),
        ("1391234567", "11 digits, this one has 10"),
        ("139123456789", "11 digits, this one has 12"),
        ("abc", "only digits"),
        ("", "only digits"),
        ("139１２３４５６７８", "only digits"),
        ("+1 139 1234 5678", "only digits"),
    ],
)
def test_bad_mobile_numbers_are_refused_naming_the_rule(raw, rule):
    # given / when
    with translation.override("en"), pytest.raises(InvalidValue) as exc:
        normalize_mobile(raw)

    # then
    assert rule in str(exc.value)


@pytest.mark.parametrize(
    ("birth", "day", "age"),
    [
        (dt.date(1949, 12, 31), dt.date(2024, 12, 30), 74),
        (dt.date(1949, 12, 31), dt.date(2024, 12, 31), 75),
        (dt.date(1949, 12, 31), dt.date(2025, 1, 1), 75),
        (dt.date(2000, 2, 29), dt.date(2001, 2, 28), 0),
        (dt.date(2000, 2, 29), dt.date(2001, 3, 1), 1),
        (dt.date(2000, 2, 29), dt.date(2004, 2, 29), 4),
        (dt.date(1960, 6, 15), dt.date(1960, 6, 15), 0),
    ],
)
def test_age_on_counts_whole_years(birth, day, age):
    assert age_on(birth, day) == age
