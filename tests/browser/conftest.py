"""Real-browser tests: Debian's Chromium, driven by Playwright, against a live server in this process.

The server is a thread of the test process that shares the test's database connection (SQLite in memory),
the way Django's own live server does for in-memory SQLite. Each test runs inside one transaction that is
rolled back at its end, like every other test here, so nothing is ever deleted from the append-only ledger
and audit tables (a flush would be refused by their triggers). Requests are handled one at a time under a
lock, which the test takes too whenever it reads the database itself in the middle of a journey.

Because the server runs in this process, ``time_machine`` moves its clock too: every test starts tomorrow at
08:30 with the clock standing still, and ``clock.at(hour, minute)`` moves it the way a day goes by.

Chromium (Debian's, at /usr/bin/chromium: Playwright's own browser download cannot work here) and a CJK font
are installed by ``.ci/run`` or ``make browser-deps``, axe-core by ``make test`` itself (``npm ci``). Without
them these tests are skipped with the reason, except under CI, where they fail.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager, suppress
from pathlib import Path
from typing import Any, cast

import pytest
import time_machine
from django.conf import settings
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.handlers.wsgi import WSGIHandler
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.db import connections
from django.db.backends.sqlite3.base import DatabaseWrapper as SQLiteDatabase
from django.utils import timezone

from timebank.care import services as care
from timebank.care.models import ConfirmMethod, ServiceOrder
from timebank.care.tests.conftest import *  # noqa: F403 (the Shanghai policy, 王阿婆, 李志强, her son, the station)
from timebank.care.tests.conftest import at, user_of
from timebank.cli.testrun import AXE, CHROMIUM, browser_lacks
from timebank.conftest import PASSWORD, staff
from timebank.exchange import services as exchange
from timebank.exchange.models import Merchant, Product, ProductKind
from timebank.exchange.tests.conftest import *  # noqa: F403 (the 晋阳 shop, its clerk, rice, 蒋阿姨)
from timebank.people.models import Member, Role, User
from timebank.regions.models import Region
from timebank.sensing.presence import sessions_derive
from timebank.sensing.tests.presence_kit import Events
from timebank.web.views.display import COOKIE as LARGE_TEXT_COOKIE

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PHONE = {"width": 412, "height": 915}
DESK = {"width": 1366, "height": 900}
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


# --- what the browser tests need ----------------------------------------------------------------------------


def missing_requirements() -> list[str]:
    missing = browser_lacks()
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package (pip install -e '.[dev]')")
    return missing


@pytest.fixture(scope="session")
def browser_ready() -> None:
    missing = missing_requirements()
    if missing:
        message = "browser tests need " + "; ".join(missing)
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


# --- the server ---------------------------------------------------------------------------------------------


class _OneAtATime:
    """The site, handling one request at a time: every request thread shares the test's connection."""

    def __init__(self, app: Any, lock: threading.RLock) -> None:
        self.app, self.lock = app, lock

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with self.lock:
            result = self.app(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                result.close()  # request_finished runs here, under the lock
        return [body]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class LiveServer:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.connection = connections["default"]
        self.connection.inc_thread_sharing()
        self.httpd = ThreadedWSGIServer(
            ("127.0.0.1", 0),
            _Quiet,
            allow_reuse_address=False,
            connections_override={"default": self.connection},
        )
        self.httpd.set_app(StaticFilesHandler(cast(Any, _OneAtATime(WSGIHandler(), self.lock))))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="live-server", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)
        self.connection.dec_thread_sharing()

    def quiet(self) -> AbstractContextManager[Any]:
        """Hold the server still while the test reads the database itself."""
        return self.lock


@pytest.fixture(scope="session")
def live(browser_ready: None, django_db_setup: None, django_db_blocker: Any) -> Iterator[LiveServer]:
    connection = connections["default"]
    if not isinstance(connection, SQLiteDatabase) or not connection.is_in_memory_db():
        pytest.skip("browser tests run on the SQLite pass (their server shares the in-memory test database)")
    with django_db_blocker.unblock():
        connection.ensure_connection()
    server = LiveServer()
    yield server
    server.stop()


# --- the clock ----------------------------------------------------------------------------------------------


class Clock:
    """The service's clock (and the test's): a day that starts tomorrow at 08:30 and stands still between
    moves."""

    def __init__(self) -> None:
        self.day = timezone.localdate() + dt.timedelta(days=1)
        self._travel = time_machine.travel(self.moment(8, 30), tick=False)
        self._coordinates = self._travel.start()

    def moment(self, hour: int, minute: int = 0) -> dt.datetime:
        return timezone.make_aware(dt.datetime.combine(self.day, dt.time(hour, minute)))

    def at(self, hour: int, minute: int = 0) -> dt.datetime:
        moment = self.moment(hour, minute)
        self._coordinates.move_to(moment)
        return moment

    def stop(self) -> None:
        self._travel.stop()


@pytest.fixture(autouse=True)
def clock() -> Iterator[Clock]:
    moving = Clock()
    yield moving
    moving.stop()


# --- the browser --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium(browser_ready: None) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Playwright's synchronous API keeps an event loop in this thread, which Django takes for async code
    # and then refuses database calls; there is no async code here (pytest-playwright's advice for Django).
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            yield browser
            browser.close()
    finally:
        if before is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


class Site:
    """Browsers of the people in a test, each signed in through the sign-in page."""

    def __init__(self, chromium: Any, live: LiveServer) -> None:
        self.chromium, self.live = chromium, live
        self.contexts: list[Any] = []
        self.script_errors: list[str] = []

    def url(self, path: str) -> str:
        return self.live.url + path

    def new_page(
        self, *, phone: bool = True, language: str = "zh-hans", large_text: bool | None = None
    ) -> Any:
        context = self.chromium.new_context(
            base_url=self.live.url,
            viewport=PHONE if phone else DESK,
            locale="zh-CN",
            timezone_id="Asia/Shanghai",
            service_workers="block",
        )
        context.set_default_timeout(15_000)
        cookies = []
        if language != "zh-hans":
            cookies.append({"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": self.live.url})
        if large_text is not None:
            cookies.append(
                {"name": LARGE_TEXT_COOKIE, "value": "on" if large_text else "off", "url": self.live.url}
            )
        if cookies:
            context.add_cookies(cookies)
        context.route("**/favicon.ico", lambda route: route.fulfill(status=204, body=""))
        self.contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: self.script_errors.append(f"{page.url}: {error}"))
        return page

    def sign_in(self, user: User | str, **options: Any) -> Any:
        """A fresh browser of ``user``, signed in with their username and password."""
        username = user if isinstance(user, str) else user.username
        page = self.new_page(**options)
        page.goto("/sign-in/")
        form = page.locator("main form").filter(has=page.locator("input[name=password]"))
        form.locator("input[name=identifier]").fill(username)
        form.locator("input[name=password]").fill(PASSWORD)
        self.submit(page, form.locator("button[type=submit]"))
        assert "/sign-in/" not in page.url, f"{username} could not sign in"
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()

    # What the journeys do on the pages (test modules cannot import from a conftest, so the site carries the
    # helpers below to them).

    def submit(self, page: Any, control: Any) -> None:
        """Click a button or link that loads another page, and wait until that page is there."""
        with page.expect_navigation():
            control.click()

    def look(self, page: Any, name: str = "", *, elder: bool = False) -> None:
        """What every page a journey reaches goes through: axe, the elder-mode numbers on elder pages, and a
        screenshot under ``name`` when it is a page people should be able to look at."""
        problems = self.problems(page, elder=elder)
        assert not problems, f"on {page.url}:\n" + "\n".join(problems)
        if name:
            screenshot(page, name)

    def problems(self, page: Any, *, elder: bool = False) -> list[str]:
        return axe_problems(page) + duplicate_ids(page) + (elder_problems(page)[1] if elder else [])

    def elder_numbers(self, page: Any) -> dict[str, Any]:
        numbers, problems = elder_problems(page)
        assert not problems, f"elder-mode numbers on {page.url}:\n" + "\n".join(problems)
        return numbers

    def screenshot(self, page: Any, name: str) -> Path:
        return screenshot(page, name)

    def links(self, page: Any, selector: str) -> list[str]:
        """The site's own addresses that the links under ``selector`` lead to."""
        hrefs: list[str] = page.eval_on_selector_all(selector, "els => els.map(e => e.getAttribute('href'))")
        return [h for h in hrefs if h.startswith("/")]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def site(request: pytest.FixtureRequest, chromium: Any, live: LiveServer, db: None) -> Iterator[Site]:
    opened = Site(chromium, live)
    yield opened
    if request.node.stash.get(_FAILED, False):  # what each person's browser showed when the test failed
        failed = SCREENSHOTS / "failed"
        failed.mkdir(parents=True, exist_ok=True)
        for n, context in enumerate(opened.contexts):
            for m, page in enumerate(context.pages):
                with suppress(Exception):  # the test's own failure is the one to report
                    page.screenshot(path=str(failed / f"{request.node.name}-{n}-{m}.png"), full_page=True)
    opened.close()
    assert not opened.script_errors, "script errors in the pages:\n" + "\n".join(opened.script_errors)


# --- accessibility ------------------------------------------------------------------------------------------


AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations
    .filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' — ' + (n.failureSummary || ''))}));
}"""


def axe_violations(page: Any) -> list[dict[str, Any]]:
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = page.evaluate(AXE_RUN)
    return found


def duplicate_ids(page: Any) -> list[str]:
    """Ids used twice (axe no longer looks): a label or a description pointing at one of them may name the
    wrong box."""
    twice: list[str] = page.evaluate(
        """() => {
          const seen = new Set(), twice = new Set();
          for (const e of document.querySelectorAll('[id]')) (seen.has(e.id) ? twice : seen).add(e.id);
          return [...twice];
        }"""
    )
    return [f"the id {name!r} is used more than once" for name in twice]


def axe_problems(page: Any) -> list[str]:
    """What axe-core finds serious or critical on the page as it is now, one line per rule."""
    return [
        f"axe {v['impact']} {v['id']}: {v['help']}\n    " + "\n    ".join(v["nodes"])
        for v in axe_violations(page)
    ]


# --- elder mode ---------------------------------------------------------------------------------------------


ELDER_NUMBERS = (Path(__file__).parent / "elder_numbers.js").read_text()


def elder_problems(page: Any) -> tuple[dict[str, Any], list[str]]:
    """The MIIT elder-friendly numbers, measured on the page as drawn: body text at least 18 px with line
    spacing at least 1.3, text contrast at least 4.5:1, every control in the page's main part at least 44 px
    high and wide. In elder mode (``<html class="large-text">``) controls are at least 60×60 px, no text in
    the main part is under 18 px and the largest is at least 30 px."""
    numbers: dict[str, Any] = page.evaluate(ELDER_NUMBERS)
    problems = []
    if numbers["fontSize"] < 18:
        problems.append(f"body text is {numbers['fontSize']}px")
    if numbers["lineHeight"] < 1.3 * numbers["fontSize"]:
        problems.append(f"line height {numbers['lineHeight']}px for {numbers['fontSize']}px text")
    for text in numbers["texts"]:
        if text["ratio"] < 4.5:
            problems.append(f"contrast {text['ratio']:.2f}:1 of {text['el']}")
        if numbers["large"] and text["main"] and text["size"] < 18:
            problems.append(f"{text['size']}px text {text['el']}")
    if numbers["large"] and max((t["size"] for t in numbers["texts"]), default=0) < 30:
        problems.append("no text of 30 px or more")
    smallest = 60 if numbers["large"] else 44
    for target in numbers["targets"]:
        if target["width"] < smallest - 0.5 or target["height"] < smallest - 0.5:
            problems.append(f"{target['width']:.0f}×{target['height']:.0f}px target {target['el']}")
    return numbers, problems


# --- screenshots --------------------------------------------------------------------------------------------


def screenshot(page: Any, name: str) -> Path:
    """A full-page screenshot under var/screenshots/, named by page, language and mode."""
    lang = page.evaluate("document.documentElement.lang").lower() or "unknown"
    mode = "large" if page.evaluate("document.documentElement.classList.contains('large-text')") else "normal"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.{lang}.{mode}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# --- people only these tests need ---------------------------------------------------------------------------


@pytest.fixture
def auditor(admin_user: User, tree: dict[str, Region]) -> User:
    """The civil-affairs bureau's auditor for Shanghai: read-only."""
    return staff(admin_user, "shanghai-auditor", Role.AUDITOR, tree["310000"])


@pytest.fixture
def lively(
    clock: Clock,
    post: Callable[..., ServiceOrder],
    old_elder: Member,
    helper: Member,
    son: Member,
    jinyang_holder: Member,
    rice: Product,
    care_home_right: Product,
) -> None:
    """Something on every list: a service waiting for review, one assigned and one open, a family, an order
    of rice waiting at the shop, a special right waiting for the station, and a visit of 李志强 to 王阿婆 the
    sensors noticed yesterday with no service planned (for her, or the station, to record or dismiss)."""
    events = Events()
    sessions_derive(
        sightings=events.together(helper, old_elder, at(-1, 15), at(-1, 15, 40)) + events.later(at(-1, 18)),
        auto_approve=False,
    )
    given = care.order_accept(actor=user_of(helper), order=post(window_start=at(0, 9), window_end=at(0, 10)))
    care.order_accept(actor=user_of(helper), order=post(window_start=at(2, 9), window_end=at(2, 10)))
    post(window_start=at(3, 14), window_end=at(3, 15))
    clock.at(9)
    care.order_check_in(actor=user_of(helper), order=given)
    clock.at(10)
    given = care.order_check_out(actor=user_of(helper), order=given)
    care.order_confirm(actor=user_of(old_elder), order=given, method=ConfirmMethod.DEVICE)
    exchange.redemption_order(actor=user_of(jinyang_holder), member=jinyang_holder, product=rice)
    exchange.redemption_order(actor=user_of(jinyang_holder), member=jinyang_holder, product=care_home_right)
    clock.at(10, 30)


@pytest.fixture
def care_home_right(shop: Merchant, hongkou_operator: User) -> Product:
    """A special right at the 晋阳 shop, which the station grants."""
    return exchange.product_save(
        actor=hongkou_operator,
        merchant=shop,
        kind=ProductKind.RIGHT,
        name="公办养老院优先入住",
        name_en="Priority admission to the public care home",
        price_minutes=300,
        stock=2,
    )
