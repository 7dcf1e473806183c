from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.models import Role, User
from app.audit import service as audit_service
from app.audit.models import AuditEvent
from tests.factories import bearer, login, make_guideline_version, make_project, make_user


def test_the_audit_log_is_for_admins_only(app_client: TestClient, db: Session) -> None:
    researcher, annotator = make_user(db, Role.RESEARCHER), make_user(db)
    project = make_project(db, members=[researcher, annotator])
    for user in (researcher, annotator):
        login(app_client, db, user)
        assert app_client.get("/admin/audit").status_code == 403
        assert app_client.get(f"/projects/{project.id}/audit").status_code == 403
        assert app_client.get("/api/v1/audit-events", headers=bearer(db, user)).status_code == 403
        assert (
            app_client.get(
                f"/api/v1/projects/{project.id}/audit-events", headers=bearer(db, user)
            ).status_code
            == 403
        )
    app_client.cookies.clear()
    assert app_client.get("/admin/audit").status_code == 303  # to the login page


def test_the_project_log_shows_who_what_when_and_before_and_after_escaped(
    app_client: TestClient, db: Session
) -> None:
    admin = make_user(db, Role.ADMIN)
    project = make_project(db, name="audited")
    csrf = login(app_client, db, admin)
    changed = app_client.post(
        f"/projects/{project.id}/edit",
        data={
            "csrf_token": csrf,
            "name": "audited <b>bold</b>",
            "description": "",
            "overlap_k": "3",
            "lease_minutes": "30",
            "candidates_per_prompt": "2",
            "mode": "pairwise",
        },
    )
    assert changed.status_code == 303
    make_guideline_version(db, project, admin, summary="<script>alert(1)</script>")
    audit_service.record(db, actor_id=admin.id, action="elsewhere", project_id=project.id + 1000)
    page = app_client.get(f"/projects/{project.id}/audit")
    assert page.status_code == 200
    html = page.text
    assert (
        "project.update" in html and "guideline.publish" in html and "elsewhere" not in html.split("<h1")[1]
    )
    assert f"<td>{admin.username}</td>" in html
    assert '<tr class="change-changed"><th scope="row">overlap_k</th>' in html
    assert "<del>2</del>" in html and "<ins>3</ins>" in html
    assert "&#34;audited &lt;b&gt;bold&lt;/b&gt;&#34;" in html  # JSON text, escaped
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert html.index("guideline.publish") < html.index("project.update")  # newest first


def test_the_global_log_filters_by_action_and_pages(app_client: TestClient, db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    for n in range(55):
        audit_service.record(db, actor_id=admin.id, action="bulk.thing", target=f"t-{n:02d}")
    audit_service.record(db, actor_id=None, action="export", project_id=3, after={"format": "trl"})
    login(app_client, db, admin)
    everything = app_client.get("/admin/audit")
    assert everything.status_code == 200 and "command line" in everything.text
    assert 'href="http://testserver/projects/3/audit"' in everything.text
    filtered = app_client.get("/admin/audit", params={"action": "bulk.thing"})
    assert "t-54" in filtered.text and "t-05" in filtered.text and "t-04" not in filtered.text
    assert "Page 1 of 2" in filtered.text and "?page=2&amp;action=bulk.thing" in filtered.text
    older = app_client.get("/admin/audit", params={"action": "bulk.thing", "page": 2})
    assert "t-04" in older.text and "t-05" not in older.text and "?page=1&amp;action=bulk.thing" in older.text
    assert app_client.get("/admin/audit", params={"page": 0}).status_code == 422


def test_role_changes_and_enable_disable_are_audited_with_before_and_after(
    app_client: TestClient, db: Session
) -> None:
    admin, annotator = make_user(db, Role.ADMIN), make_user(db)
    csrf = login(app_client, db, admin)
    users_page = app_client.get("/admin/users").text
    assert f'action="http://testserver/admin/users/{annotator.id}/role"' in users_page
    changed = app_client.post(
        f"/admin/users/{annotator.id}/role", data={"csrf_token": csrf, "role": "researcher"}
    )
    assert changed.status_code == 303
    db.refresh(annotator)
    assert annotator.role == Role.RESEARCHER
    same = app_client.post(
        f"/admin/users/{annotator.id}/role", data={"csrf_token": csrf, "role": "researcher"}
    )
    assert same.status_code == 303
    own = app_client.post(f"/admin/users/{admin.id}/role", data={"csrf_token": csrf, "role": "annotator"})
    assert own.status_code == 409
    bad = app_client.post(f"/admin/users/{annotator.id}/role", data={"csrf_token": csrf, "role": "owner"})
    assert bad.status_code == 422
    app_client.post(f"/admin/users/{annotator.id}/active", data={"csrf_token": csrf, "active": "false"})
    events = _events(db, annotator)
    assert [(e.action, e.before, e.after) for e in events] == [
        ("user.role", {"role": "annotator"}, {"role": "researcher"}),
        ("user.disable", {"active": True}, {"active": False}),
    ]
    api = app_client.post(
        f"/api/v1/users/{annotator.id}/role", headers=bearer(db, admin), json={"role": "admin"}
    )
    assert api.status_code == 200 and api.json()["role"] == "admin"
    assert _events(db, annotator)[-1].after == {"role": "admin"}


def _events(db: Session, user: User) -> list[AuditEvent]:
    return list(
        db.scalars(
            select(AuditEvent)
            .where(AuditEvent.target == user.username, AuditEvent.action.like("user.%"))
            .order_by(AuditEvent.id)
        )
    )


def test_the_audit_api_lists_events_newest_first_with_changes(app_client: TestClient, db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    project = make_project(db)
    audit_service.record(
        db,
        actor_id=admin.id,
        action="project.update",
        project_id=project.id,
        target="p",
        before={"overlap_k": 2},
        after={"overlap_k": 3},
    )
    audit_service.record(db, actor_id=None, action="export", project_id=project.id, after={"format": "raw"})
    audit_service.record(db, actor_id=admin.id, action="user.role", target="someone")
    auth = bearer(db, admin)
    scoped = app_client.get(f"/api/v1/projects/{project.id}/audit-events", headers=auth).json()
    assert [e["action"] for e in scoped["events"]] == ["export", "project.update"]
    assert scoped["total"] == 2 and scoped["pages"] == 1
    update = scoped["events"][1]
    assert update["actor"] == admin.username and update["before"] == {"overlap_k": 2}
    assert update["changes"] == [{"key": "overlap_k", "before": "2", "after": "3", "kind": "changed"}]
    everything = app_client.get("/api/v1/audit-events", headers=auth, params={"per_page": 1}).json()
    assert (
        everything["events"][0]["action"] == "user.role" and everything["pages"] == everything["total"] >= 3
    )
    only = app_client.get("/api/v1/audit-events", headers=auth, params={"action": "export"}).json()
    assert {e["action"] for e in only["events"]} == {"export"}
    assert app_client.get("/api/v1/audit-events", headers=auth, params={"per_page": 0}).status_code == 422
