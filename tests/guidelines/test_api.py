from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.models import Role
from app.annotation.models import Judgement
from tests.factories import bearer, make_pair_item, make_project, make_user_without_password

DOC = "# Rules\n\nPrefer the **correct** answer.\n"


def test_the_guidelines_api_from_draft_to_diff(app_client: TestClient, db: Session) -> None:
    admin = make_user_without_password(db, Role.ADMIN)
    project = make_project(db)
    auth = bearer(db, admin)
    base = f"/api/v1/projects/{project.id}/guidelines"
    assert app_client.get(f"{base}/active", headers=auth).status_code == 404
    created = app_client.post(f"{base}/versions", headers=auth, json={"body": DOC})
    assert created.status_code == 201
    draft = created.json()
    assert (draft["label"], draft["is_draft"], draft["number"], draft["body"]) == ("draft", True, None, DOC)
    assert app_client.post(f"{base}/versions", headers=auth, json={}).status_code == 409
    updated = app_client.put(
        f"{base}/versions/{draft['id']}", headers=auth, json={"body": DOC + "Be kind.\n"}
    )
    assert updated.status_code == 200 and updated.json()["body"].endswith("Be kind.\n")
    no_summary = app_client.post(f"{base}/versions/{draft['id']}/publish", headers=auth, json={"summary": ""})
    assert no_summary.status_code == 422
    assert no_summary.json()["errors"] == [
        {"field": "summary", "message": "say what changed: a change summary is required to publish"}
    ]
    published = app_client.post(
        f"{base}/versions/{draft['id']}/publish",
        headers=auth,
        json={"summary": "first rules", "requires_recalibration": True},
    )
    assert published.status_code == 200
    v1 = published.json()
    assert (v1["label"], v1["number"], v1["summary"], v1["requires_recalibration"]) == (
        "v1",
        1,
        "first rules",
        True,
    )
    assert v1["published_by_id"] == admin.id and v1["published_at"] is not None
    assert (
        app_client.post(
            f"{base}/versions/{v1['id']}/publish", headers=auth, json={"summary": "again"}
        ).status_code
        == 409
    )
    frozen = app_client.put(f"{base}/versions/{v1['id']}", headers=auth, json={"body": "changed"})
    assert frozen.status_code == 409 and "frozen" in frozen.json()["detail"]
    assert app_client.get(f"{base}/versions/{v1['id']}", headers=auth).json()["body"] == DOC + "Be kind.\n"

    second = app_client.post(f"{base}/versions", headers=auth, json={}).json()
    assert second["body"] == DOC + "Be kind.\n"  # a copy of the active version
    app_client.put(f"{base}/versions/{second['id']}", headers=auth, json={"body": DOC + "Be brief.\n"})
    v2 = app_client.post(
        f"{base}/versions/{second['id']}/publish", headers=auth, json={"summary": "brief, not kind"}
    ).json()
    assert app_client.get(f"{base}/active", headers=auth).json()["id"] == v2["id"]
    listed = app_client.get(f"{base}/versions", headers=auth).json()
    assert [v["label"] for v in listed] == ["v2", "v1"]

    unified = app_client.get(f"{base}/diff", headers=auth, params={"old": v1["id"], "new": v2["id"]}).json()
    assert (unified["mode"], unified["added"], unified["removed"], unified["rows"]) == ("unified", 1, 1, [])
    assert [(line["kind"], line["text"]) for line in unified["lines"] if line["kind"] != "context"] == [
        ("hunk", "@@ -1,4 +1,4 @@"),
        ("removed", "Be kind."),
        ("added", "Be brief."),
    ]
    split = app_client.get(
        f"{base}/diff", headers=auth, params={"old": v1["id"], "new": v2["id"], "mode": "side_by_side"}
    ).json()
    assert split["lines"] == [] and split["rows"][-1] == {
        "kind": "changed",
        "left": "Be kind.",
        "right": "Be brief.",
        "left_no": 4,
        "right_no": 4,
    }
    assert app_client.get(f"{base}/diff", headers=auth, params={"old": v1["id"]}).status_code == 422


def test_annotators_read_and_acknowledge_but_never_write(app_client: TestClient, db: Session) -> None:
    admin = make_user_without_password(db, Role.ADMIN)
    annotator = make_user_without_password(db)
    project = make_project(db, members=[annotator])
    base = f"/api/v1/projects/{project.id}/guidelines"
    admin_auth, auth = bearer(db, admin), bearer(db, annotator)
    draft = app_client.post(f"{base}/versions", headers=admin_auth, json={"body": DOC}).json()
    assert app_client.get(f"{base}/versions", headers=auth).json() == []
    assert app_client.get(f"{base}/versions/{draft['id']}", headers=auth).status_code == 404
    assert app_client.post(f"{base}/versions", headers=auth, json={}).status_code == 403
    assert (
        app_client.put(f"{base}/versions/{draft['id']}", headers=auth, json={"body": "x"}).status_code == 403
    )
    assert (
        app_client.post(
            f"{base}/versions/{draft['id']}/publish", headers=auth, json={"summary": "mine"}
        ).status_code
        == 403
    )
    assert app_client.get(f"{base}/pending", headers=auth).json() == {"pending": None}
    app_client.post(f"{base}/versions/{draft['id']}/publish", headers=admin_auth, json={"summary": "go"})
    pending = app_client.get(f"{base}/pending", headers=auth).json()["pending"]
    assert pending["id"] == draft["id"] and pending["label"] == "v1"
    ack = app_client.post(f"{base}/versions/{draft['id']}/acknowledge", headers=auth)
    assert ack.status_code == 200 and ack.json()["user_id"] == annotator.id
    repeat = app_client.post(f"{base}/versions/{draft['id']}/acknowledge", headers=auth)
    assert repeat.json()["acknowledged_at"] == ack.json()["acknowledged_at"]
    assert app_client.get(f"{base}/pending", headers=auth).json() == {"pending": None}
    assert app_client.post(f"{base}/versions/999999/acknowledge", headers=auth).status_code == 404


def test_next_item_answers_409_until_the_new_version_is_acknowledged(
    app_client: TestClient, db: Session
) -> None:
    admin = make_user_without_password(db, Role.ADMIN)
    annotator = make_user_without_password(db)
    project = make_project(db, members=[annotator])
    make_pair_item(db, project)
    make_pair_item(db, project)
    auth, admin_auth = bearer(db, annotator), bearer(db, admin)
    first = app_client.get(f"/api/v1/projects/{project.id}/next", headers=auth).json()
    stored = app_client.post(
        f"/api/v1/projects/{project.id}/leases/{first['lease_id']}/judgement",
        headers=auth,
        json={"choice": "tie"},
    )
    assert stored.status_code == 201
    assert db.scalars(select(Judgement)).one().guideline_version_id is None  # no guidelines yet

    base = f"/api/v1/projects/{project.id}/guidelines"
    draft = app_client.post(f"{base}/versions", headers=admin_auth, json={"body": DOC}).json()
    app_client.post(f"{base}/versions/{draft['id']}/publish", headers=admin_auth, json={"summary": "go"})
    blocked = app_client.get(f"/api/v1/projects/{project.id}/next", headers=auth)
    assert blocked.status_code == 409
    body = blocked.json()
    assert body["guideline_version"]["id"] == draft["id"] and body["guideline_version"]["label"] == "v1"
    assert "acknowledge" in body["detail"]
    assert app_client.post(body["acknowledge_url"], headers=auth).status_code == 200
    item = app_client.get(f"/api/v1/projects/{project.id}/next", headers=auth)
    assert item.status_code == 200
    app_client.post(
        f"/api/v1/projects/{project.id}/leases/{item.json()['lease_id']}/judgement",
        headers=auth,
        json={"choice": "a", "strength": 1},
    )
    latest = db.scalars(select(Judgement).order_by(Judgement.id.desc())).first()
    assert latest is not None and latest.guideline_version_id == draft["id"]


def test_the_next_item_409_is_in_the_openapi_schema(app_client: TestClient) -> None:
    schema = app_client.get("/openapi.json").json()
    responses = schema["paths"]["/api/v1/projects/{project_id}/next"]["get"]["responses"]
    assert responses["409"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "AcknowledgementRequired"
    )
    publish = schema["paths"]["/api/v1/projects/{project_id}/guidelines/versions/{version_id}/publish"][
        "post"
    ]
    assert "examples" in str(schema["components"]["schemas"]["PublishIn"]) and "409" in publish["responses"]
