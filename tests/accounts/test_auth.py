from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.accounts import service as accounts_service
from app.accounts.models import Role
from app.web.csrf import ANON_COOKIE, SESSION_COOKIE
from tests.factories import PASSWORD, bearer, login, make_project, make_user


def _login_page_token(client: TestClient) -> str:
    page = client.get("/login")
    assert page.status_code == 200
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert match, "the login form carries a CSRF token"
    return match.group(1)


def test_password_is_stored_as_argon2_hash(db: Session) -> None:
    user = make_user(db)
    assert user.password_hash.startswith("$argon2")
    assert PASSWORD not in user.password_hash


def test_login_sets_httponly_lax_session_cookie_and_logout_ends_it(
    app_client: TestClient, db: Session
) -> None:
    user = make_user(db, Role.ADMIN)
    db.flush()
    token = _login_page_token(app_client)
    response = app_client.post(
        "/login",
        data={"username": user.username, "password": PASSWORD, "csrf_token": token, "next": "/account"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/account"
    cookie = response.headers["set-cookie"]
    assert (
        f"{SESSION_COOKIE}=" in cookie
        and "HttpOnly" in cookie
        and "SameSite=lax" in cookie.replace("Lax", "lax")
    )
    assert app_client.get("/account").status_code == 200

    session_cookie = app_client.cookies[SESSION_COOKIE]
    from app.web.csrf import token_for

    out = app_client.post("/logout", data={"csrf_token": token_for(session_cookie)})
    assert out.status_code == 303
    app_client.cookies.set(SESSION_COOKIE, session_cookie)  # a stolen copy of the cookie is dead too
    assert app_client.get("/account").status_code == 303


def test_wrong_password_is_refused_with_a_message(app_client: TestClient, db: Session) -> None:
    user = make_user(db)
    token = _login_page_token(app_client)
    response = app_client.post(
        "/login", data={"username": user.username, "password": "nope-nope-nope", "csrf_token": token}
    )
    assert response.status_code == 401
    assert "wrong username or password" in response.text
    assert SESSION_COOKIE not in response.cookies


def test_login_without_csrf_token_is_refused(app_client: TestClient, db: Session) -> None:
    user = make_user(db)
    app_client.get("/login")
    assert ANON_COOKIE in app_client.cookies
    response = app_client.post("/login", data={"username": user.username, "password": PASSWORD})
    assert response.status_code == 403


def test_open_redirect_after_login_is_neutralised(app_client: TestClient, db: Session) -> None:
    user = make_user(db)
    token = _login_page_token(app_client)
    response = app_client.post(
        "/login",
        data={
            "username": user.username,
            "password": PASSWORD,
            "csrf_token": token,
            "next": "//evil.example/x",
        },
    )
    assert response.headers["location"] == "/"


def test_disabling_a_user_takes_effect_on_the_next_request(app_client: TestClient, db: Session) -> None:
    user = make_user(db)
    login(app_client, db, user)
    assert app_client.get("/account").status_code == 200
    accounts_service.set_active(db, user_id=user.id, active=False)
    db.flush()
    assert app_client.get("/account").status_code == 303


def test_state_changing_form_without_csrf_is_forbidden(app_client: TestClient, db: Session) -> None:
    researcher = make_user(db, Role.RESEARCHER)
    csrf = login(app_client, db, researcher)
    assert app_client.post("/account/tokens", data={"name": "x"}).status_code == 403
    assert app_client.post("/account/tokens", data={"name": "x", "csrf_token": "0" * 64}).status_code == 403
    assert app_client.post("/account/tokens", data={"name": "x", "csrf_token": csrf}).status_code == 201


def test_api_token_is_stored_hashed_and_authenticates(app_client: TestClient, db: Session) -> None:
    researcher = make_user(db, Role.RESEARCHER)
    token, raw = accounts_service.create_api_token(db, user=researcher, name="script")
    db.flush()
    assert raw not in token.token_hash
    me = app_client.get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"})
    assert me.status_code == 200 and me.json()["username"] == researcher.username
    assert app_client.get("/api/v1/me", headers={"Authorization": "Bearer ps_wrong"}).status_code == 401


def test_cookie_authenticated_api_post_needs_csrf_header(app_client: TestClient, db: Session) -> None:
    researcher = make_user(db, Role.RESEARCHER)
    csrf = login(app_client, db, researcher)
    assert app_client.post("/api/v1/tokens", json={"name": "a"}).status_code == 403
    ok = app_client.post("/api/v1/tokens", json={"name": "a"}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201 and ok.json()["token"].startswith("ps_")


def test_bearer_api_post_is_exempt_from_csrf(app_client: TestClient, db: Session) -> None:
    researcher = make_user(db, Role.RESEARCHER)
    response = app_client.post("/api/v1/tokens", json={"name": "b"}, headers=bearer(db, researcher))
    assert response.status_code == 201


def test_annotator_gets_403_on_admin_pages_and_api(app_client: TestClient, db: Session) -> None:
    annotator = make_user(db)
    login(app_client, db, annotator)
    assert app_client.get("/admin/users").status_code == 403
    assert app_client.get("/api/v1/users", headers=bearer(db, annotator)).status_code == 403


def test_annotators_see_only_their_projects(app_client: TestClient, db: Session) -> None:
    annotator = make_user(db)
    mine = make_project(db, members=[annotator], name="mine")
    make_project(db, name="theirs")
    login(app_client, db, annotator)
    page = app_client.get("/projects")
    assert mine.name in page.text and "theirs" not in page.text


def test_short_passwords_are_refused(db: Session) -> None:
    import pytest

    from app.errors import Invalid

    with pytest.raises(Invalid, match="at least 8"):
        accounts_service.create_user(db, username="shorty", password="short", role=Role.ANNOTATOR)
