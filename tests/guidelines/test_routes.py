from __future__ import annotations

from html.parser import HTMLParser

from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.accounts.models import Role, User
from app.annotation.models import Judgement
from app.projects.models import Project
from tests.factories import login, make_guideline_version, make_pair_item, make_project, make_user

HTMX = {"HX-Request": "true"}
XSS = (
    '<script>alert(1)</script>\n\n<img src=x onerror="alert(2)">\n\n[click](javascript:alert(3))\n\n'
    '<a href="javascript:alert(4)" onclick="alert(5)">x</a>\n\n[ok](https://example.org)\n\n**bold rule**'
)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {name: value or "" for name, value in attrs}))


def _assert_harmless(html: str) -> None:
    """No script but the page's own static files, no event handler, no javascript: URL, no image."""
    parser = _Tags()
    parser.feed(html)
    for tag, attrs in parser.tags:
        assert tag not in ("img", "iframe", "svg")
        if tag == "script":
            assert "/static/" in attrs.get("src", ""), attrs
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            assert not value.strip().lower().startswith("javascript:"), (tag, name, value)


def _setup(db: Session) -> tuple[User, User, Project]:
    admin = make_user(db, Role.ADMIN)
    annotator = make_user(db)
    project = make_project(db, members=[annotator])
    return admin, annotator, project


def _stored(db: Session, version_id: int) -> tuple[object, ...]:
    return tuple(
        db.execute(
            text("SELECT body, summary, number FROM guideline_versions WHERE id = :id"), {"id": version_id}
        ).one()
    )


def test_the_live_preview_answers_htmx_with_the_sanitized_render(app_client: TestClient, db: Session) -> None:
    admin, _, project = _setup(db)
    draft = make_guideline_version(db, project, admin, body="saved text", publish=False)
    csrf = login(app_client, db, admin)
    response = app_client.post(
        f"/projects/{project.id}/guidelines/versions/{draft.id}/preview",
        headers={**HTMX, "X-CSRF-Token": csrf},
        data={"body": XSS},
    )
    assert response.status_code == 200 and "<html" not in response.text
    assert "<strong>bold rule</strong>" in response.text
    assert '<a href="https://example.org" rel="nofollow noopener noreferrer">ok</a>' in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text  # shown as text, never run
    _assert_harmless(response.text)
    assert _stored(db, draft.id)[0] == "saved text"


def test_the_preview_button_works_without_js_and_saves_nothing(app_client: TestClient, db: Session) -> None:
    admin, _, project = _setup(db)
    draft = make_guideline_version(db, project, admin, body="saved text", publish=False)
    csrf = login(app_client, db, admin)
    editor = app_client.get(f"/projects/{project.id}/guidelines/versions/{draft.id}/edit")
    preview_url = f"http://testserver/projects/{project.id}/guidelines/versions/{draft.id}/preview"
    assert editor.status_code == 200
    assert f'hx-post="{preview_url}"' in editor.text and 'hx-target="#preview"' in editor.text
    assert f'formaction="{preview_url}"' in editor.text and ">saved text</textarea>" in editor.text
    response = app_client.post(preview_url, data={"csrf_token": csrf, "body": XSS, "summary": "kept summary"})
    assert response.status_code == 200 and "<html" in response.text
    assert (
        "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text and 'value="kept summary"' in response.text
    )
    assert "<strong>bold rule</strong>" in response.text
    _assert_harmless(response.text)
    assert _stored(db, draft.id)[0] == "saved text"


def test_save_then_publish_through_the_editor(app_client: TestClient, db: Session) -> None:
    admin, _, project = _setup(db)
    csrf = login(app_client, db, admin)
    created = app_client.post(f"/projects/{project.id}/guidelines/drafts", data={"csrf_token": csrf})
    assert created.status_code == 303
    edit_url = created.headers["location"]
    version_id = int(edit_url.rstrip("/").split("/")[-2])
    saved = app_client.post(
        f"/projects/{project.id}/guidelines/versions/{version_id}",
        data={"csrf_token": csrf, "body": "# Rules\n\nsaved"},
    )
    assert saved.status_code == 303 and saved.headers["location"] == edit_url + "?saved=true"
    assert "Draft saved" in app_client.get(saved.headers["location"]).text
    publish_url = f"/projects/{project.id}/guidelines/versions/{version_id}/publish"
    refused = app_client.post(
        publish_url, data={"csrf_token": csrf, "body": "# Rules\n\nnewer", "summary": " "}
    )
    assert refused.status_code == 422 and "a change summary is required" in refused.text
    assert "# Rules\n\nnewer</textarea>" in refused.text  # the text is kept for another try
    assert _stored(db, version_id) == ("# Rules\n\nsaved", "", None)
    published = app_client.post(
        publish_url,
        data={
            "csrf_token": csrf,
            "body": "# Rules\n\nnewer",
            "summary": "clearer ties",
            "requires_recalibration": "true",
        },
    )
    assert published.status_code == 303
    assert _stored(db, version_id) == ("# Rules\n\nnewer", "clearer ties", 1)
    page = app_client.get(published.headers["location"])
    assert page.status_code == 200 and "<h1>Rules</h1>" in page.text and "clearer ties" in page.text
    assert "everyone recalibrates" in page.text


def test_a_published_version_cannot_be_edited_through_the_pages(app_client: TestClient, db: Session) -> None:
    admin, _, project = _setup(db)
    version = make_guideline_version(db, project, admin, body="frozen", summary="v1")
    csrf = login(app_client, db, admin)
    base = f"/projects/{project.id}/guidelines/versions/{version.id}"
    saved = app_client.post(base, data={"csrf_token": csrf, "body": "changed"})
    assert saved.status_code == 409 and "published and frozen" in saved.text
    published = app_client.post(
        base + "/publish", data={"csrf_token": csrf, "body": "changed", "summary": "x"}
    )
    assert published.status_code == 409
    assert app_client.get(base + "/edit").headers["location"] == f"http://testserver{base}"
    assert _stored(db, version.id) == ("frozen", "v1", 1)


def test_only_admins_write_and_members_read_published_versions(app_client: TestClient, db: Session) -> None:
    admin, annotator, researcher, outsider = (
        make_user(db, Role.ADMIN),
        make_user(db),
        make_user(db, Role.RESEARCHER),
        make_user(db),
    )
    project = make_project(db, members=[annotator, researcher])
    make_project(db, members=[outsider])
    v1 = make_guideline_version(db, project, admin, body="the published rules")
    draft = make_guideline_version(db, project, admin, body="secret draft", publish=False)
    base = f"/projects/{project.id}/guidelines"
    for user in (annotator, researcher):
        csrf = login(app_client, db, user)
        index = app_client.get(base)
        assert index.status_code == 200 and "the published rules" in index.text
        assert "secret draft" not in index.text and "Continue the draft" not in index.text
        assert app_client.get(f"{base}/versions/{v1.id}").status_code == 200
        assert app_client.get(f"{base}/versions/{draft.id}").status_code == 404
        assert app_client.get(f"{base}/versions/{draft.id}/edit").status_code == 403
        assert app_client.post(f"{base}/drafts", data={"csrf_token": csrf}).status_code == 403
        assert (
            app_client.post(f"{base}/versions/{draft.id}", data={"csrf_token": csrf, "body": "x"}).status_code
            == 403
        )
        assert (
            app_client.post(
                f"{base}/versions/{draft.id}/preview", data={"csrf_token": csrf, "body": "x"}
            ).status_code
            == 403
        )
    login(app_client, db, outsider)
    assert app_client.get(base).status_code == 403
    assert _stored(db, draft.id)[0] == "secret draft"


def test_the_diff_page_escapes_the_text_and_marks_added_and_removed_lines(
    app_client: TestClient, db: Session
) -> None:
    admin, annotator, project = _setup(db)
    v1 = make_guideline_version(db, project, admin, body="keep\n<b>old rule</b>\nend")
    v2 = make_guideline_version(db, project, admin, body="keep\n<script>alert(1)</script>\nend")
    login(app_client, db, annotator)
    url = f"/projects/{project.id}/guidelines/diff?old={v1.id}&new={v2.id}"
    unified = app_client.get(url)
    assert unified.status_code == 200
    assert '<tr class="diff-removed">' in unified.text and '<tr class="diff-added">' in unified.text
    assert "&lt;b&gt;old rule&lt;/b&gt;" in unified.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in unified.text and "<script>alert" not in unified.text
    assert "+1" in unified.text and "\u22121" in unified.text
    split = app_client.get(url + "&mode=side_by_side")
    assert split.status_code == 200 and '<tr class="diff-row-changed">' in split.text
    assert '<td class="diff-removed">&lt;b&gt;old rule&lt;/b&gt;</td>' in split.text
    assert app_client.get(url + "&mode=sideways").status_code == 422
    draft = make_guideline_version(db, project, admin, body="draft", publish=False)
    assert (
        app_client.get(f"/projects/{project.id}/guidelines/diff?old={v1.id}&new={draft.id}").status_code
        == 404
    )


def test_new_guidelines_hold_back_the_next_item_until_acknowledged(
    app_client: TestClient, db: Session
) -> None:
    admin, annotator, project = _setup(db)
    make_pair_item(db, project, text="first prompt")
    make_pair_item(db, project, text="second prompt")
    v1 = make_guideline_version(db, project, admin, body="# Be careful\n\nread me")
    csrf = login(app_client, db, annotator)
    workspace = f"/projects/{project.id}/annotate"
    gate = app_client.get(workspace)
    assert gate.status_code == 303
    assert gate.headers["location"] == f"http://testserver/projects/{project.id}/guidelines/acknowledge"
    page = app_client.get(gate.headers["location"])
    assert page.status_code == 200 and "<h1>Be careful</h1>" in page.text and "first version" in page.text
    assert app_client.get(workspace, headers=HTMX).headers["HX-Redirect"] == gate.headers["location"]
    done = app_client.post(
        f"/projects/{project.id}/guidelines/versions/{v1.id}/acknowledge", data={"csrf_token": csrf}
    )
    assert done.status_code == 303 and done.headers["location"] == f"http://testserver{workspace}"
    item_page = app_client.get(workspace)
    assert item_page.status_code == 200 and 'class="workspace-form"' in item_page.text

    v2 = make_guideline_version(db, project, admin, body="# Be careful\n\nread me twice", summary="twice")
    lease_id = int(item_page.text.split("/leases/")[1].split('"')[0])
    submitted = app_client.post(
        f"/projects/{project.id}/leases/{lease_id}", headers=HTMX, data={"csrf_token": csrf, "choice": "tie"}
    )
    assert submitted.status_code == 204  # the in-flight item is stored; the next one waits for v2
    assert submitted.headers["HX-Redirect"] == f"http://testserver{workspace}"
    judgement = db.scalars(select(Judgement).where(Judgement.lease_id == lease_id)).one()
    assert judgement.guideline_version_id == v1.id  # made under the version read, not the newer one
    again = app_client.get(app_client.get(workspace).headers["location"])
    assert "twice" in again.text and f"old={v1.id}&amp;new={v2.id}" in again.text
    app_client.post(
        f"/projects/{project.id}/guidelines/versions/{v2.id}/acknowledge", data={"csrf_token": csrf}
    )
    second = app_client.get(workspace)
    assert second.status_code == 200 and "second prompt" in second.text
    lease_id = int(second.text.split("/leases/")[1].split('"')[0])
    app_client.post(f"/projects/{project.id}/leases/{lease_id}", data={"csrf_token": csrf, "choice": "tie"})
    assert (
        db.scalars(select(Judgement).where(Judgement.lease_id == lease_id)).one().guideline_version_id
        == v2.id
    )


def test_the_workspace_opens_the_guidelines_with_g_and_by_a_plain_link(
    app_client: TestClient, db: Session
) -> None:
    admin, annotator, project = _setup(db)
    make_pair_item(db, project)
    version = make_guideline_version(db, project, admin, body=XSS, summary="<i>careful</i>")
    csrf = login(app_client, db, annotator)
    app_client.post(
        f"/projects/{project.id}/guidelines/versions/{version.id}/acknowledge", headers={"X-CSRF-Token": csrf}
    )
    page = app_client.get(f"/projects/{project.id}/annotate").text
    assert f'href="http://testserver/projects/{project.id}/guidelines"' in page
    assert 'data-action="toggle-guidelines"' in page and 'class="guidelines-overlay"' in page
    assert f'data-panel="http://testserver/projects/{project.id}/guidelines/panel"' in page
    assert "<kbd>g</kbd>" in page
    panel = app_client.get(f"/projects/{project.id}/guidelines/panel")
    assert panel.status_code == 200 and "<html" not in panel.text
    assert "<strong>bold rule</strong>" in panel.text and "&lt;i&gt;careful&lt;/i&gt;" in panel.text
    _assert_harmless(panel.text)


def test_the_project_page_links_to_the_guidelines(app_client: TestClient, db: Session) -> None:
    _, annotator, project = _setup(db)
    login(app_client, db, annotator)
    page = app_client.get(f"/projects/{project.id}").text
    assert f'href="http://testserver/projects/{project.id}/guidelines"' in page
    assert "/audit" not in page  # the audit log link is for admins
