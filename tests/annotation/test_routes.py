from __future__ import annotations

import re
from html.parser import HTMLParser

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts.models import Role
from app.annotation.models import Judgement, Rating
from app.assignment import service as assignment_service
from app.db import utcnow
from app.projects.models import Mode, Project
from tests.factories import bearer, login, make_pair_item, make_project, make_single_item, make_user

HTMX = {"HX-Request": "true"}


def _lease_and_key(html: str) -> tuple[int, str]:
    lease = re.search(r'action="[^"]*/leases/(\d+)"', html)
    key = re.search(r'name="idempotency_key" value="([0-9a-f]{32})"', html)
    assert lease and key, "the workspace shows an item with its form"
    return int(lease.group(1)), key.group(1)


def _judgements(db: Session) -> int:
    return db.scalar(select(func.count(Judgement.id))) or 0


def _pairwise_setup(db: Session, client: TestClient, items: int = 2) -> tuple[Project, str]:
    annotator = make_user(db)
    project = make_project(db, members=[annotator])
    for n in range(items):
        make_pair_item(db, project, text=f"prompt number {n}")
    return project, login(client, db, annotator)


def test_the_workspace_shows_the_pair_in_shown_order_with_the_keyboard_form(app_client: TestClient,
                                                                            db: Session) -> None:
    annotator = make_user(db)
    project = make_project(db, members=[annotator])
    make_pair_item(db, project, a="ALPHA response", b="BRAVO response")
    lease = assignment_service.claim_next_item(db, project=project, annotator=annotator, now=utcnow())
    assert lease is not None
    lease.swapped = True
    db.flush()
    login(app_client, db, annotator)
    page = app_client.get(f"/projects/{project.id}/annotate")
    assert page.status_code == 200
    html = page.text
    assert html.index("BRAVO response") < html.index("ALPHA response"), "swapped: candidate b on the left"
    assert '<div id="workspace"' in html and 'class="workspace-form"' in html
    assert 'class="help-overlay"' in html
    assert f'hx-post="http://testserver/projects/{project.id}/leases/{lease.id}"' in html
    assert 'hx-target="#workspace"' in html and 'hx-swap="outerHTML"' in html
    for value in ("a", "b", "tie", "both_bad"):
        assert f'name="choice" value="{value}"' in html
    for value in ("1", "2", "3"):
        assert f'name="strength" value="{value}"' in html
    assert 'data-action="skip"' in html and 'name="flags" value="hallucination"' in html
    assert _lease_and_key(html)[0] == lease.id
    assert app_client.get(f"/projects/{project.id}/annotate").text.count(f"/leases/{lease.id}") >= 2


def test_each_rendering_gets_a_fresh_idempotency_key(app_client: TestClient, db: Session) -> None:
    project, _ = _pairwise_setup(db, app_client)
    first = _lease_and_key(app_client.get(f"/projects/{project.id}/annotate").text)
    second = _lease_and_key(app_client.get(f"/projects/{project.id}/annotate").text)
    assert first[0] == second[0] and first[1] != second[1]


def test_an_htmx_submit_answers_with_the_next_items_fragment(app_client: TestClient, db: Session) -> None:
    project, csrf = _pairwise_setup(db, app_client)
    lease_id, key = _lease_and_key(app_client.get(f"/projects/{project.id}/annotate").text)
    response = app_client.post(f"/projects/{project.id}/leases/{lease_id}", headers=HTMX, data={
        "csrf_token": csrf, "choice": "a", "strength": "2", "idempotency_key": key, "seconds": "12",
        "rationale": "clearer", "flags": ["unsafe", "refusal"]})
    assert response.status_code == 200
    assert "<html" not in response.text and response.text.lstrip().startswith('<div id="workspace"')
    assert "HX-Request" in response.headers["vary"]
    next_lease, _ = _lease_and_key(response.text)
    assert next_lease != lease_id
    stored = db.scalars(select(Judgement)).one()
    assert (stored.strength, stored.seconds, stored.rationale, stored.flags) == (2, 12.0, "clearer",
                                                                                ["refusal", "unsafe"])
    assert stored.choice == ("b" if stored.swapped else "a")


def test_a_submit_without_js_redirects_to_the_workspace(app_client: TestClient, db: Session) -> None:
    project, csrf = _pairwise_setup(db, app_client)
    lease_id, key = _lease_and_key(app_client.get(f"/projects/{project.id}/annotate").text)
    response = app_client.post(f"/projects/{project.id}/leases/{lease_id}",
                               data={"csrf_token": csrf, "choice": "tie", "idempotency_key": key})
    assert response.status_code == 303
    assert response.headers["location"] == f"http://testserver/projects/{project.id}/annotate"
    assert _judgements(db) == 1


def test_a_retried_submit_stores_one_judgement_and_shows_the_next_item(app_client: TestClient,
                                                                       db: Session) -> None:
    project, csrf = _pairwise_setup(db, app_client)
    lease_id, key = _lease_and_key(app_client.get(f"/projects/{project.id}/annotate").text)
    form = {"csrf_token": csrf, "choice": "both_bad", "idempotency_key": key}
    first = app_client.post(f"/projects/{project.id}/leases/{lease_id}", headers=HTMX, data=form)
    second = app_client.post(f"/projects/{project.id}/leases/{lease_id}", headers=HTMX, data=form)
    assert first.status_code == second.status_code == 200
    assert _lease_and_key(first.text)[0] == _lease_and_key(second.text)[0] != lease_id
    assert _judgements(db) == 1


def test_an_invalid_submit_shows_the_same_item_again_with_the_error(app_client: TestClient,
                                                                    db: Session) -> None:
    project, csrf = _pairwise_setup(db, app_client)
    lease_id, key = _lease_and_key(app_client.get(f"/projects/{project.id}/annotate").text)
    response = app_client.post(f"/projects/{project.id}/leases/{lease_id}", headers=HTMX, data={
        "csrf_token": csrf, "choice": "a", "rationale": "kept text", "flags": "broken",
        "idempotency_key": key})
    assert response.status_code == 422
    assert "say how much better" in response.text
    assert _lease_and_key(response.text) == (lease_id, key)
    assert 'value="a" checked' in response.text and "kept text" in response.text
    assert 'value="broken" checked' in response.text
    assert _judgements(db) == 0


def test_likert_validation_rerenders_with_422_and_stores_nothing(app_client: TestClient, db: Session) -> None:
    annotator = make_user(db)
    project = make_project(db, mode=Mode.LIKERT, members=[annotator])
    make_single_item(db, project, body="The single response")
    csrf = login(app_client, db, annotator)
    page = app_client.get(f"/projects/{project.id}/annotate").text
    assert 'class="workspace-form likert"' in page and "The single response" in page
    assert page.count('name="rating_helpfulness"') == 7 and "as helpful as it could be" in page
    lease_id, key = _lease_and_key(page)
    url = f"/projects/{project.id}/leases/{lease_id}"
    missing = app_client.post(url, data={"csrf_token": csrf, "idempotency_key": key,
                                         "rating_helpfulness": "5"})
    assert missing.status_code == 422 and "<html" in missing.text
    assert "correctness: choose a rating" in missing.text
    assert 'name="rating_helpfulness" value="5" checked' in missing.text
    too_high = app_client.post(url, headers=HTMX, data={
        "csrf_token": csrf, "idempotency_key": key, "rating_helpfulness": "8", "rating_correctness": "2"})
    assert too_high.status_code == 422 and "ratings go from 1 to 7" in too_high.text
    garbage = app_client.post(url, headers=HTMX, data={
        "csrf_token": csrf, "idempotency_key": key, "rating_helpfulness": "lots", "rating_correctness": "2"})
    assert garbage.status_code == 422 and "rating_helpfulness" in garbage.text
    assert _judgements(db) == 0 and db.scalar(select(func.count(Rating.id))) == 0

    ok = app_client.post(url, headers=HTMX, data={
        "csrf_token": csrf, "idempotency_key": key, "rating_helpfulness": "6", "rating_correctness": "2"})
    assert ok.status_code == 200 and "All done - nothing left to annotate in this project" in ok.text
    assert _judgements(db) == 1


def test_skip_shows_the_next_item_and_never_the_skipped_one(app_client: TestClient, db: Session) -> None:
    project, csrf = _pairwise_setup(db, app_client, items=1)
    lease_id, _ = _lease_and_key(app_client.get(f"/projects/{project.id}/annotate").text)
    response = app_client.post(f"/projects/{project.id}/leases/{lease_id}/skip", headers=HTMX,
                               data={"csrf_token": csrf})
    assert response.status_code == 200 and "All done" in response.text
    assert _judgements(db) == 0
    no_js = app_client.post(f"/projects/{project.id}/leases/{lease_id}/skip", data={"csrf_token": csrf})
    assert no_js.status_code == 303


def test_a_submit_after_the_lease_was_released_shows_a_notice_and_the_next_item(app_client: TestClient,
                                                                                db: Session) -> None:
    project, csrf = _pairwise_setup(db, app_client)
    response = app_client.post(f"/projects/{project.id}/leases/999999", headers=HTMX,
                               data={"csrf_token": csrf, "choice": "tie"})
    assert response.status_code == 200
    assert "time ran out and it went back to the queue" in response.text
    assert _lease_and_key(response.text)


def test_submit_needs_the_csrf_token(app_client: TestClient, db: Session) -> None:
    project, _ = _pairwise_setup(db, app_client)
    lease_id, key = _lease_and_key(app_client.get(f"/projects/{project.id}/annotate").text)
    response = app_client.post(f"/projects/{project.id}/leases/{lease_id}",
                               data={"choice": "tie", "idempotency_key": key})
    assert response.status_code == 403 and _judgements(db) == 0


def test_roles_and_membership_are_checked(app_client: TestClient, db: Session) -> None:
    member, outsider = make_user(db), make_user(db)
    researcher = make_user(db, Role.RESEARCHER)
    project = make_project(db, members=[member, researcher])
    make_pair_item(db, project)
    login(app_client, db, outsider)
    assert app_client.get(f"/projects/{project.id}/annotate").status_code == 403
    assert app_client.get(f"/api/v1/projects/{project.id}/next",
                          headers=bearer(db, outsider)).status_code == 403
    login(app_client, db, researcher)
    assert app_client.get(f"/projects/{project.id}/annotate").status_code == 403
    assert app_client.get(f"/api/v1/projects/{project.id}/next",
                          headers=bearer(db, researcher)).status_code == 403
    admin = make_user(db, Role.ADMIN)
    login(app_client, db, admin)
    assert app_client.get(f"/projects/{project.id}/annotate").status_code == 200
    assert app_client.get("/projects/999999/annotate").status_code == 404


class _Elements(HTMLParser):
    """Every element and attribute a browser would build from the page."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))


def _elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Elements()
    parser.feed(html)
    return parser.elements


def test_model_and_prompt_text_is_inert_in_the_workspace(app_client: TestClient, db: Session) -> None:
    annotator = make_user(db)
    project = make_project(db, members=[annotator], name='<b onmouseover="x">proj</b>')
    make_pair_item(db, project, text="<script>alert(1)</script>\n\n[x](javascript:alert(1))",
                   a="<img src=x onerror=alert(1)>", b='<a hx-get="/x">click</a> <svg onload=alert(2)>')
    login(app_client, db, annotator)
    for html in (app_client.get(f"/projects/{project.id}/annotate").text,
                 app_client.get(f"/projects/{project.id}/annotate", headers=HTMX).text):
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, "the payload is shown as text"
        assert "&lt;img src=x onerror=alert(1)&gt;" in html
        for raw in ("<script>alert", "<img", "<a hx-get", "<svg", "<b onmouseover"):
            assert raw not in html, raw
        elements = _elements(html)
        assert all(tag not in {"img", "svg", "b"} for tag, _ in elements)
        scripts = [attrs for tag, attrs in elements if tag == "script"]
        assert all(attrs.get("src") for attrs in scripts), "only the app's own scripts"
        attributes = {name for _, attrs in elements for name in attrs}
        assert not attributes & {"onerror", "onload", "onmouseover", "hx-get"}
        assert not any((attrs.get("href") or "").startswith("javascript") for _, attrs in elements)


def test_api_next_gives_the_item_in_shown_order_and_204_when_done(app_client: TestClient,
                                                                  db: Session) -> None:
    annotator = make_user(db)
    project = make_project(db, members=[annotator])
    make_pair_item(db, project, a="ALPHA", b="BRAVO")
    headers = bearer(db, annotator)
    body = app_client.get(f"/api/v1/projects/{project.id}/next", headers=headers).json()
    assert set(body) == {"lease_id", "item_id", "kind", "prompt", "responses", "attributes", "expires_at",
                         "idempotency_key"}
    assert body["kind"] == "pair" and body["prompt"] == [{"role": "user", "content": "Say hello."}]
    assert [r["side"] for r in body["responses"]] == ["a", "b"]
    assert {r["text"] for r in body["responses"]} == {"ALPHA", "BRAVO"}
    assert "candidate" not in str(body)
    url = f"/api/v1/projects/{project.id}/leases/{body['lease_id']}/judgement"
    left = body["responses"][0]["text"]
    created = app_client.post(url, headers=headers, json={"choice": "a", "strength": 3, "seconds": 7,
                                                          "idempotency_key": body["idempotency_key"]})
    assert created.status_code == 201
    stored = created.json()
    assert stored["shown_choice"] == "a" and stored["choice"] == ("a" if left == "ALPHA" else "b")
    assert stored["swapped"] == (left == "BRAVO") and stored["strength"] == 3
    repeat = app_client.post(url, headers=headers, json={"choice": "b", "strength": 1,
                                                         "idempotency_key": body["idempotency_key"]})
    assert repeat.status_code == 200 and repeat.json()["id"] == stored["id"]
    assert repeat.json()["choice"] == stored["choice"]
    done = app_client.get(f"/api/v1/projects/{project.id}/next", headers=headers)
    assert done.status_code == 204 and done.content == b""


def test_api_judgement_errors_are_json(app_client: TestClient, db: Session) -> None:
    annotator = make_user(db)
    project = make_project(db, mode=Mode.LIKERT, members=[annotator])
    make_single_item(db, project)
    headers = bearer(db, annotator)
    body = app_client.get(f"/api/v1/projects/{project.id}/next", headers=headers).json()
    assert [a["name"] for a in body["attributes"]] == ["helpfulness", "correctness"]
    url = f"/api/v1/projects/{project.id}/leases/{body['lease_id']}/judgement"
    invalid = app_client.post(url, headers=headers, json={"ratings": {"helpfulness": 8, "correctness": 2}})
    assert invalid.status_code == 422 and invalid.json()["errors"][0]["field"] == "rating_helpfulness"
    unknown_flag = app_client.post(url, headers=headers, json={"ratings": {}, "flags": ["rude"]})
    assert unknown_flag.status_code == 422
    gone = app_client.post(f"/api/v1/projects/{project.id}/leases/999999/judgement", headers=headers,
                           json={"ratings": {"helpfulness": 1, "correctness": 1}})
    assert gone.status_code == 409
    ok = app_client.post(url, headers=headers, json={"ratings": {"helpfulness": 4, "correctness": 5}})
    assert ok.status_code == 201 and ok.json()["ratings"] == {"helpfulness": 4, "correctness": 5}
    assert ok.json()["choice"] is None
