"""Junk in URLs, query strings and forms gives a page with a 4xx status (or a normal page), never a 500."""

from __future__ import annotations

import pytest

from timebank.web.tests.pages import html_of, zh

HUGE = "9" * 30
LONG = "长" * 5000
MANY_FIELDS = "&".join(f"f{i}=1" for i in range(1500))

# (method, url, data); {elder} is a member of the staff's community, {other} one of another community.
JUNK = [
    ("get", "/console/people/?page=abc", {}),
    ("get", "/console/people/?page=99999", {}),
    ("get", "/console/people/?page=-1", {}),
    ("get", "/console/people/?page=1e3", {}),
    ("get", "/console/people/?community=garbage", {}),
    ("get", "/console/people/?community=%00", {}),
    ("get", "/console/people/?role=king", {}),
    ("get", f"/console/people/?q={LONG}", {}),
    ("get", "/console/people/?q=%00", {}),
    ("get", "/console/people/?q=%25_%5C", {}),
    ("get", "/console/people/?q=%ED%A0%80", {}),
    ("get", f"/console/people/?{MANY_FIELDS}", {}),
    ("get", "/console/people/abc/", {}),
    ("get", "/console/people/-1/", {}),
    ("get", "/console/people/0/", {}),
    ("get", f"/console/people/{HUGE}/", {}),
    ("get", f"/console/people/{HUGE}/edit/", {}),
    ("post", f"/console/people/{HUGE}/reveal/id-number/", {}),
    ("post", f"/console/people/{HUGE}/priority/", {"group": "living_alone"}),
    ("post", f"/console/people/{HUGE}/bonds/", {}),
    ("get", "/console/people/{elder}/reveal/id-number/", {}),
    ("post", "/console/people/{elder}/reveal/%20/", {}),
    ("post", "/console/people/{elder}/reveal/../", {}),
    ("post", "/console/people/{other}/reveal/id-number/", {}),
    ("get", "/console/people/{other}/", {}),
    ("get", "/console/audit/?page=abc", {}),
    ("get", "/console/audit/?page=99999", {}),
    ("get", "/console/audit/?since=notadate", {}),
    ("get", "/console/audit/?until=2026-02-30", {}),
    ("get", "/console/audit/?since=0001-01-01", {}),
    ("get", "/console/audit/?until=9999-12-31", {}),
    ("get", "/console/audit/?since=9999-12-31", {}),
    ("get", "/console/audit/?event_type=%00", {}),
    ("get", f"/console/audit/?event_type={LONG}", {}),
    ("get", "/console/bonds/?page=abc", {}),
    ("post", "/console/bonds/", {}),
    ("post", "/console/bonds/", {"bond": "abc", "decision": "approve"}),
    ("post", "/console/bonds/", {"bond": "-1", "decision": "approve"}),
    ("post", "/console/bonds/", {"bond": HUGE, "decision": "approve"}),
    ("post", "/console/bonds/", {"bond": "1.5", "decision": "approve"}),
    ("post", "/console/bonds/", {"bond": "\x00", "decision": "approve"}),
    ("post", "/console/people/new/", {}),
    ("post", "/console/people/new/", {"name": "王", "home_region": "abc"}),
    ("post", "/console/people/new/", {"name": "王", "home_region": HUGE}),
    ("post", "/console/people/new/", {"name": "\x00", "home_region": "1", "mobile": "\x00"}),
    ("post", "/console/people/new/", {"name": LONG, "birth_date": "0000-00-00", "sex": "X"}),
    ("post", "/console/people/new/", {"name": "王", "birth_date": "9999-12-31", "languages": "a," * 500}),
    ("post", "/console/people/{elder}/edit/", {}),
    ("post", "/console/people/{elder}/edit/", {"name": "王", "home_region": HUGE, "id_number": "X" * 18}),
    ("post", "/console/people/{elder}/priority/", {}),
    ("post", "/console/people/{elder}/priority/", {"group": "living_alone", "note": LONG}),
    (
        "post",
        "/console/people/{elder}/bonds/",
        {"relation": "x", "relative_name": LONG, "relative_mobile": LONG},
    ),
    (
        "post",
        "/console/people/{elder}/bonds/",
        {"relation": "child", "relative_name": "\x00", "relative_mobile": "\x00"},
    ),
    ("get", "/sign-in/?next=%00", {}),
    ("post", "/sign-in/", {"identifier": "\x00", "password": "\x00"}),
    ("post", "/sign-in/", {"identifier": LONG, "password": LONG}),
    ("post", "/sign-in/?next=%00", {"identifier": "yandang-staff", "password": "x"}),
    ("post", "/i18n/setlang/", {"language": "xx"}),
    ("get", "/no-such-page/", {}),
]


@pytest.mark.parametrize(
    ("method", "url", "data"), JUNK, ids=[f"{m} {u[:60]} {sorted(d)}" for m, u, d in JUNK]
)
def test_junk_never_causes_a_server_error(staff_client, elder, jinyang_elder, method, url, data):
    # given a signed-in staff member whose requests are not raised as exceptions
    staff_client.raise_request_exception = False
    url = url.replace("{elder}", str(elder.pk)).replace("{other}", str(jinyang_elder.pk))
    # when junk arrives
    response = getattr(staff_client, method)(url, data)
    # then the answer is a page or a 4xx, never a 500
    assert response.status_code < 500, html_of(response)[:500]


def test_a_page_that_does_not_exist_is_the_sites_404_page(client, db):
    # given nobody signed in
    client.raise_request_exception = False
    # when a page that does not exist is opened
    response = client.get("/no-such-page/")
    # then the 404 page wears the site's look
    assert response.status_code == 404
    page = html_of(response)
    assert f'<a class="brand" href="/">{zh("TimeBank")}</a>' in page
    assert zh("Not found") in page
    assert 'lang="zh-Hans"' in page


def test_a_member_out_of_reach_gives_the_sites_404_page(staff_client, jinyang_elder):
    # given 雁荡's staff / when they open 晋阳's elder
    response = staff_client.get(f"/console/people/{jinyang_elder.pk}/")
    # then they get the site's 404 page, signed in as themselves
    assert response.status_code == 404
    page = html_of(response)
    assert zh("TimeBank") in page
    assert "yandang-staff" in page
    assert "/console/audit/" in page
