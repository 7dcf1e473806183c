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
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        user = accounts_service.user_for_api_token(session, auth[7:].strip())
        if user is None:
            raise NotAuthenticated("the API token is unknown, revoked, or its user is disabled")
        request.state.auth = "token"
    else:
        raw = request.cookies.get(SESSION_COOKIE)
        user = accounts_service.user_for_session(session, raw, utcnow()) if raw else None
        request.state.auth = "cookie" if user else None
    if user is not None:
        # A plain copy for templates: error pages render after the unit of work has rolled back.
        request.state.viewer = Viewer(user.id, user.username, user.display_name, user.role)
    return user


# The checks below touch no database, so they are async: a sync dependency costs a threadpool trip.
async def current_user(user: Annotated[User | None, Depends(optional_user)]) -> User:
    if user is None:
        raise NotAuthenticated("please sign in")
    return user


CurrentUser = Annotated[User, Depends(current_user)]
OptionalUser = Annotated[User | None, Depends(optional_user)]


def _require(*roles: Role):  # type: ignore[no-untyped-def]
    async def dependency(user: CurrentUser) -> User:
        if user.role not in roles:
            raise PermissionDenied("your role does not allow this page")
        return user

    return dependency


AdminDep = Annotated[User, Depends(_require(Role.ADMIN))]
ResearcherDep = Annotated[User, Depends(_require(Role.ADMIN, Role.RESEARCHER))]
AnnotatorDep = Annotated[User, Depends(_require(Role.ADMIN, Role.ANNOTATOR))]


def project_for_user(project_id: int, user: CurrentUser, session: SessionDep) -> Project:
    """The project, if the user may see it: admins see all, others only where they are members."""
    return projects_service.get_for_user(session, project_id=project_id, user=user)


ProjectDep = Annotated[Project, Depends(project_for_user)]
