"""The access-control matrix, generated from the app's route table: every route by every kind of visitor
gets the status its rule (tests/security/rules.py) says, and object ids of another project, tried through
this project's URLs, give 404 or 403. A route without a rule fails here, naming itself."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

from app.config import Settings
from app.main import create_app
from app.web.csrf import ANON_COOKIE, HEADER, SESSION_COOKIE, token_for
from tests.security.rules import (
    ADMIN,
    MEMBER,
    PASSES,
    PROJECT_ANNOTATOR,
    PROJECT_RESEARCHER,
    PUBLIC,
    RULES,
    Rule,
)
from tests.security.world import ACTORS, Visitor, World, path_values

OBJECT_PARAMS = ("item_id", "lease_id", "attempt_id", "version_id", "user_id", "token_id", "run_id", "key")
ANON = "anonymous-browser-cookie"


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: str

    @property
    def is_api(self) -> bool:
        return self.path.startswith("/api/")

    @property
    def params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)


def routes_of(app: FastAPI) -> list[Route]:
    found = []
    for context in iter_route_contexts(app.routes):
        methods = sorted((context.methods or {"GET"}) - {"HEAD"})
        for method in methods:
            path = context.path or ""
            found.append(Route(context.name or path, method, "/static/app.js" if path == "/static" else path))
    return found


ROUTES = routes_of(create_app(Settings(database_url="postgresql://unused/x", secret_key="k"),
                              session_factory=object()))  # type: ignore[arg-type]


def test_every_route_has_a_rule_and_every_rule_a_route() -> None:
    names = {route.name for route in ROUTES}
    missing = sorted(names - RULES.keys())
    assert not missing, f"routes without an access rule in tests/security/rules.py: {missing}"
    stale = sorted(RULES.keys() - names)
    assert not stale, f"rules in tests/security/rules.py for routes that no longer exist: {stale}"


def call(client: TestClient, connection: Connection, route: Route, visitor: Visitor, ids: dict[str, Any],
         project_id: int) -> httpx.Response:
    """One request as `visitor`, in a savepoint rolled back after it (visitors never see each other's
    changes). API routes authenticate with the bearer token, pages with the cookie and its CSRF token."""
    values = path_values(ids, route_name=route.name, project_id=project_id)
    path = route.path.format(**{p: values[p] for p in route.params})
    body = RULES[route.name].body
    client.cookies.clear()
    headers: dict[str, str] = {}
    if route.is_api:
        if visitor.bearer:
            headers["Authorization"] = f"Bearer {visitor.bearer}"
        kwargs: dict[str, object] = {"json": body or {}} if route.method in ("POST", "PUT", "PATCH") else {}
    else:
        cookie_name, cookie = (SESSION_COOKIE, visitor.cookie) if visitor.cookie else (ANON_COOKIE, ANON)
        client.cookies.set(cookie_name, cookie)
        headers[HEADER] = token_for(cookie)
        kwargs = {"data": body} if body and route.method != "GET" else {}
    savepoint = connection.begin_nested()
    try:
        return client.request(route.method, path, headers=headers, **kwargs)  # type: ignore[arg-type]
    finally:
        savepoint.rollback()


def _denied_anonymously(route: Route, response: httpx.Response) -> bool:
    if route.is_api or route.method != "GET":
        return response.status_code == 401
    return response.status_code == 303 and response.headers["location"].startswith("/login")


# What the access checks answer (app/web/deps.py, app/projects/service.py, app/web/csrf.py). An allowed
# visitor may still be refused for other reasons (a lease that is not theirs, a calibration gate).
ACCESS_DENIALS = ("your role does not allow", "not a member of this project", "no such project",
                  "security token is missing")


def _allowed(route: Route, response: httpx.Response, rule: Rule) -> bool:
    status = response.status_code
    if status == 401 or status >= 500:
        return False
    if status in (403, 404) and any(message in response.text for message in ACCESS_DENIALS):
        return False
    redirect = status in (302, 303) and response.headers["location"].startswith("/login")
    return not redirect or rule.level == PUBLIC


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.method} {r.name}" for r in ROUTES])
def test_access_matrix(route: Route, world: World, client: TestClient, connection: Connection) -> None:
    rule: Rule = RULES[route.name]
    wrong = []
    for actor in ACTORS:
        response = call(client, connection, route, world.visitors[actor], world.ids_a, world.project_a.id)
        if rule.level in PASSES[actor]:
            ok = _allowed(route, response, rule)
        elif actor in ("anonymous", "disabled"):
            ok = _denied_anonymously(route, response)
        else:
            ok = response.status_code in (403, 404)
        if not ok:
            wrong.append(f"{actor} ({rule.level}): {response.status_code} {response.text[:120]!r}")
    assert not wrong, f"{route.method} {route.path}:\n" + "\n".join(wrong)


CROSS = [r for r in ROUTES if "project_id" in r.params and any(p in OBJECT_PARAMS for p in r.params)]


@pytest.mark.parametrize("route", CROSS, ids=[f"{r.method} {r.name}" for r in CROSS])
def test_ids_of_another_project_are_not_found(route: Route, world: World, client: TestClient,
                                              connection: Connection) -> None:
    """Project A's URL with B's item, lease, attempt, version or member: the most privileged visitor who
    may use the route (an admin, or an annotator of both projects who owns the object in B) gets 404/403."""
    level = RULES[route.name].level
    visitor = world.dual if level in (MEMBER, PROJECT_ANNOTATOR) else world.visitors["admin"]
    assert level in (MEMBER, PROJECT_ANNOTATOR, PROJECT_RESEARCHER, ADMIN), f"{route.name}: pick a visitor"
    response = call(client, connection, route, visitor, world.ids_b, world.project_a.id)
    assert response.status_code in (403, 404), (route.path, response.status_code, response.text[:200])


def test_someone_elses_token_cannot_be_revoked(world: World, client: TestClient,
                                               connection: Connection) -> None:
    route = next(r for r in ROUTES if r.name == "accounts:revoke_token")
    response = call(client, connection, route, world.visitors["researcher"], world.ids_b, world.project_a.id)
    assert response.status_code == 404
