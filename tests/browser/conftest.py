"""Browser fixtures: Debian's Chromium driven by Playwright against pytest-django's live server.

The browser never leaves the live server: any request to another host is aborted and fails the
test. A failing test leaves a screenshot in test-artifacts/; with SCREENSHOTS_DIR set, the tests
also write the README's screenshots there (`make screenshots`).
"""

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Request, Response, Route, expect, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    # No network here: keep Chromium from calling home for updates, sync or field trials.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SKIP_FLAG = "SKIP_BROWSER_TESTS"
MISSING_CHROMIUM = (
    f"Chromium is not installed at {CHROMIUM}; the browser tests need it. Install it with "
    "`apt-get update && apt-get install -y chromium` (`make test` does), or skip these tests "
    f"explicitly with {SKIP_FLAG}=1 or PYTEST_ARGS=\"-m 'not browser'\"."
)
TIMEOUT_MS = 20_000
VIEWPORT = {"width": 1280, "height": 900}
ARTIFACTS_DIR = Path("test-artifacts")
SCREENSHOTS_DIR_VARIABLE = "SCREENSHOTS_DIR"

_skipped_browser_tests: list[str] = []


def pytest_collection_modifyitems(config, items):
    """Skip the browser tests only when asked to, and remember it for the summary."""
    if os.environ.get(SKIP_FLAG) != "1":
        return
    reason = f"{SKIP_FLAG}=1: browser tests skipped on request"
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.skip(reason=reason))
            _skipped_browser_tests.append(item.nodeid)


def pytest_deselected(items):
    browser_tests = [item.nodeid for item in items if item.get_closest_marker("browser")]
    _skipped_browser_tests.extend(browser_tests)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter):
    """Say loudly, below the short summary, that the admin and the docs went untested."""
    yield
    if not _skipped_browser_tests:
        return
    terminalreporter.section("BROWSER TESTS DID NOT RUN", sep="!", red=True, bold=True)
    terminalreporter.line(
        f"{len(_skipped_browser_tests)} browser tests were skipped or deselected: the admin and "
        "the API docs were NOT tested in a browser. CI must run them.",
        red=True,
        bold=True,
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell that the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


# Generous: two shared cores may be busy with other suites.
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One headless Chromium for every test of this package."""
    if not CHROMIUM.exists():
        pytest.fail(MISSING_CHROMIUM, pytrace=False)
    # Playwright's sync API keeps an asyncio event loop running in this thread while the
    # browser is open, so Django takes every ORM call from the test (factories, assertions,
    # database flushes) for one made inside async code and raises SynchronousOnlyOperation.
    # Those calls are plain blocking calls outside any coroutine, so the check is lifted for
    # exactly as long as Playwright runs; the live server answers from its own threads.
    with (
        pytest.MonkeyPatch.context() as patch,
        sync_playwright() as playwright,
    ):
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@dataclass
class Traffic:
    """What the page asked for: requests to other hosts (aborted) and failed static assets."""

    origin: str
    foreign_requests: list[str] = field(default_factory=list)
    static_responses: dict[str, int] = field(default_factory=dict)

    def route(self, route: Route, request: Request) -> None:
        if _origin(request.url) == self.origin:
            route.continue_()
        else:
            self.foreign_requests.append(f"{request.method} {request.url}")
            route.abort("blockedbyclient")

    def record(self, response: Response) -> None:
        path = urlsplit(response.url).path
        if _origin(response.url) == self.origin and path.startswith("/static/"):
            self.static_responses[path] = response.status


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@pytest.fixture
def traffic(live_server) -> Traffic:
    return Traffic(origin=_origin(live_server.url))


@pytest.fixture
def page(request, browser, live_server, traffic) -> Iterator[Page]:
    """A fresh page on the live server (relative URLs work); only the live server is reachable."""
    context = browser.new_context(base_url=live_server.url, viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    context.route("**/*", traffic.route)
    new_page = context.new_page()
    new_page.on("response", traffic.record)
    yield new_page
    failed_assets = {
        path: status for path, status in traffic.static_responses.items() if status >= 400
    }
    report = getattr(request.node, "report_call", None)
    if report is None or report.failed or traffic.foreign_requests or failed_assets:
        artifacts = request.config.rootpath / ARTIFACTS_DIR
        artifacts.mkdir(exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.nodeid)
        new_page.screenshot(path=artifacts / f"{name}.png", full_page=True)
    context.close()
    assert traffic.foreign_requests == [], "the page tried to leave the live server"
    assert failed_assets == {}, "static assets failed to load"


@pytest.fixture
def readme_screenshot(page):
    """Save the page as a README screenshot when SCREENSHOTS_DIR is set (`make screenshots`)."""

    def save(name: str) -> None:
        if directory := os.environ.get(SCREENSHOTS_DIR_VARIABLE):
            Path(directory).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=Path(directory) / f"{name}.png")

    return save


@pytest.fixture
def admin_page(page, admin_user) -> Page:
    """A page logged in to the admin through its login form."""
    page.goto("/admin/")
    page.get_by_label("Username").fill(admin_user.username)
    page.get_by_label("Password").fill("password")  # pytest-django's admin_user
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Site administration").wait_for()
    return page
