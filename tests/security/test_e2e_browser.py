"""End to end in the real browser (Debian's Chromium, headless) against a live server: an annotator signs in,
passes calibration, judges pairwise and Likert items with the keyboard only and sees each next item without
a page reload; an admin publishes a guideline version that the annotator must acknowledge; a researcher
downloads an export. A failing step saves a screenshot (its path is printed)."""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.accounts import service as accounts_service
from app.accounts.models import AuthSession, Role, User
from app.annotation.models import Judgement
from app.config import Settings
from app.db import utcnow
from app.guidelines import service as guidelines_service
from app.guidelines.models import GuidelineAcknowledgement
from app.main import create_app
from app.projects.models import Mode
from tests.browser import CHROMIUM, serve, snapshot_on_failure, watched_page
from tests.factories import (
    PASSWORD,
    make_gold,
    make_guideline_version,
    make_pair_item,
    make_project,
    make_single_item,
    make_user,
    make_user_without_password,
)

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")


@dataclass(frozen=True)
class Study:
    base: str
    pairwise: int
    likert: int
    annotator: str
    admin_cookie: str
    researcher_cookie: str


def _seed(db: Session) -> tuple[int, int, str, str, str]:
    admin = make_user_without_password(db, Role.ADMIN)
    researcher = make_user_without_password(db, Role.RESEARCHER)
    annotator = make_user(db, username="ana")
    pairwise = make_project(db, overlap_k=1, gold_rate=0.0, members=[annotator, researcher])
    make_gold(db, make_pair_item(db, pairwise, "Calibration question", a="CALIB GOOD", b="CALIB BAD"),
              "a", purpose="calibration", explanation="The good one.")
    for n in ("one", "two"):
        make_pair_item(db, pairwise, f"Question {n}", a=f"answer {n} A", b=f"answer {n} B")
    likert = make_project(db, mode=Mode.LIKERT, overlap_k=1, gold_rate=0.0, members=[annotator])
    for n in ("three", "four"):
        make_single_item(db, likert, f"Question {n}", body=f"answer {n}")
    for project in (pairwise, likert):
        version = make_guideline_version(db, project, admin, body="# Rules\n\nBe fair.")
        guidelines_service.acknowledge(db, project_id=project.id, version_id=version.id, user=annotator,
                                       now=utcnow())
    cookies = [accounts_service.start_session(db, user=u, now=utcnow(), hours=1) for u in (admin, researcher)]
    return pairwise.id, likert.id, annotator.username, *cookies


@pytest.fixture
def study(committed: sessionmaker[Session], settings: Settings) -> Iterator[Study]:
    with committed() as db, db.begin():
        seeded = _seed(db)
    with serve(create_app(settings, session_factory=committed)) as base:
        yield Study(base, *seeded)


def _sign_in(page: Any, study: Study) -> None:
    page.goto(f"{study.base}/login")
    page.keyboard.type(study.annotator)  # the username field has autofocus
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{study.base}/projects")


def _calibrate(page: Any, study: Study) -> None:
    page.goto(f"{study.base}/projects/{study.pairwise}/annotate")
    page.wait_for_url("**/calibration/*")
    good_side = page.locator(".response", has_text="CALIB GOOD").get_attribute("data-side")
    page.keyboard.press("1" if good_side == "a" else "2")
    page.keyboard.press("w")
    page.keyboard.press("Enter")
    sync_api.expect(page.locator(".feedback .badge")).to_have_text("Correct")
    sync_api.expect(page.locator(".feedback a.btn")).to_be_focused()  # htmx applies autofocus after the swap
    page.keyboard.press("Enter")  # the focused "See the result" link
    sync_api.expect(page.locator("#result-heading")).to_have_text("Calibration passed")


def _judge_all(page: Any, keys: list[str], expected_items: int) -> None:
    """Judge items with `keys` until none is left; each next item arrives by htmx, with no reload."""
    page.wait_for_load_state("load")  # htmx has taken over the forms: Enter then submits in place
    page.wait_for_function("() => window.htmx !== undefined")
    page.evaluate("() => { document.body.dataset.loaded = 'once'; }")
    navigations: list[str] = []  # main-frame loads: there should be none (named if there are)
    page.on("framenavigated",
            lambda frame: navigations.append(frame.url) if frame == page.main_frame else None)
    seen = []
    for _ in range(expected_items):
        prompt = page.locator(".prompt-panel").inner_text()
        seen.append(prompt)
        for key in keys:
            page.keyboard.press(key)
        page.keyboard.press("Enter")
        page.wait_for_function("(old) => !document.querySelector('.prompt-panel') || "
                               "document.querySelector('.prompt-panel').innerText !== old", arg=prompt)
        # htmx binds the new form when the swap settles (20 ms later): a key pressed before that would
        # post the form natively (a page load, though nothing is lost). People are slower than that.
        page.wait_for_function("() => !document.querySelector('.htmx-added, .htmx-settling')")
    sync_api.expect(page.locator(".all-done h2")).to_have_text("All done")
    assert len(set(seen)) == expected_items
    assert navigations == [], navigations
    assert page.evaluate("() => document.body.dataset.loaded") == "once"  # never reloaded


def _publish_new_version(browser: Any, study: Study, shots: Path) -> None:
    page, watch = watched_page(browser, study.base, study.admin_cookie)
    with snapshot_on_failure(page, shots, "admin-publish"):
        page.goto(f"{study.base}/projects/{study.pairwise}/guidelines")
        page.get_by_role("button", name="New draft").click()
        page.wait_for_url("**/edit")
        page.locator("#body").fill("# Rules\n\nBe fair, and **cite** sources.")
        page.locator("#summary").fill("Cite sources.")
        page.get_by_role("button", name="Publish").click()
        page.wait_for_load_state("networkidle")
        assert "Published" in page.content() or "v2" in page.content()
    assert not watch.problems, watch.problems
    page.context.close()


def test_annotator_admin_and_researcher_in_the_browser(browser: Any, study: Study, tmp_path: Path,
                                                      committed: sessionmaker[Session]) -> None:
    page, watch = watched_page(browser, study.base, None)
    with snapshot_on_failure(page, tmp_path, "annotator"):
        _sign_in(page, study)
        _calibrate(page, study)
        page.goto(f"{study.base}/projects/{study.pairwise}/annotate")
        _judge_all(page, ["1", "w"], expected_items=2)
        page.goto(f"{study.base}/projects/{study.likert}/annotate")
        _judge_all(page, ["5", "6"], expected_items=2)
    _publish_new_version(browser, study, tmp_path)
    with snapshot_on_failure(page, tmp_path, "acknowledge"):
        page.goto(f"{study.base}/projects/{study.pairwise}/annotate")
        page.wait_for_url("**/guidelines/acknowledge")
        assert "cite" in page.locator(".guidelines-body").inner_text()
        page.get_by_role("button", name="I have read the guidelines").click()
        page.wait_for_url("**/annotate")
    assert not watch.problems, watch.problems
    with committed() as db:
        assert db.scalar(select(func.count()).select_from(Judgement)) == 4
        acknowledged = select(func.count()).select_from(GuidelineAcknowledgement).join(User).where(
            User.username == study.annotator)
        assert db.scalar(acknowledged) == 3  # the two first versions, and the one just published

    researcher, watch = watched_page(browser, study.base, study.researcher_cookie)
    with snapshot_on_failure(researcher, tmp_path, "researcher"):
        researcher.goto(f"{study.base}/projects/{study.pairwise}/export")
        researcher.locator("#format").select_option("raw")
        with researcher.expect_download() as info:
            researcher.get_by_role("button", name="Download the export (zip)").click()
        download = info.value
        with zipfile.ZipFile(download.path()) as archive:
            names = archive.namelist()
            jsonl = next(name for name in names if name.endswith(".jsonl"))
            rows = [json.loads(line) for line in archive.read(jsonl).decode().splitlines() if line]
    assert download.suggested_filename.endswith(".zip") and len(rows) == 2
    assert any(name.endswith(".card.md") for name in names)  # the dataset card travels with the data
    assert not watch.problems, watch.problems


def test_an_unsent_judgement_survives_an_expired_session(browser: Any, study: Study, tmp_path: Path,
                                                         committed: sessionmaker[Session]) -> None:
    page, watch = watched_page(browser, study.base, None)
    workspace = f"{study.base}/projects/{study.likert}/annotate"
    with snapshot_on_failure(page, tmp_path, "expired-session"):
        _sign_in(page, study)
        page.goto(workspace)
        prompt = page.locator(".prompt-panel").inner_text()
        page.keyboard.press("5")
        page.keyboard.press("6")
        page.locator("#rationale").focus()
        page.keyboard.type("kept across the sign-in")
        with committed() as db, db.begin():  # the session ends while the annotator is mid-item
            db.execute(update(AuthSession).values(expires_at=utcnow() - timedelta(seconds=1)))
        page.keyboard.press("Control+Enter")
        page.wait_for_url(re.compile(r".*/login\?next=/projects/\d+/annotate$"))
        page.locator('input[name="username"]').fill(study.annotator)  # not by autofocus: this test is
        page.locator('input[name="password"]').fill(PASSWORD)  # about the draft, and typing raced the load
        page.locator('input[name="password"]').press("Enter")
        page.wait_for_url(workspace)
        assert page.locator(".prompt-panel").inner_text() == prompt  # the same item, still leased
        sync_api.expect(page.locator(".draft-restored")).to_be_visible()
        assert page.locator("#rationale").input_value() == "kept across the sign-in"
        assert page.locator('input[name="rating_helpfulness"][value="5"]').is_checked()
        assert page.locator('input[name="rating_correctness"][value="6"]').is_checked()
        page.locator("#rationale").focus()
        page.keyboard.press("Control+Enter")
        page.wait_for_function("(old) => document.querySelector('.prompt-panel').innerText !== old",
                               arg=prompt)
    with committed() as db:
        judgement = db.scalars(select(Judgement)).one()
        assert judgement.rationale == "kept across the sign-in"
    drafts = page.evaluate("() => Object.keys(sessionStorage).filter(k => k.startsWith('prefstudio:'))")
    assert drafts == []  # stored: the draft is gone
    assert [p for p in watch.problems if "401" not in p] == []
