"""Security headers on every page, API answer, error and static file; no inline script in any template;
Secure cookies behind HTTPS; safe download names; no route serves a path taken from user input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.main import create_app
from app.web.csrf import ANON_COOKIE, SESSION_COOKIE, token_for
from tests.factories import make_user
from tests.security.test_access import ROUTES, call
from tests.security.world import World

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
GETS = [r for r in ROUTES if r.method == "GET"]


def _check_headers(headers: dict[str, str] | object, where: str) -> None:
    csp = headers["content-security-policy"]  # type: ignore[index]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives["script-src"] == ["'self'"], where  # no 'unsafe-inline', no 'unsafe-eval', no hosts
    assert directives["frame-ancestors"] == ["'none'"] and directives["object-src"] == ["'none'"], where
    assert headers["x-content-type-options"] == "nosniff", where  # type: ignore[index]
    assert headers["referrer-policy"] in ("same-origin", "no-referrer", "strict-origin"), where  # type: ignore[index]
    assert headers["x-frame-options"] == "DENY", where  # type: ignore[index]


def test_every_get_route_answers_with_the_headers(world: World, client: TestClient,
                                                  connection: Connection) -> None:
    for actor in ("admin", "anonymous"):
        for route in GETS:
            response = call(client, connection, route, world.visitors[actor], world.ids_a, world.project_a.id)
            _check_headers(response.headers, f"{actor} {route.path}: {response.status_code}")


def test_errors_and_static_files_carry_them_too(client: TestClient) -> None:
    for path in ("/no/such/page", "/api/v1/no-such", "/static/app.js", "/static/../app/config.py"):
        _check_headers(client.get(path).headers, path)


def test_no_template_has_inline_script_or_handlers() -> None:
    problems = []
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text, flags=re.I):
            if "src=" not in tag:
                problems.append(f"{template.name}: inline {tag}")
        if re.search(r"\son[a-z]+\s*=", text, flags=re.I):
            problems.append(f"{template.name}: inline event handler")
        if re.search(r"javascript:", text, flags=re.I):
            problems.append(f"{template.name}: javascript: URL")
        if re.search(r"hx-on", text, flags=re.I):
            problems.append(f"{template.name}: hx-on (evaluated script)")
    assert not problems


def _login_cookie_flags(client: TestClient, db: Session, headers: dict[str, str]) -> str:
    user = make_user(db)
    db.flush()
    client.cookies.set(ANON_COOKIE, "anon")
    response = client.post("/login", headers=headers, data={
        "username": user.username, "password": "correct horse battery", "csrf_token": token_for("anon")})
    assert response.status_code == 303
    return next(v for k, v in response.headers.multi_items()
                if k == "set-cookie" and v.startswith(SESSION_COOKIE + "="))


@pytest.mark.parametrize(("secure_setting", "trust_proxy", "forwarded", "secure"), [
    (False, False, None, False),
    (False, False, "https", False),  # an untrusted header is ignored
    (False, True, "https", True),
    (False, True, "http", False),
    (True, False, None, True),
])
def test_session_cookie_is_secure_behind_https(
    tmp_path: Path, database_url: str, db: Session, session_factory: sessionmaker[Session],
    secure_setting: bool, trust_proxy: bool, forwarded: str | None, secure: bool,
) -> None:
    settings = Settings(database_url=database_url, data_dir=tmp_path, secure_cookies=secure_setting,
                        trust_proxy=trust_proxy)
    with TestClient(create_app(settings, session_factory=session_factory), follow_redirects=False) as client:
        headers = {"X-Forwarded-Proto": forwarded} if forwarded else {}
        flags = _login_cookie_flags(client, db, headers).lower()
    assert ("; secure" in flags) is secure
    assert "httponly" in flags and "samesite=lax" in flags


def test_download_names_are_sanitised(world: World, client: TestClient, connection: Connection) -> None:
    route = next(r for r in ROUTES if r.name == "export:download")
    response = call(client, connection, route, world.visitors["admin"], world.ids_a, world.project_a.id)
    assert response.status_code == 200
    assert re.fullmatch(r'attachment; filename="[A-Za-z0-9.\-]+"', response.headers["content-disposition"])


def test_no_route_serves_a_path_from_user_input(client: TestClient) -> None:
    assert not [r.path for r in ROUTES if ":path}" in r.path]
    for probe in ("/static/../app/config.py", "/static/%2e%2e/app/config.py", "/static/..%2fapp%2fconfig.py",
                  "/static//etc/passwd"):
        response = client.get(probe)
        assert response.status_code == 404 and "secret_key" not in response.text, probe
