from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.models import Role
from app.audit.models import AuditEvent
from tests.export.conftest import Voted, expected_trl
from tests.factories import bearer, login, make_project
from tests.factories import make_user_without_password as make_user


def audit_formats(db: Session, project_id: int) -> list[object]:
    events = db.scalars(select(AuditEvent).where(AuditEvent.project_id == project_id,
                                                 AuditEvent.action == "export").order_by(AuditEvent.id))
    return [(event.after or {}).get("format") for event in events]


def test_download_streams_a_jsonl_attachment_and_records_an_audit_event(
        app_client: TestClient, db: Session, voted: Voted) -> None:
    login(app_client, db, voted.researcher)
    response = app_client.get(f"/projects/{voted.project.id}/export/download", params={"format": "trl"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    disposition = response.headers["content-disposition"]
    assert re.fullmatch(rf'attachment; filename="project-{voted.project.id}-trl-\d{{8}}T\d{{4}}\.jsonl"',
                        disposition), disposition
    assert [json.loads(line) for line in response.text.splitlines()] == expected_trl(voted)
    assert audit_formats(db, voted.project.id) == ["trl"]


def test_raw_download_has_one_line_per_judgement(app_client: TestClient, db: Session, voted: Voted) -> None:
    login(app_client, db, make_user(db, Role.ADMIN))  # admins need no membership
    response = app_client.get(f"/projects/{voted.project.id}/export/download", params={"format": "raw"})
    assert response.status_code == 200
    assert "-raw-" in response.headers["content-disposition"]
    assert len(response.text.splitlines()) == 10
    assert audit_formats(db, voted.project.id) == ["raw"]


def test_unknown_format_is_422_and_records_nothing(app_client: TestClient, db: Session, voted: Voted) -> None:
    login(app_client, db, voted.researcher)
    response = app_client.get(f"/projects/{voted.project.id}/export/download", params={"format": "xml"})
    assert response.status_code == 422
    assert "content-disposition" not in response.headers
    api = app_client.get(f"/api/v1/projects/{voted.project.id}/export", params={"format": "xml"},
                         headers=bearer(db, voted.researcher))
    assert api.status_code == 422
    assert api.json()["errors"][0]["field"] == "format"
    assert audit_formats(db, voted.project.id) == []


def test_annotators_and_non_members_get_403(app_client: TestClient, db: Session, voted: Voted) -> None:
    url = f"/projects/{voted.project.id}/export/download?format=trl"
    login(app_client, db, voted.annotators[0])
    assert app_client.get(url).status_code == 403
    assert app_client.get(f"/projects/{voted.project.id}/export").status_code == 403
    login(app_client, db, make_user(db, Role.RESEARCHER))  # a researcher of other projects
    assert app_client.get(url).status_code == 403
    assert audit_formats(db, voted.project.id) == []


def test_api_download_with_a_bearer_token(app_client: TestClient, db: Session, voted: Voted) -> None:
    response = app_client.get(f"/api/v1/projects/{voted.project.id}/export", params={"format": "trl"},
                              headers=bearer(db, voted.researcher))
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith("attachment;")
    assert [json.loads(line) for line in response.text.splitlines()] == expected_trl(voted)
    assert audit_formats(db, voted.project.id) == ["trl"]
    annotator = app_client.get(f"/api/v1/projects/{voted.project.id}/export",
                               headers=bearer(db, voted.annotators[0]))
    assert annotator.status_code == 403
    assert app_client.get(f"/api/v1/projects/{voted.project.id}/export").status_code == 401


def test_empty_project_downloads_an_empty_file(app_client: TestClient, db: Session) -> None:
    researcher = make_user(db, Role.RESEARCHER)
    project = make_project(db, members=[researcher])
    login(app_client, db, researcher)
    for fmt in ("trl", "raw"):
        response = app_client.get(f"/projects/{project.id}/export/download", params={"format": fmt})
        assert response.status_code == 200
        assert response.text == ""


def test_export_page_shows_counts_and_download_links(app_client: TestClient, db: Session,
                                                     voted: Voted) -> None:
    login(app_client, db, voted.researcher)
    response = app_client.get(f"/projects/{voted.project.id}/export")
    assert response.status_code == 200
    page = response.text
    assert f"/projects/{voted.project.id}/export/download?format=trl" in page
    assert f"/projects/{voted.project.id}/export/download?format=raw" in page
    assert '<p class="stat">10</p>' in page and "≤ 5" in page
    assert audit_formats(db, voted.project.id) == []  # viewing the page is not an export
