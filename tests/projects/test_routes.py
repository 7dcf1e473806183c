"""The browser pages and the JSON API of projects, with roles and CSRF as in production."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts.models import Role
from app.audit.models import AuditEvent
from app.projects.models import Project, Prompt
from tests.factories import bearer, login, make_project, make_user

GOOD_FILE = "\n".join(
    json.dumps(r)
    for r in [
        {"prompt": "Say hi.", "candidates": ["Hi!", "Hello."]},
        {"messages": [{"role": "user", "content": "2+2?"}], "external_id": "q2"},
    ]
).encode()
BAD_FILE = b'{"prompt": "fine"}\n{"prompt": ""}\n{broken\n'


def _form(**fields: str) -> dict[str, str]:
    base = {
        "name": "helpful-v1",
        "description": "Which answer helps more?",
        "mode": "pairwise",
        "attributes": "",
        "overlap_k": "3",
        "lease_minutes": "20",
        "candidates_per_prompt": "",
        "model": "",
        "max_new_tokens": "128",
        "temperature": "0.7",
        "top_p": "0.9",
        "seed": "5",
    }
    return {**base, **fields}


def _prompt_count(db: Session, project: Project) -> int:
    return db.scalar(select(func.count()).select_from(Prompt).where(Prompt.project_id == project.id)) or 0


def test_admin_creates_a_project_with_the_form(app_client: TestClient, db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    token = login(app_client, db, admin)
    assert "New project" in app_client.get("/projects").text
    page = app_client.get("/projects/new")
    assert page.status_code == 200 and "helpfulness | not helpful at all" in page.text
    response = app_client.post("/projects", data={**_form(), "csrf_token": token})
    assert response.status_code == 303
    project = db.scalars(select(Project).where(Project.name == "helpful-v1")).one()
    assert response.headers["location"].endswith(f"/projects/{project.id}")
    assert (project.overlap_k, project.lease_minutes, project.candidates_per_prompt) == (3, 20, 2)
    assert project.generation == {
        "model": "",
        "max_new_tokens": 128,
        "temperature": 0.7,
        "top_p": 0.9,
        "seed": 5,
        "include_flagged": False,
    }
    assert db.scalar(select(AuditEvent.action).where(AuditEvent.project_id == project.id)) == "project.create"


def test_likert_form_takes_attributes_one_per_line(app_client: TestClient, db: Session) -> None:
    token = login(app_client, db, make_user(db, Role.ADMIN))
    attributes = "clarity | muddled | crystal clear\n\nhonesty | evasive | candid\n"
    response = app_client.post(
        "/projects", data={**_form(mode="likert", attributes=attributes), "csrf_token": token}
    )
    assert response.status_code == 303
    project = db.scalars(select(Project).where(Project.name == "helpful-v1")).one()
    assert project.attributes == [
        {"name": "clarity", "low": "muddled", "high": "crystal clear"},
        {"name": "honesty", "low": "evasive", "high": "candid"},
    ]
    assert project.candidates_per_prompt == 1


def test_an_invalid_form_comes_back_with_422_and_the_fields_named(
    app_client: TestClient, db: Session
) -> None:
    token = login(app_client, db, make_user(db, Role.ADMIN))
    response = app_client.post(
        "/projects", data={**_form(overlap_k="0", temperature="hot", name="kept <b>"), "csrf_token": token}
    )
    assert response.status_code == 422
    assert 'id="overlap_k-error"' in response.text and 'id="temperature-error"' in response.text
    assert 'value="kept &lt;b&gt;"' in response.text
    bad_line = app_client.post(
        "/projects", data={**_form(mode="likert", attributes="just a name"), "csrf_token": token}
    )
    assert bad_line.status_code == 422 and "line 1" in bad_line.text
    assert db.scalar(select(func.count()).select_from(Project)) == 0


def test_a_taken_name_comes_back_as_a_conflict_on_the_name(app_client: TestClient, db: Session) -> None:
    token = login(app_client, db, make_user(db, Role.ADMIN))
    make_project(db, name="taken")
    response = app_client.post("/projects", data={**_form(name="taken"), "csrf_token": token})
    assert response.status_code == 409 and 'id="name-error"' in response.text
    assert "already exists" in response.text


def test_api_create_validates_and_names_the_field(app_client: TestClient, db: Session) -> None:
    headers = bearer(db, make_user(db, Role.ADMIN))
    created = app_client.post("/api/v1/projects", headers=headers, json={"name": "api", "mode": "likert"})
    assert created.status_code == 201
    body = created.json()
    assert body["candidates_per_prompt"] == 1 and len(body["attributes"]) == 4
    assert body["generation"]["max_new_tokens"] == 256
    bad = app_client.post(
        "/api/v1/projects",
        headers=headers,
        json={"name": "x", "mode": "pairwise", "overlap_k": 51, "generation": {"top_p": 0}},
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"overlap_k", "generation.top_p"}
    taken = app_client.post("/api/v1/projects", headers=headers, json={"name": "api", "mode": "pairwise"})
    assert taken.status_code == 409 and taken.json()["errors"] == [
        {"field": "name", "message": "a project named 'api' already exists"}
    ]


def test_api_reads_and_patches_a_project(app_client: TestClient, db: Session) -> None:
    headers = bearer(db, make_user(db, Role.ADMIN))
    project = make_project(db, overlap_k=2)
    patched = app_client.patch(f"/api/v1/projects/{project.id}", headers=headers, json={"overlap_k": 4})
    assert patched.status_code == 200 and patched.json()["overlap_k"] == 4
    detail = app_client.get(f"/api/v1/projects/{project.id}", headers=headers).json()
    assert detail["overlap_k"] == 4 and detail["stats"]["prompts"] == 0
    assert (
        app_client.patch(
            f"/api/v1/projects/{project.id}", headers=headers, json={"mode": "likert"}
        ).status_code
        == 422
    )


def test_annotators_cannot_create_import_or_manage_members(app_client: TestClient, db: Session) -> None:
    annotator = make_user(db, Role.ANNOTATOR)
    project = make_project(db, members=[annotator])
    token = login(app_client, db, annotator)
    headers = bearer(db, annotator)
    assert "New project" not in app_client.get("/projects").text
    assert app_client.get("/projects/new").status_code == 403
    assert app_client.post("/projects", data={**_form(), "csrf_token": token}).status_code == 403
    assert (
        app_client.post(
            "/api/v1/projects", headers=headers, json={"name": "n", "mode": "pairwise"}
        ).status_code
        == 403
    )
    upload = {"file": ("p.jsonl", GOOD_FILE, "application/x-ndjson")}
    assert (
        app_client.post(
            f"/projects/{project.id}/import", data={"csrf_token": token}, files=upload
        ).status_code
        == 403
    )
    assert (
        app_client.post(f"/api/v1/projects/{project.id}/prompts", headers=headers, files=upload).status_code
        == 403
    )
    assert (
        app_client.post(
            f"/api/v1/projects/{project.id}/members", headers=headers, json={"user_id": annotator.id}
        ).status_code
        == 403
    )
    assert _prompt_count(db, project) == 0


def test_non_members_get_403_and_members_see_their_project(app_client: TestClient, db: Session) -> None:
    annotator = make_user(db, Role.ANNOTATOR)
    researcher = make_user(db, Role.RESEARCHER)
    mine = make_project(db, name="mine", members=[researcher])
    other = make_project(db, name="other")
    login(app_client, db, annotator)
    assert app_client.get(f"/projects/{mine.id}").status_code == 403
    assert app_client.get(f"/api/v1/projects/{other.id}", headers=bearer(db, annotator)).status_code == 403
    login(app_client, db, researcher)
    page = app_client.get(f"/projects/{mine.id}")
    assert page.status_code == 200 and "mine" in page.text and "Import prompts" not in page.text
    listing = app_client.get("/projects").text
    assert "mine" in listing and "other" not in listing
    api = app_client.get("/api/v1/projects", headers=bearer(db, researcher)).json()
    assert [p["name"] for p in api] == ["mine"]


def test_the_detail_page_shows_counts_members_links_and_the_generation_panel(
    app_client: TestClient, db: Session
) -> None:
    admin = make_user(db, Role.ADMIN)
    member = make_user(db, Role.ANNOTATOR, username="ann")
    project = make_project(db, members=[member])
    token = login(app_client, db, admin)
    app_client.post(
        f"/projects/{project.id}/import",
        data={"csrf_token": token},
        files={"file": ("p.jsonl", GOOD_FILE, "application/x-ndjson")},
    )
    page = app_client.get(f"/projects/{project.id}")
    assert page.status_code == 200
    assert f'hx-get="http://testserver/projects/{project.id}/generation/panel"' in page.text
    assert f"/projects/{project.id}/annotate" in page.text and f"/projects/{project.id}/export" in page.text
    assert "0 of 1 items complete" in page.text and "<code>ann</code>" in page.text


def test_import_through_the_page_reports_counts_or_a_table_of_problems(
    app_client: TestClient, db: Session
) -> None:
    admin = make_user(db, Role.ADMIN)
    project = make_project(db)
    token = login(app_client, db, admin)
    good = app_client.post(
        f"/projects/{project.id}/import",
        data={"csrf_token": token},
        files={"file": ("p.jsonl", GOOD_FILE, "application/octet-stream")},
    )
    assert good.status_code == 200 and "Imported 2 prompts with 2 candidates; 1 items" in good.text
    bad = app_client.post(
        f"/projects/{project.id}/import",
        data={"csrf_token": token},
        files={"file": ("bad.jsonl", BAD_FILE, "application/octet-stream")},
    )
    assert bad.status_code == 422 and "2 rows have problems; nothing was imported" in bad.text
    rows = re.findall(r'<td class="num">(\d+)</td><td><code>(\w+)</code></td>', bad.text)
    assert rows == [("2", "prompt"), ("3", "json")]
    assert _prompt_count(db, project) == 2
    fragment = app_client.post(
        f"/projects/{project.id}/import",
        data={"csrf_token": token},
        files={"file": ("bad.jsonl", BAD_FILE, "text/plain")},
        headers={"HX-Request": "true"},
    )
    assert fragment.status_code == 422 and "<html" not in fragment.text and 'id="import"' in fragment.text
    assert fragment.headers["vary"] == "HX-Request"


def test_api_import_returns_counts_and_per_row_errors(app_client: TestClient, db: Session) -> None:
    headers = bearer(db, make_user(db, Role.ADMIN))
    project = make_project(db)
    url = f"/api/v1/projects/{project.id}/prompts"
    csv = b"prompt,candidate_1,candidate_2\nHi,Hello,Hey\nBye,,\n"
    ok = app_client.post(url, headers=headers, files={"file": ("p.csv", csv, "text/csv")})
    assert ok.status_code == 201 and ok.json() == {"imported": 2, "candidates": 2, "items": 1}
    bad = app_client.post(url, headers=headers, files={"file": ("bad.jsonl", BAD_FILE, "text/plain")})
    assert bad.status_code == 422
    assert bad.json()["errors"] == [
        {"row": 2, "field": "prompt", "message": "is empty"},
        {"row": 3, "field": "json", "message": bad.json()["errors"][1]["message"]},
    ]
    assert _prompt_count(db, project) == 2


def test_an_upload_over_the_size_limit_is_refused(app_client: TestClient, db: Session) -> None:
    headers = bearer(db, make_user(db, Role.ADMIN))
    project = make_project(db)
    app_client.app.state.settings.max_upload_mb = 1  # type: ignore[attr-defined]
    big = b'{"prompt": "' + b"x" * (1024 * 1024) + b'"}\n'
    response = app_client.post(
        f"/api/v1/projects/{project.id}/prompts",
        headers=headers,
        files={"file": ("big.jsonl", big, "text/plain")},
    )
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "file"


def test_admin_adds_and_removes_members(app_client: TestClient, db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    annotator = make_user(db, Role.ANNOTATOR, username="newbie")
    project = make_project(db)
    token = login(app_client, db, admin)
    assert "newbie" in app_client.get(f"/projects/{project.id}").text
    added = app_client.post(
        f"/projects/{project.id}/members", data={"user_id": str(annotator.id), "csrf_token": token}
    )
    assert added.status_code == 303
    assert (
        app_client.get(f"/api/v1/projects/{project.id}/members", headers=bearer(db, admin)).json()[0]["id"]
        == annotator.id
    )
    removed = app_client.post(
        f"/projects/{project.id}/members/{annotator.id}/remove", data={"csrf_token": token}
    )
    assert removed.status_code == 303
    headers = bearer(db, admin)
    api_added = app_client.post(
        f"/api/v1/projects/{project.id}/members", headers=headers, json={"user_id": annotator.id}
    )
    assert api_added.status_code == 201 and api_added.json()["username"] == "newbie"
    assert (
        app_client.delete(
            f"/api/v1/projects/{project.id}/members/{annotator.id}", headers=headers
        ).status_code
        == 204
    )
    assert (
        app_client.delete(
            f"/api/v1/projects/{project.id}/members/{annotator.id}", headers=headers
        ).status_code
        == 404
    )
    actions = db.scalars(
        select(AuditEvent.action).where(AuditEvent.project_id == project.id).order_by(AuditEvent.id)
    ).all()
    assert actions == ["member.add", "member.remove", "member.add", "member.remove"]


def test_admin_edits_settings_with_the_form(app_client: TestClient, db: Session) -> None:
    token = login(app_client, db, make_user(db, Role.ADMIN))
    project = make_project(db, name="before", overlap_k=2)
    form = app_client.get(f"/projects/{project.id}/edit")
    assert form.status_code == 200 and 'value="before"' in form.text
    saved = app_client.post(
        f"/projects/{project.id}/edit", data={**_form(name="after", overlap_k="5"), "csrf_token": token}
    )
    assert saved.status_code == 303
    db.refresh(project)
    assert (project.name, project.overlap_k) == ("after", 5)
    bad = app_client.post(
        f"/projects/{project.id}/edit", data={**_form(lease_minutes="0"), "csrf_token": token}
    )
    assert bad.status_code == 422 and 'id="lease_minutes-error"' in bad.text


def test_forms_without_the_csrf_token_are_refused(app_client: TestClient, db: Session) -> None:
    login(app_client, db, make_user(db, Role.ADMIN))
    assert app_client.post("/projects", data=_form()).status_code == 403
