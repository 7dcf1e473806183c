"""The dashboard in a real browser (Debian's Chromium, headless): sorting works as plain links and htmx
swaps the table in place, with no Content-Security-Policy violation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.accounts import service as accounts_service
from app.accounts.models import Role
from app.config import Settings
from app.db import utcnow
from app.main import create_app
from app.web.csrf import SESSION_COOKIE
from tests.agreement.conftest import Voted
from tests.browser import CHROMIUM, LAUNCH_ARGS, serve
from tests.factories import make_user_without_password as make_user

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")


@pytest.fixture
def live_url(settings: Settings, session_factory: sessionmaker[Session]) -> Iterator[str]:
    """The app on 127.0.0.1, on the test's connection (requests come one at a time)."""
    with serve(create_app(settings, session_factory=session_factory)) as url:
        yield url


def test_sorting_the_annotator_table_in_the_browser(db: Session, voted: Voted, live_url: str) -> None:
    from playwright.sync_api import sync_playwright

    admin = make_user(db, Role.ADMIN)
    cookie = accounts_service.start_session(db, user=admin, now=utcnow(), hours=1)
    db.flush()
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        context = browser.new_context()
        context.add_cookies([{"name": SESSION_COOKIE, "value": cookie, "url": live_url}])
        page = context.new_page()
        page.on("console", lambda message: problems.append(message.text)
                if "Content Security Policy" in message.text else None)
        page.on("response", lambda response: problems.append(f"{response.status} {response.url}")
                if response.status >= 400 and not response.url.endswith("/favicon.ico") else None)
        page.goto(f"{live_url}/projects/{voted.project.id}/dashboard")
        assert page.locator("svg.chart").count() == 2
        page.wait_for_function("() => window.htmx !== undefined")
        page.evaluate("() => { document.body.dataset.loaded = 'once'; }")  # gone if the page reloads
        page.get_by_role("link", name="Agrees with others").click()
        page.wait_for_url("**sort=agreement&order=desc")
        page.locator("th[aria-sort='descending']").wait_for()
        first = page.locator("#annotator-table tbody tr").first.inner_text()
        assert voted.annotators[2].username not in first  # u3 agrees least: last in descending order
        assert page.evaluate("() => document.body.dataset.loaded") == "once"  # swapped by htmx
        browser.close()
    assert problems == []
