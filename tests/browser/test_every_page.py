"""axe-core on every page each kind of person reaches from their start page: the header's links and the links
in the page, two clicks deep (one page per kind of address, so not every person's page of a long list)."""

from __future__ import annotations

import re
from collections import deque

import pytest

from timebank.care.tests.conftest import user_of

# Addresses that are not pages to look at: signing out, switches that only take a POST, downloads, the Django
# admin. (A download with another address is left out by its content type.)
# /api/ is for programs (its Swagger UI is a developer's tool from django-ninja, not a page of ours)
NOT_PAGES = re.compile(r"^/(sign-out|admin|static|i18n|display|api)/|\.(json|pdf|csv|txt)$")
MAX_PAGES = 60


def kind_of(path: str) -> str:
    """/console/people/12/ and /console/people/31/ are the same kind of page."""
    return re.sub(r"\d+", "N", path.split("#")[0])


def visit_all(site, page, *, elder: bool = False, depth: int = 2) -> tuple[list[str], list[str]]:
    """Every page reachable from ``page`` in ``depth`` clicks, each checked with axe (and the elder-mode
    numbers for an elder); returns the addresses visited and what was wrong on them."""
    start = page.url.removeprefix(site.live.url)
    seen = {kind_of(start)}
    queue = deque([(start, 0)])
    visited: list[str] = []
    problems: list[str] = []
    while queue and len(visited) < MAX_PAGES:
        path, level = queue.popleft()
        response = page.request.get(site.url(path), max_redirects=0)
        if response.status != 200 or "text/html" not in response.headers.get("content-type", ""):
            continue
        page.goto(path)
        problems += [f"{path}: {problem}" for problem in site.problems(page, elder=elder)]
        visited.append(path)
        if level == depth:
            continue
        for link in site.links(page, "header nav a[href], main a[href]"):
            if NOT_PAGES.search(link) or kind_of(link) in seen:
                continue
            seen.add(kind_of(link))
            queue.append((link, level + 1))
    return visited, problems


# The station's staff see what the operator sees, less the staff grants; the journeys go through their pages.
@pytest.mark.parametrize(
    "who", ["old_elder", "helper", "son", "jinyang_holder", "operator", "auditor", "shop_clerk"]
)
def test_every_page_a_person_reaches_has_no_serious_accessibility_problem(site, lively, who, request):
    person = request.getfixturevalue(who)
    user = person if hasattr(person, "username") else user_of(person)
    page = site.sign_in(user, phone=not hasattr(person, "username"))
    visited, problems = visit_all(site, page, elder=who == "old_elder")
    assert len(visited) >= 3, visited
    assert not problems, "\n".join(problems)
