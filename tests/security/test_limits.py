"""Limits: upload size and row count, text length, request body size, sign-in throttling per account
and per address with a clear message, minimum password length, session lifetime and idle timeout."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.accounts import service as accounts_service
from app.accounts.models import Role
from app.accounts.throttle import LoginThrottle
from app.config import Settings
from app.db import utcnow
from app.errors import Invalid, TooManyAttempts
from app.main import create_app
from app.web.csrf import ANON_COOKIE, SESSION_COOKIE, token_for
from tests.factories import PASSWORD, bearer, make_project, make_user, make_user_without_password


@pytest.fixture
def strict(tmp_path: Path, database_url: str, session_factory: sessionmaker[Session]) -> Iterator[TestClient]:
    settings = Settings(database_url=database_url, data_dir=tmp_path, max_upload_mb=1, max_import_rows=3,
                        login_failures_per_account=3, login_failures_per_address=5)
    with TestClient(create_app(settings, session_factory=session_factory), follow_redirects=False) as client:
        yield client


def _login(client: TestClient, username: str, password: str) -> tuple[int, str]:
    client.cookies.set(ANON_COOKIE, "anon")
    response = client.post("/login", data={"username": username, "password": password,
                                           "csrf_token": token_for("anon")})
    return response.status_code, response.text


def test_sign_in_is_throttled_per_account(strict: TestClient, db: Session) -> None:
    user = make_user(db)
    other = make_user(db)
    db.flush()
    for _ in range(3):
        assert _login(strict, user.username, "wrong password")[0] == 401
    status, text = _login(strict, user.username, PASSWORD)  # even the right password waits now
    assert status == 429 and "too many failed sign-ins for this account: try again in 15 minutes" in text
    assert _login(strict, other.username, PASSWORD)[0] == 303  # another account is not locked out


def test_sign_in_is_throttled_per_address(strict: TestClient, db: Session) -> None:
    user = make_user(db)
    db.flush()
    for n in range(5):
        assert _login(strict, f"guess{n}", "wrong password")[0] == 401
    status, text = _login(strict, user.username, PASSWORD)
    assert status == 429 and "too many failed sign-ins for your address" in text


def test_the_throttle_forgets_after_its_window_and_on_success() -> None:
    now = [0.0]
    throttle = LoginThrottle(per_account=2, per_address=100, window_seconds=60, clock=lambda: now[0])
    for _ in range(2):
        throttle.failed(username="Alice", address="10.0.0.1")
    with pytest.raises(TooManyAttempts, match=r"try again in 1 minute$"):
        throttle.check(username="alice ", address="10.0.0.2")  # names compare case-blind
    now[0] = 61
    throttle.check(username="alice", address="10.0.0.1")
    throttle.failed(username="alice", address="10.0.0.1")
    throttle.succeeded(username="alice")
    throttle.failed(username="alice", address="10.0.0.1")
    throttle.check(username="alice", address="10.0.0.1")


def test_passwords_have_a_minimum_length(app_client: TestClient, db: Session) -> None:
    with pytest.raises(Invalid, match="at least 8 characters"):
        accounts_service.hash_password("short77")
    headers = bearer(db, make_user_without_password(db, Role.ADMIN))
    response = app_client.post("/api/v1/users", headers=headers,
                               json={"username": "newbie", "password": "short77", "role": "annotator"})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "password"


def test_sessions_end_when_idle_and_at_their_lifetime(db: Session) -> None:
    user = make_user_without_password(db)
    start = utcnow()
    raw = accounts_service.start_session(db, user=user, now=start, hours=2, idle_minutes=30)

    def alive(at: timedelta) -> bool:
        return db.scalar(accounts_service.session_user(raw, start + at)) is not None

    assert alive(timedelta(minutes=29)) and not alive(timedelta(minutes=31))
    for minutes in range(20, 200, 20):  # used every 20 minutes: kept alive, but never past 2 hours
        accounts_service.touch_session(db, raw, now=start + timedelta(minutes=minutes), hours=2,
                                       idle_minutes=30)
        db.expire_all()
        assert alive(timedelta(minutes=minutes + 1)) is (minutes < 120)
    assert not alive(timedelta(hours=2, seconds=1))


def test_an_idle_session_signs_the_browser_out(app_client: TestClient, db: Session) -> None:
    user = make_user_without_password(db)
    raw = accounts_service.start_session(db, user=user, now=utcnow() - timedelta(hours=3), hours=12,
                                         idle_minutes=120)
    db.flush()
    app_client.cookies.set(SESSION_COOKIE, raw)
    response = app_client.get("/projects")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_uploads_are_limited_in_size_and_rows(strict: TestClient, db: Session) -> None:
    headers = bearer(db, make_user_without_password(db, Role.ADMIN))
    project = make_project(db)
    url = f"/api/v1/projects/{project.id}/prompts"
    big = b'{"prompt": "' + b"x" * (1024 * 1024 + 10) + b'"}\n'
    response = strict.post(url, headers=headers, files={"file": ("p.jsonl", big, "application/x-ndjson")})
    assert response.status_code == 422 and "larger than 1 MB" in response.text
    rows = b"".join(json.dumps({"prompt": f"p{n}"}).encode() + b"\n" for n in range(4))
    response = strict.post(url, headers=headers, files={"file": ("p.jsonl", rows, "application/x-ndjson")})
    assert response.status_code == 422 and "the limit is 3" in response.text
    huge = b"x" * (3 * 1024 * 1024)  # past any upload: refused before it is read
    response = strict.post(url, headers={**headers, "Content-Type": "application/json"}, content=huge)
    assert response.status_code == 413


def test_text_fields_have_length_limits(app_client: TestClient, db: Session) -> None:
    admin = make_user_without_password(db, Role.ADMIN)
    headers = bearer(db, admin)
    project = make_project(db)
    response = app_client.post(f"/api/v1/projects/{project.id}/guidelines/versions", headers=headers,
                               json={"body": "x" * 200_001})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "body"
    response = app_client.post("/api/v1/projects", headers=headers,
                               json={"name": "n" * 121, "mode": "pairwise"})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "name"
    response = app_client.post(f"/api/v1/projects/{project.id}/leases/1/judgement", headers=headers,
                               json={"choice": "a", "strength": 1, "rationale": "r" * 5001})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "rationale"


def test_numbers_past_32_bits_are_refused_cleanly(app_client: TestClient, db: Session) -> None:
    headers = bearer(db, make_user_without_password(db, Role.ADMIN))
    project = make_project(db)
    huge = 2**40
    for path in (f"/api/v1/projects/{huge}", f"/api/v1/users/{huge}/role",
                 f"/api/v1/projects/{project.id}/guidelines/versions/{huge}"):
        method = "POST" if path.endswith("/role") else "GET"
        response = app_client.request(method, path, headers=headers, json={"role": "researcher"})
        assert response.status_code == 404, (path, response.text)
    response = app_client.post(f"/api/v1/projects/{project.id}/members", headers=headers,
                               json={"user_id": huge})
    assert response.status_code == 422 and "out of range" in response.json()["detail"]
