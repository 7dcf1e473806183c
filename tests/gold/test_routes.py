"""Gold over HTTP: indistinguishable items, the paused page and 403, admin pages, marking, the API."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts.models import Role, User
from app.assignment.models import Lease
from app.audit.models import AuditEvent
from app.db import utcnow
from app.gold import service as gold_service
from app.gold.models import GoldAnswer
from app.projects.models import Item, ItemPurpose, Mode, Project
from tests.factories import (
    bearer,
    login,
    make_gold,
    make_pair_item,
    make_project,
    make_single_item,
    make_user,
    make_user_without_password,
)

HTMX = {"HX-Request": "true"}


def _skeleton(text: str, user: User) -> str:
    """The page or JSON with what legitimately differs between two annotators blanked out: ids, keys,
    tokens, times and the annotator's own name."""
    text = text.replace(user.username, "USER").replace(user.display_name, "USER")
    text = re.sub(r"[0-9a-f]{32}", "KEY", text)
    text = re.sub(r'name="csrf_token" value="[^"]+"', 'name="csrf_token" value="TOKEN"', text)
    text = re.sub(r'"X-CSRF-Token": "[^"]+"', '"X-CSRF-Token": "TOKEN"', text)
    text = re.sub(r"\d{4}-\d\d-\d\dT[0-9:.+Z-]+", "TIME", text)
    return re.sub(r"\d+", "N", text)


def _lease(db: Session, project: Project, item: Item, annotator: User) -> Lease:
    lease = Lease(item_id=item.id, annotator_id=annotator.id, project_id=project.id, swapped=False,
                  takes_slot=item.purpose == ItemPurpose.REGULAR, expires_at=utcnow() + timedelta(minutes=30))
    db.add(lease)
    db.flush()
    return lease


def test_a_gold_item_looks_exactly_like_a_regular_item_in_the_page_and_the_api(
        app_client: TestClient, db: Session) -> None:
    first, second = make_user(db, username="annotator-one"), make_user(db, username="annotator-two")
    project = make_project(db, members=[first, second], gold_rate=0.5)
    regular = make_pair_item(db, project, text="Name a colour.", a="Blue.", b="Seven.")
    gold = make_pair_item(db, project, text="Name a colour.", a="Blue.", b="Seven.", )
    make_gold(db, gold, "a", explanation="Seven is not a colour.")
    _lease(db, project, gold, first)
    _lease(db, project, regular, second)
    pages, payloads = [], []
    for user in (first, second):
        login(app_client, db, user)
        page = app_client.get(f"/projects/{project.id}/annotate")
        assert page.status_code == 200
        pages.append(_skeleton(page.text, user))
        api = app_client.get(f"/api/v1/projects/{project.id}/next", headers=bearer(db, user))
        assert api.status_code == 200
        payloads.append(_skeleton(api.text, user))
    assert "Seven" in pages[0] and pages[0] == pages[1]
    assert payloads[0] == payloads[1]
    for text in pages + payloads:
        assert "gold" not in text.lower() and "purpose" not in text and "not a colour" not in text


def test_a_paused_annotator_sees_why_and_gets_no_item(app_client: TestClient, db: Session) -> None:
    annotator, admin = make_user(db), make_user_without_password(db, Role.ADMIN)
    project = make_project(db, members=[annotator])
    make_pair_item(db, project)
    gold_service.pause(db, project=project, user_id=annotator.id, reason="too fast <b>bold</b>", actor=admin,
                       now=utcnow())
    login(app_client, db, annotator)
    page = app_client.get(f"/projects/{project.id}/annotate")
    assert page.status_code == 403
    assert "paused: too fast &lt;b&gt;bold&lt;/b&gt;" in page.text and 'name="choice"' not in page.text
    fragment = app_client.get(f"/projects/{project.id}/annotate", headers=HTMX)
    assert fragment.status_code == 403 and fragment.text.lstrip().startswith('<div id="workspace"')
    api = app_client.get(f"/api/v1/projects/{project.id}/next", headers=bearer(db, annotator))
    assert api.status_code == 403
    assert api.json() == {"detail": "paused: too fast <b>bold</b>", "status": "paused",
                          "reason": "too fast <b>bold</b>", "calibration_attempt_id": None}
    assert db.scalar(select(func.count(Lease.id))) == 0


def test_a_wrong_gold_answer_over_the_api_pauses_at_once_with_a_strict_bar(app_client: TestClient,
                                                                          db: Session) -> None:
    annotator = make_user_without_password(db)
    project = make_project(db, members=[annotator], gold_rate=0.5, gold_min=1, gold_window=1, gold_bar=1.0)
    make_pair_item(db, project, text="regular")
    make_gold(db, make_pair_item(db, project, text="gold", a="RIGHT", b="WRONG"), "a")
    auth = bearer(db, annotator)
    texts = []
    while (item := app_client.get(f"/api/v1/projects/{project.id}/next", headers=auth)).status_code == 200:
        body = item.json()
        texts.append({r["text"] for r in body["responses"]})
        wrong = next(r["side"] for r in body["responses"] if r["text"] != "RIGHT")
        vote = {"choice": wrong, "strength": 1, "idempotency_key": body["idempotency_key"]}
        stored = app_client.post(f"/api/v1/projects/{project.id}/leases/{body['lease_id']}/judgement",
                                 json=vote, headers=auth)
        assert stored.status_code == 201
    assert texts[-1] == {"RIGHT", "WRONG"}, "paused right after the wrong gold answer"
    assert item.status_code == 403 and item.json()["status"] == "paused"
    assert "0%" in item.json()["reason"]


def test_the_admin_sees_why_and_resumes_from_the_annotators_page(app_client: TestClient, db: Session) -> None:
    annotator, admin = make_user(db), make_user(db, Role.ADMIN)
    project = make_project(db, members=[annotator])
    make_pair_item(db, project)
    gold_service.pause(db, project=project, user_id=annotator.id, reason="gold accuracy 20%", actor=admin,
                       now=utcnow())
    csrf = login(app_client, db, admin)
    page = app_client.get(f"/projects/{project.id}/annotators")
    assert page.status_code == 200
    assert annotator.username in page.text and "gold accuracy 20%" in page.text and "paused" in page.text
    resumed = app_client.post(f"/projects/{project.id}/annotators/{annotator.id}/resume",
                              data={"csrf_token": csrf})
    assert resumed.status_code == 303
    assert gold_service.standings(db, project_id=project.id)[annotator.id].status == "active"
    login(app_client, db, annotator)
    assert 'name="choice"' in app_client.get(f"/projects/{project.id}/annotate").text
    actions = db.scalars(select(AuditEvent.action).where(AuditEvent.project_id == project.id)).all()
    assert actions.count("annotator.pause") == 1 and actions.count("annotator.resume") == 1


def test_the_admin_pauses_with_a_reason_and_an_annotator_may_not(app_client: TestClient, db: Session) -> None:
    annotator, admin = make_user(db), make_user(db, Role.ADMIN)
    project = make_project(db, members=[annotator])
    csrf = login(app_client, db, annotator)
    url = f"/projects/{project.id}/annotators/{annotator.id}/pause"
    assert app_client.post(url, data={"csrf_token": csrf, "reason": "x"}).status_code == 403
    assert app_client.get(f"/projects/{project.id}/annotators").status_code == 403
    csrf = login(app_client, db, admin)
    assert app_client.post(url, data={"csrf_token": csrf, "reason": ""}).status_code == 422
    assert gold_service.standings(db, project_id=project.id)[annotator.id].status == "active"
    assert app_client.post(url, data={"csrf_token": csrf, "reason": "spam"}).status_code == 303
    standing = gold_service.standings(db, project_id=project.id)[annotator.id]
    assert (standing.status, standing.reason, standing.changed_by_id) == ("paused", "spam", admin.id)


def test_marking_gold_in_the_browser_with_a_clear_error_for_bad_input(app_client: TestClient,
                                                                     db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    project = make_project(db)
    item = make_pair_item(db, project, a="First answer", b="Second answer")
    csrf = login(app_client, db, admin)
    page = app_client.get(f"/projects/{project.id}/gold/items/{item.id}")
    assert page.status_code == 200 and "First answer" in page.text
    assert 'name="choice" value="tie"' in page.text
    bad = app_client.post(f"/projects/{project.id}/gold/items/{item.id}",
                          data={"csrf_token": csrf, "purpose": "gold", "explanation": "kept text"})
    assert bad.status_code == 422 and "expected choice" in bad.text and "kept text" in bad.text
    assert db.get(Item, item.id).purpose == ItemPurpose.REGULAR  # type: ignore[union-attr]
    good = app_client.post(f"/projects/{project.id}/gold/items/{item.id}", data={
        "csrf_token": csrf, "purpose": "gold", "choice": "b", "explanation": "B **cites** a source."})
    assert good.status_code == 303
    db.expire_all()
    assert db.get(Item, item.id).purpose == ItemPurpose.GOLD  # type: ignore[union-attr]
    assert db.get(GoldAnswer, item.id).choice == "b"  # type: ignore[union-attr]
    overview = app_client.get(f"/projects/{project.id}/gold")
    assert overview.status_code == 200 and f"/gold/items/{item.id}" in overview.text
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "gold.mark"))
    assert event is not None and event.before == {"purpose": "regular"} and event.after["choice"] == "b"  # type: ignore[index]
    assert app_client.post(f"/projects/{project.id}/gold/items/{item.id}/unmark",
                           data={"csrf_token": csrf}).status_code == 303
    db.expire_all()
    assert db.get(Item, item.id).purpose == ItemPurpose.REGULAR  # type: ignore[union-attr]
    assert db.get(GoldAnswer, item.id) is None


def test_likert_ranges_from_the_form_need_both_ends(app_client: TestClient, db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    project = make_project(db, mode=Mode.LIKERT)
    item = make_single_item(db, project)
    csrf = login(app_client, db, admin)
    url = f"/projects/{project.id}/gold/items/{item.id}"
    half = app_client.post(url, data={"csrf_token": csrf, "purpose": "calibration", "min_helpfulness": "5"})
    assert half.status_code == 422 and "both a minimum and a maximum" in half.text
    upside_down = app_client.post(url, data={"csrf_token": csrf, "purpose": "calibration",
                                             "min_helpfulness": "6", "max_helpfulness": "2"})
    assert upside_down.status_code == 422
    assert db.get(GoldAnswer, item.id) is None
    ok = app_client.post(url, data={"csrf_token": csrf, "purpose": "calibration", "min_helpfulness": "5",
                                    "max_helpfulness": "7", "min_correctness": "", "max_correctness": ""})
    assert ok.status_code == 303
    db.expire_all()
    assert db.get(GoldAnswer, item.id).ranges == {"helpfulness": [5, 7]}  # type: ignore[union-attr]
    assert db.get(Item, item.id).purpose == ItemPurpose.CALIBRATION  # type: ignore[union-attr]


def test_the_gold_api_marks_lists_and_unmarks_for_admins_only(app_client: TestClient, db: Session) -> None:
    admin = make_user_without_password(db, Role.ADMIN)
    researcher = make_user_without_password(db, Role.RESEARCHER)
    annotator = make_user_without_password(db)
    project = make_project(db, members=[researcher, annotator])
    pair = make_pair_item(db, project)
    url = f"/api/v1/projects/{project.id}/items/{pair.id}/answer"
    body = {"purpose": "gold", "choice": "tie", "explanation": "Both fine."}
    assert app_client.put(url, json=body, headers=bearer(db, annotator)).status_code == 403
    assert app_client.put(url, json=body, headers=bearer(db, researcher)).status_code == 403
    listing = f"/api/v1/projects/{project.id}/gold"
    assert app_client.get(listing, headers=bearer(db, annotator)).status_code == 403
    wrong = app_client.put(url, json={"purpose": "gold", "ranges": {"helpfulness": [1, 3]}},
                           headers=bearer(db, admin))
    assert wrong.status_code == 422 and "pair" in wrong.json()["detail"]
    stored = app_client.put(url, json=body, headers=bearer(db, admin))
    assert stored.status_code == 200
    assert stored.json() | {"updated_at": None} == {
        "item_id": pair.id, "purpose": "gold", "kind": "pair", "choice": "tie", "ranges": {},
        "explanation": "Both fine.", "updated_at": None}
    listed = app_client.get(f"/api/v1/projects/{project.id}/gold", headers=bearer(db, researcher)).json()
    assert [g["item_id"] for g in listed] == [pair.id]
    calibration = app_client.get(f"/api/v1/projects/{project.id}/gold?purpose=calibration",
                                 headers=bearer(db, researcher))
    assert calibration.json() == []
    assert app_client.delete(url, headers=bearer(db, admin)).status_code == 204
    assert app_client.delete(url, headers=bearer(db, admin)).status_code == 422, "nothing to unmark"
    other = make_project(db)
    assert app_client.put(f"/api/v1/projects/{other.id}/items/{pair.id}/answer", json=body,
                          headers=bearer(db, admin)).status_code == 404


def test_standings_pause_and_resume_over_the_api(app_client: TestClient, db: Session) -> None:
    admin, annotator = make_user_without_password(db, Role.ADMIN), make_user_without_password(db)
    project = make_project(db, members=[annotator])
    auth = bearer(db, admin)
    paused = app_client.post(f"/api/v1/projects/{project.id}/annotators/{annotator.id}/pause",
                             json={"reason": "copy-pasting"}, headers=auth)
    assert paused.status_code == 200
    assert paused.json()["status"] == "paused" and paused.json()["reason"] == "copy-pasting"
    [row] = app_client.get(f"/api/v1/projects/{project.id}/standings", headers=auth).json()
    assert row["user_id"] == annotator.id and row["gold_accuracy"] is None
    assert row["calibration_state"] == "not_required"
    resumed = app_client.post(f"/api/v1/projects/{project.id}/annotators/{annotator.id}/resume", headers=auth)
    assert resumed.json()["status"] == "active"
    missing = app_client.post(f"/api/v1/projects/{project.id}/annotators/999999/resume", headers=auth)
    assert missing.status_code == 404


def test_an_htmx_submit_that_pauses_answers_with_the_paused_fragment(app_client: TestClient,
                                                                    db: Session) -> None:
    annotator = make_user(db)
    project = make_project(db, members=[annotator], gold_rate=0.5, gold_min=1, gold_window=1, gold_bar=1.0)
    gold = make_pair_item(db, project, text="gold", a="RIGHT", b="WRONG")
    make_gold(db, gold, "a")
    make_pair_item(db, project, text="regular")
    csrf = login(app_client, db, annotator)
    for _ in range(2):
        page = app_client.get(f"/projects/{project.id}/annotate").text
        lease = re.search(r'action="[^"]*/leases/(\d+)"', page)
        key = re.search(r'name="idempotency_key" value="([0-9a-f]{32})"', page)
        assert lease and key
        texts = r'data-side="(a|b)"[^>]*>.*?<p>(RIGHT|WRONG|Hello!|Go away\.)</p>'
        sides = dict(re.findall(texts, page, re.S))
        wrong = next(side for side, text in sides.items() if text != "RIGHT")
        response = app_client.post(f"/projects/{project.id}/leases/{lease.group(1)}", headers=HTMX, data={
            "csrf_token": csrf, "choice": wrong, "strength": "1", "idempotency_key": key.group(1)})
        if "RIGHT" in sides.values():
            assert response.status_code == 403 and "paused:" in response.text
            assert response.text.lstrip().startswith('<div id="workspace"')
            return
        assert response.status_code == 200
    raise AssertionError("the gold item was never served")


def test_annotators_never_reach_the_answer_keys(app_client: TestClient, db: Session) -> None:
    annotator = make_user(db)
    project = make_project(db, members=[annotator])
    item = make_pair_item(db, project)
    make_gold(db, item, "b", explanation="secret reasoning")
    login(app_client, db, annotator)
    for url in (f"/projects/{project.id}/gold", f"/projects/{project.id}/gold/items/{item.id}",
                f"/projects/{project.id}/calibration"):
        response = app_client.get(url)
        assert response.status_code == 403 and "secret reasoning" not in response.text
