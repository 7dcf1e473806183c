"""The keyboard overlay and the live preview in a real browser (Debian's Chromium, headless) against a
live server on 127.0.0.1. Rows are committed for real (the `committed` fixture empties the tables)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.accounts import service as accounts_service
from app.accounts.models import Role
from app.config import Settings
from app.db import utcnow
from app.guidelines import service as guidelines_service
from app.main import create_app
from app.web.csrf import SESSION_COOKIE
from tests.browser import CHROMIUM, serve
from tests.factories import make_guideline_version, make_pair_item, make_project, make_user_without_password

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")


@dataclass(frozen=True)
class World:
    base: str
    project_id: int
    draft_id: int
    admin_cookie: str
    annotator_cookie: str


@pytest.fixture
def world(committed: sessionmaker[Session], settings: Settings) -> Iterator[World]:
    with committed() as db, db.begin():
        admin = make_user_without_password(db, Role.ADMIN)
        annotator = make_user_without_password(db)
        project = make_project(db, members=[annotator])
        make_pair_item(db, project, a="LEFT answer", b="RIGHT answer")
        version = make_guideline_version(db, project, admin, body="# House rules\n\nPrefer **facts**.")
        guidelines_service.acknowledge(
            db, project_id=project.id, version_id=version.id, user=annotator, now=utcnow()
        )
        draft = make_guideline_version(db, project, admin, body="draft", publish=False)
        cookies = [
            accounts_service.start_session(db, user=u, now=utcnow(), hours=1) for u in (admin, annotator)
        ]
        ids = project.id, draft.id
    with serve(create_app(settings, session_factory=committed)) as base:
        yield World(base, *ids, *cookies)


def _page(browser: object, world: World, cookie: str) -> tuple[object, list[str]]:
    context = browser.new_context()  # type: ignore[attr-defined]
    context.add_cookies([{"name": SESSION_COOKIE, "value": cookie, "url": world.base}])
    page = context.new_page()
    errors: list[str] = []  # script errors and failed requests (the browser's own favicon.ico aside)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "response",
        lambda r: (
            errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico")
            else None
        ),
    )
    return page, errors


def test_g_opens_the_active_guidelines_over_the_workspace(browser: object, world: World) -> None:
    page, errors = _page(browser, world, world.annotator_cookie)
    page.goto(f"{world.base}/projects/{world.project_id}/annotate")
    overlay = page.locator(".guidelines-overlay")
    assert not overlay.is_visible()
    page.keyboard.press("g")
    sync_api.expect(overlay.locator("h1")).to_have_text("House rules")
    assert overlay.is_visible() and "facts" in overlay.inner_text()
    page.keyboard.press("1")  # no vote while the overlay is open
    assert not page.locator('input[name="choice"][value="a"]').is_checked()
    page.keyboard.press("Escape")
    assert not overlay.is_visible()
    page.keyboard.press("1")
    assert page.locator('input[name="choice"][value="a"]').is_checked()
    page.get_by_role("link", name="Guidelines g").click()
    sync_api.expect(overlay).to_be_visible()
    overlay.get_by_role("button", name="Close").click()
    assert not overlay.is_visible() and errors == []


def test_the_editor_previews_while_typing(browser: object, world: World) -> None:
    page, errors = _page(browser, world, world.admin_cookie)
    page.goto(f"{world.base}/projects/{world.project_id}/guidelines/versions/{world.draft_id}/edit")
    page.locator("#body").fill("## Live heading\n\n<script>window.pwned = 1</script> and *emphasis*")
    sync_api.expect(page.locator("#preview h2")).to_have_text("Live heading")
    assert page.locator("#preview em").inner_text() == "emphasis"
    assert "<script>" in page.locator("#preview").inner_text()  # shown as text
    assert page.evaluate("window.pwned") is None and errors == []
