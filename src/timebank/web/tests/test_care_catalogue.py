"""The service catalogue: what each category earns where the reader lives, under the policy in force."""

from __future__ import annotations

import re

from timebank.care.tests.conftest import user_of
from timebank.web.tests.care_fixtures import *  # noqa: F403
from timebank.web.tests.pages import html_of


def _rows(page: str) -> dict[str, list[str]]:
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td>(.*?)</td>", row, re.S)]
        rows[cells[0]] = cells[1:]
    return rows


def test_an_elder_sees_her_own_citys_catalogue(browser, old_elder):
    # given 王阿婆 of 雁荡, under the Shanghai policy
    page = html_of(browser(user_of(old_elder)).get("/care/catalogue/"))
    # then she sees its thirteen categories at x1, counselling only by certified counsellors
    rows = _rows(page)
    assert len(rows) == 13
    assert rows["情感慰藉"] == ["1", "×1", "1 小时", "—"]
    assert rows["心理咨询"][-1] == "counsellor"
    assert "上海市时间银行 2026" in page


def test_the_tiered_policy_of_hongkou_shows_its_coefficients(browser, helper, tree):
    # when a reader looks up 晋阳 (Hongkou, the paper's tiered proposal)
    page = html_of(browser(user_of(helper)).get("/care/catalogue/?region=310109018021"))
    rows = _rows(page)
    # then an hour of personal care earns an hour and a half, an hour of assistance 72 minutes
    assert rows["助浴等生活照料"] == ["3", "×1.5", "1 小时 30 分", "care_worker"]
    assert rows["生活协助"][:3] == ["2", "×1.2", "1 小时 12 分"]


def test_an_unknown_region_or_day_is_said_not_a_500(browser, helper):
    client = browser(user_of(helper))
    response = client.get("/care/catalogue/?region=999999&on=2026-02-30")
    assert response.status_code == 200
    page = html_of(response)
    assert "999999" in page
    # and a day before any policy shows that nothing was in force
    page = html_of(client.get("/care/catalogue/?on=2019-01-01"))
    assert "<tbody>" not in page
