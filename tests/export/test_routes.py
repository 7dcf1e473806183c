from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile

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


def unzip(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_browser_download_is_a_zip_of_the_jsonl_and_its_card_and_is_audited(
        app_client: TestClient, db: Session, voted: Voted) -> None:
    csrf = login(app_client, db, voted.researcher)
    response = app_client.post(f"/projects/{voted.project.id}/export",
                               data={"csrf_token": csrf, "format": "trl", "min_agreement": "",
                                     "guideline_version": "", "since": "", "until": ""})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    disposition = response.headers["content-disposition"]
    match = re.fullmatch(rf'attachment; filename="(project-{voted.project.id}-trl-\d{{8}}T\d{{4}})\.zip"',
                         disposition)
    assert match, disposition
    stem = match.group(1)
    files = unzip(response.content)
    assert sorted(files) == [f"{stem}.card.json", f"{stem}.card.md", f"{stem}.jsonl"]
    data = files[f"{stem}.jsonl"]
    assert [json.loads(line) for line in data.decode().splitlines()] == expected_trl(voted)
    card = json.loads(files[f"{stem}.card.json"])
    assert card["sha256"] == hashlib.sha256(data).hexdigest() and card["bytes"] == len(data)
    assert card["counts"]["lines"] == 2 and card["counts"]["judgements"] == 10
    assert card["sha256"] in files[f"{stem}.card.md"].decode()
    assert audit_formats(db, voted.project.id) == ["trl"]


def test_browser_download_needs_the_csrf_token(app_client: TestClient, db: Session, voted: Voted) -> None:
    login(app_client, db, voted.researcher)
    response = app_client.post(f"/projects/{voted.project.id}/export", data={"format": "trl"})
    assert response.status_code == 403
    assert audit_formats(db, voted.project.id) == []


def test_unknown_format_or_bad_option_is_422_and_records_nothing(app_client: TestClient, db: Session,
                                                                 voted: Voted) -> None:
    csrf = login(app_client, db, voted.researcher)
    response = app_client.post(f"/projects/{voted.project.id}/export",
                               data={"csrf_token": csrf, "format": "xml"})
    assert response.status_code == 422
    assert "content-disposition" not in response.headers
    api = app_client.get(f"/api/v1/projects/{voted.project.id}/export", params={"format": "xml"},
                         headers=bearer(db, voted.researcher))
    assert api.status_code == 422
    assert api.json()["errors"][0]["field"] == "format"
    late = app_client.get(f"/api/v1/projects/{voted.project.id}/export", params={"guideline_version": 4},
                          headers=bearer(db, voted.researcher))
    assert late.status_code == 422 and late.json()["errors"][0]["field"] == "guideline_version"
    assert audit_formats(db, voted.project.id) == []


def test_annotators_and_non_members_get_403(app_client: TestClient, db: Session, voted: Voted) -> None:
    csrf = login(app_client, db, voted.annotators[0])
    url = f"/projects/{voted.project.id}/export"
    assert app_client.post(url, data={"csrf_token": csrf}).status_code == 403
    assert app_client.get(url).status_code == 403
    csrf = login(app_client, db, make_user(db, Role.RESEARCHER))  # a researcher of other projects
    assert app_client.post(url, data={"csrf_token": csrf}).status_code == 403
    assert audit_formats(db, voted.project.id) == []


def test_api_download_with_a_bearer_token_zip_or_bare_jsonl(app_client: TestClient, db: Session,
                                                            voted: Voted) -> None:
    url = f"/api/v1/projects/{voted.project.id}/export"
    response = app_client.get(url, params={"format": "trl", "package": "jsonl"},
                              headers=bearer(db, voted.researcher))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.headers["content-disposition"].endswith('.jsonl"')
    assert [json.loads(line) for line in response.text.splitlines()] == expected_trl(voted)
    zipped = app_client.get(url, params={"format": "kto", "exclude_flags": "unsafe"},
                            headers=bearer(db, voted.researcher))
    assert zipped.headers["content-type"] == "application/zip"
    card = next(json.loads(v) for k, v in unzip(zipped.content).items() if k.endswith(".card.json"))
    assert card["format"] == "kto" and card["filters"]["exclude_flags"] == ["unsafe"]
    assert card["counts"]["lines"] == 4
    assert audit_formats(db, voted.project.id) == ["trl", "kto"]
    annotator = app_client.get(url, headers=bearer(db, voted.annotators[0]))
    assert annotator.status_code == 403
    assert app_client.get(url).status_code == 401


def test_empty_project_downloads_an_empty_file(app_client: TestClient, db: Session) -> None:
    researcher = make_user(db, Role.RESEARCHER)
    project = make_project(db, members=[researcher])
    for fmt in ("trl", "trl-implicit", "kto", "hh", "ratings", "raw"):
        response = app_client.get(f"/api/v1/projects/{project.id}/export",
                                  params={"format": fmt, "package": "jsonl"}, headers=bearer(db, researcher))
        assert response.status_code == 200
        assert response.text == ""


def test_export_page_has_the_form_with_every_option_and_a_preview(app_client: TestClient, db: Session,
                                                                   voted: Voted) -> None:
    login(app_client, db, voted.researcher)
    response = app_client.get(f"/projects/{voted.project.id}/export")
    assert response.status_code == 200
    page = response.text
    assert re.search(rf'action="[^"]*/projects/{voted.project.id}/export"', page)
    assert 'name="csrf_token"' in page
    for name in ("format", "style", "margin", "aggregation", "tie_policy", "min_agreement",
                 "min_gold_accuracy", "exclude_paused", "include_gold", "include_calibration",
                 "guideline_version", "since", "until", "exclude_flags", "include_edits"):
        assert f'name="{name}"' in page, name
    for fmt in ("trl", "trl-implicit", "kto", "hh", "ratings", "raw"):
        assert f'<option value="{fmt}"' in page
    assert re.search(rf'hx-get="[^"]*/projects/{voted.project.id}/export/preview"', page)
    assert '<span class="stat">10</span> judgements by 3 annotators' in page
    assert audit_formats(db, voted.project.id) == []  # viewing the page is not an export


def test_preview_fragment_follows_the_filters(app_client: TestClient, db: Session, voted: Voted) -> None:
    login(app_client, db, voted.researcher)
    url = f"/projects/{voted.project.id}/export/preview"
    fragment = app_client.get(url, params={"exclude_flags": "any"}, headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<div id="export-preview"')
    assert '<span class="stat">10</span>' in fragment.text
    none = app_client.get(url, params={"since": "2000-01-01", "until": "2000-01-02"})
    assert '<span class="stat">0</span>' in none.text
