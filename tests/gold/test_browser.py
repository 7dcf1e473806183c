"""Calibration in a real browser (Debian's Chromium, headless), keyboard only: each answer shows the
expected answer and why, every step swaps in without a page reload, and passing opens the real work."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.accounts import service as accounts_service
from app.config import Settings
from app.db import utcnow
from app.main import create_app
from app.projects.models import ProjectMember
from app.web.csrf import SESSION_COOKIE
from tests.browser import CHROMIUM, LAUNCH_ARGS, serve
from tests.factories import make_gold, make_pair_item, make_project, make_user_without_password

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")


@pytest.fixture
def live_url(settings: Settings, session_factory: sessionmaker[Session]) -> Iterator[str]:
    with serve(create_app(settings, session_factory=session_factory)) as url:
        yield url


def _answer_with_keys(page: object, *, right: bool) -> None:
    """Press 1 or 2 for the side that shows RIGHT (or the other one), then Enter."""
    right_side = page.locator(".response", has_text="RIGHT").get_attribute("data-side")  # type: ignore[attr-defined]
    key = {"a": "1", "b": "2"}[right_side if right else ("b" if right_side == "a" else "a")]
    page.keyboard.press(key)  # type: ignore[attr-defined]
    page.keyboard.press("Enter")  # type: ignore[attr-defined]


def test_calibration_by_keyboard_then_real_work(db: Session, live_url: str, tmp_path: Path) -> None:
    project = make_project(db, overlap_k=1, calibration_pass=0.6, calibration_retries=1)
    make_pair_item(db, project, text="regular work item", a="plain A", b="plain B")
    for n in range(3):
        item = make_pair_item(db, project, text=f"calibration {n}", a=f"RIGHT {n}", b=f"WRONG {n}")
        make_gold(db, item, "a", purpose="calibration", explanation=f"Reason **number {n}**.")
    annotator = make_user_without_password(db)
    db.add(ProjectMember(project_id=project.id, user_id=annotator.id))
    cookie = accounts_service.start_session(db, user=annotator, now=utcnow(), hours=1)
    db.flush()

    problems: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        context = browser.new_context()
        context.add_cookies([{"name": SESSION_COOKIE, "value": cookie, "url": live_url}])
        page = context.new_page()
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
        try:
            page.goto(f"{live_url}/projects/{project.id}/annotate")
            page.wait_for_url("**/calibration/*")
            page.wait_for_function("() => window.htmx !== undefined")
            page.evaluate("() => { document.body.dataset.loaded = 'once'; }")  # gone if the page reloads
            for n, right in enumerate([True, False, True]):
                sync_api.expect(page.locator(".workspace")).to_contain_text(f"Item {n + 1} of 3")
                page.wait_for_function("() => !document.querySelector('.htmx-added, .htmx-settling')")
                shown = page.locator(".prompt-panel").inner_text().split("calibration ")[1].strip()
                _answer_with_keys(page, right=right)
                feedback = page.locator(".feedback")
                sync_api.expect(feedback).to_contain_text("Correct" if right else "Not the expected answer")
                sync_api.expect(feedback.locator(".explanation strong")).to_have_text(f"number {shown}")
                sync_api.expect(feedback.locator("a.btn")).to_be_focused()  # htmx applies autofocus
                # htmx boosts the link when the swap settles; an Enter before that follows it natively
                page.wait_for_function("() => !document.querySelector('.htmx-added, .htmx-settling')")
                page.keyboard.press("Enter")  # the focused "Next item" / "See the result" link
            sync_api.expect(page.locator("#result-heading")).to_have_text("Calibration passed")
            assert page.evaluate("() => document.body.dataset.loaded") == "once"
            page.get_by_role("link", name="Start annotating").click()
            sync_api.expect(page.locator(".prompt-panel")).to_contain_text("regular work item")
        except Exception:
            page.screenshot(path=str(tmp_path / "calibration-failure.png"))
            raise
        finally:
            browser.close()
    assert problems == []
