"""CSRF, generated from the route table: every state-changing route refuses a cookie-authenticated
request without a valid token (pages and API alike); a bearer-token request needs none."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

from app.web.csrf import ANON_COOKIE, HEADER, SESSION_COOKIE, token_for
from tests.security.rules import RULES
from tests.security.test_access import ROUTES, Route
from tests.security.world import World, path_values

CHANGING = [r for r in ROUTES if r.method not in ("GET", "HEAD", "OPTIONS")]
REFUSED = "security token is missing or stale"


def _send(client: TestClient, connection: Connection, route: Route, world: World, *,
          headers: dict[str, str], cookies: dict[str, str]) -> httpx.Response:
    values = path_values(world.ids_a, route_name=route.name, project_id=world.project_a.id)
    path = route.path.format(**{p: values[p] for p in route.params})
    body = RULES[route.name].body or {}
    client.cookies.clear()
    for name, value in cookies.items():
        client.cookies.set(name, value)
    kwargs = {"json": body} if route.is_api else {"data": body}
    savepoint = connection.begin_nested()
    try:
        return client.request(route.method, path, headers=headers, **kwargs)  # type: ignore[arg-type]
    finally:
        savepoint.rollback()


def test_every_state_changing_route_is_covered() -> None:
    assert len(CHANGING) > 40 and any(r.is_api for r in CHANGING) and any(not r.is_api for r in CHANGING)


@pytest.mark.parametrize("route", CHANGING, ids=[f"{r.method} {r.name}" for r in CHANGING])
def test_cookie_requests_need_the_token(route: Route, world: World, client: TestClient,
                                        connection: Connection) -> None:
    admin = world.visitors["admin"]
    assert admin.cookie and admin.bearer
    other_cookie = world.visitors["annotator"].cookie
    assert other_cookie
    session = {SESSION_COOKIE: admin.cookie}
    attempts = {
        "no token": {},
        "empty token": {HEADER: ""},
        "another session's token": {HEADER: token_for(other_cookie)},
        "a made-up token": {HEADER: "0" * 64},
    }
    for label, headers in attempts.items():
        response = _send(client, connection, route, world, headers=headers, cookies=session)
        assert response.status_code == 403 and REFUSED in response.text, (label, response.status_code)
    with_token = _send(client, connection, route, world, headers={HEADER: admin.csrf}, cookies=session)
    assert REFUSED not in with_token.text
    if route.is_api:  # the bearer token is exempt, even with a session cookie beside it
        response = _send(client, connection, route, world, cookies=session,
                         headers={"Authorization": f"Bearer {admin.bearer}"})
        assert REFUSED not in response.text and response.status_code < 500
    else:  # the form field works as well as the header
        values = path_values(world.ids_a, route_name=route.name, project_id=world.project_a.id)
        path = route.path.format(**{p: values[p] for p in route.params})
        client.cookies.clear()
        client.cookies.set(SESSION_COOKIE, admin.cookie)
        savepoint = connection.begin_nested()
        try:
            response = client.request(route.method, path,
                                      data={**(RULES[route.name].body or {}), "csrf_token": admin.csrf})
        finally:
            savepoint.rollback()
        assert REFUSED not in response.text


def test_the_login_form_needs_the_anonymous_token(client: TestClient) -> None:
    form = {"username": "nobody", "password": "wrong password"}
    client.cookies.set(ANON_COOKIE, "anon-value")
    refused = client.post("/login", data=form)
    assert refused.status_code == 403 and REFUSED in refused.text
    accepted = client.post("/login", data={**form, "csrf_token": token_for("anon-value")})
    assert REFUSED not in accepted.text and accepted.status_code in (200, 401, 422)
