import pytest
from django.utils import translation

from timebank.common.units import format_minutes


@pytest.mark.parametrize(
    ("minutes", "zh", "en"),
    [
        (210, "3 小时 30 分", "3 h 30 min"),
        (120, "2 小时", "2 h"),
        (45, "45 分钟", "45 min"),
        (0, "0 分钟", "0 min"),
        (-90, "-1 小时 30 分", "-1 h 30 min"),
    ],
)
def test_minutes_read_the_way_each_language_expects(minutes, zh, en):
    with translation.override("zh-hans"):
        assert format_minutes(minutes) == zh
    with translation.override("en"):
        assert format_minutes(minutes) == en
