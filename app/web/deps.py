"""Dependencies shared by every router: the unit of work, the current user, role and project checks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.accounts import service as accounts_service
from app.accounts.models import Role, User
from app.db import unit_of_work, utcnow
from app.errors import NotAuthenticated, PermissionDenied
from app.projects import service as projects_service
from app.projects.models import Project
from app.web.csrf import SESSION_COOKIE


@dataclass(frozen=True)
class Viewer:
    id: int
    username: str
    display_name: str
    role: Role


async def get_session(request: Request) -> AsyncIterator[Session]:
    """The request's unit of work: committed before the response is sent (scope="function").

    Async, so opening it costs no trip through the threadpool: a session connects on its first query.
    Committing (or rolling back) talks to Postgres, so that part runs in the threadpool.
    """
    unit = unit_of_work(request.app.state.session_factory)
    session = unit.__enter__()
    try:
        yield session
    except BaseException as exc:
        if not await run_in_threadpool(unit.__exit__, type(exc), exc, exc.__traceback__):
            raise
    else:
        await run_in_threadpool(unit.__exit__, None, None, None)


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def optional_user(request: Request, session: SessionDep) -> User | None:
    """The signed-in user (bearer token or session cookie), or None; see authenticate."""
    return authenticate(request, session)


def authenticate(request: Request, session: Session) -> User | None:
    """The signed-in user (bearer token or session cookie), or None.

    On a route with a project_id in its path, the same query reads the project and the membership too
    (kept in request.state for project_for_user), so signing in and the project check cost one query.
    """
    token = accounts_service.bearer_token(request.headers.get("Authorization", ""))
    if token is not None:
        user = _find_user(request, session, accounts_service.api_token_lookup(token))
        if user is None:
            raise NotAuthenticated("the API token is unknown, revoked, or its user is disabled")
        request.state.auth = "token"
    else:
        raw = request.cookies.get(SESSION_COOKIE)
        now = utcnow()
        user = _find_user(request, session, accounts_service.session_lookup(raw, now)) if raw else None
        request.state.auth = "cookie" if user else None
        if user is not None and raw:
            settings = request.app.state.settings
            accounts_service.touch_session(session, raw, now=now, hours=settings.session_hours,
                                           idle_minutes=settings.session_idle_minutes)
    if user is not None:
        # A plain copy for templates: error pages render after the unit of work has rolled back.
        request.state.viewer = Viewer(user.id, user.username, user.display_name, user.role)
    return user


def _find_user(request: Request, session: Session, users: accounts_service.UserLookup) -> User | None:
    raw = request.path_params.get("project_id")
    project_id = int(raw) if isinstance(raw, str) and raw.isascii() and raw.isdigit() else 0
    if not 0 < project_id < 2**31:  # not a project id Postgres can hold: project_for_user will say so
        return session.scalar(users.statement, users.params)
    found = projects_service.user_with_access(session, users, project_id=project_id)
    if found is None:
        return None
    request.state.project_access = found[1]
    return found[0]


# The checks below touch no database, so they are async: a sync dependency costs a threadpool trip.
async def current_user(user: Annotated[User | None, Depends(optional_user)]) -> User:
    if user is None:
        raise NotAuthenticated("please sign in")
    return user


CurrentUser = Annotated[User, Depends(current_user)]
OptionalUser = Annotated[User | None, Depends(optional_user)]


def _require(*roles: Role):  # type: ignore[no-untyped-def]
    async def dependency(user: CurrentUser) -> User:
        return check_role(user, roles)

    return dependency


def check_role(user: User, roles: tuple[Role, ...]) -> User:
    if user.role not in roles:
        raise PermissionDenied("your role does not allow this page")
    return user


ANNOTATING = (Role.ADMIN, Role.ANNOTATOR)


AdminDep = Annotated[User, Depends(_require(Role.ADMIN))]
ResearcherDep = Annotated[User, Depends(_require(Role.ADMIN, Role.RESEARCHER))]
AnnotatorDep = Annotated[User, Depends(_require(*ANNOTATING))]


async def project_for_user(request: Request, project_id: int, user: CurrentUser,
                           session: SessionDep) -> Project:
    """The project, if the user may see it: admins see all, others only where they are members.

    Usually read already, with the user (optional_user); async, so checking it costs no threadpool trip.
    """
    known = _project_read_with_user(request, project_id, user)
    if known is not None:
        return known
    return await run_in_threadpool(projects_service.get_for_user, session, project_id=project_id, user=user)


def _project_read_with_user(request: Request, project_id: int, user: User) -> Project | None:
    """The project as authenticate() read it with the user, checked; None when it was not read then."""
    access = getattr(request.state, "project_access", None)
    if isinstance(access, projects_service.Access) and access.project_id == project_id:
        return projects_service.check_access(access, user)
    return None


ProjectDep = Annotated[Project, Depends(project_for_user)]


def annotator_in_project(request: Request, session: Session, project_id: int) -> tuple[User, Project]:
    """AnnotatorDep and ProjectDep in one sync call, with the same errors: for a route that runs its
    whole request in one threadpool trip (the annotation API's hot path)."""
    user = authenticate(request, session)
    if user is None:
        raise NotAuthenticated("please sign in")
    check_role(user, ANNOTATING)
    known = _project_read_with_user(request, project_id, user)
    return user, known or projects_service.get_for_user(session, project_id=project_id, user=user)
