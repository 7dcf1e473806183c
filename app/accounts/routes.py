from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from app.accounts import service as accounts_service
from app.accounts.models import Role
from app.accounts.schemas import (
    LoginForm,
    NewTokenOut,
    TokenCreate,
    UserActive,
    UserCreate,
    UserOut,
    UserRole,
)
from app.accounts.throttle import LoginThrottle
from app.audit import service as audit_service
from app.db import utcnow
from app.errors import NotAuthenticated, TooManyAttempts
from app.web import htmx
from app.web.csrf import ANON_COOKIE, SESSION_COOKIE, new_anon_cookie
from app.web.deps import AdminDep, CurrentUser, OptionalUser, ResearcherDep, SessionDep
from app.web.security import secure_cookies
from app.web.templating import render

router = APIRouter(tags=["accounts"])
api = APIRouter(tags=["accounts"])


def _safe_next(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


@router.get("/", name="home")
def home(request: Request, user: OptionalUser) -> Response:
    return htmx.redirect(request, str(request.url_for("projects:list")) if user else "/login")


@router.get("/login", name="accounts:login_form")
def login_form(request: Request, next: str = "/") -> Response:
    anon = request.cookies.get(ANON_COOKIE)
    if anon is None:
        request.state.anon_cookie = anon = new_anon_cookie()
    response = render(request, "accounts/login.html", {"next": _safe_next(next), "username": "", "error": ""})
    response.set_cookie(
        ANON_COOKIE, anon, httponly=True, samesite="lax", secure=secure_cookies(request)
    )
    return response


@router.post("/login", name="accounts:login")
def login(request: Request, form: Annotated[LoginForm, Form()], session: SessionDep) -> Response:
    throttle: LoginThrottle = request.app.state.login_throttle
    address = request.client.host if request.client else ""
    context = {"next": _safe_next(form.next), "username": form.username}
    try:
        throttle.check(username=form.username, address=address)
        user = accounts_service.authenticate(session, username=form.username, password=form.password)
    except TooManyAttempts as exc:
        return render(request, "accounts/login.html", {**context, "error": exc.message}, status_code=429)
    except NotAuthenticated as exc:
        throttle.failed(username=form.username, address=address)
        return render(request, "accounts/login.html", {**context, "error": exc.message}, status_code=401)
    throttle.succeeded(username=form.username)
    settings = request.app.state.settings
    raw = accounts_service.start_session(session, user=user, now=utcnow(), hours=settings.session_hours,
                                         idle_minutes=settings.session_idle_minutes)
    response = htmx.redirect(request, _safe_next(form.next))
    response.set_cookie(
        SESSION_COOKIE,
        raw,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
        max_age=settings.session_hours * 3600,
    )
    return response


@router.post("/logout", name="accounts:logout")
def logout(request: Request, session: SessionDep) -> Response:
    raw = request.cookies.get(SESSION_COOKIE)
    if raw:
        accounts_service.end_session(session, raw)
    response = htmx.redirect(request, "/login")
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/account", name="accounts:account")
def account(request: Request, user: CurrentUser, session: SessionDep) -> Response:
    tokens = accounts_service.list_api_tokens(session, user)
    return render(request, "accounts/account.html", {"tokens": tokens, "new_token": None})


@router.post("/account/tokens", name="accounts:create_token")
def create_token(
    request: Request, form: Annotated[TokenCreate, Form()], user: ResearcherDep, session: SessionDep
) -> Response:
    _, raw = accounts_service.create_api_token(session, user=user, name=form.name)
    tokens = accounts_service.list_api_tokens(session, user)
    return render(request, "accounts/account.html", {"tokens": tokens, "new_token": raw}, status_code=201)


@router.post("/account/tokens/{token_id}/revoke", name="accounts:revoke_token")
def revoke_token(request: Request, token_id: int, user: CurrentUser, session: SessionDep) -> Response:
    accounts_service.revoke_api_token(session, user=user, token_id=token_id, now=utcnow())
    return htmx.redirect(request, str(request.url_for("accounts:account")))


@router.get("/admin/users", name="accounts:users")
def users(request: Request, admin: AdminDep, session: SessionDep) -> Response:
    context = {"users": accounts_service.list_users(session), "roles": list(Role), "error": ""}
    return render(request, "accounts/users.html", context)


@router.post("/admin/users", name="accounts:create_user")
def create_user(
    request: Request, form: Annotated[UserCreate, Form()], admin: AdminDep, session: SessionDep
) -> Response:
    user = accounts_service.create_user(
        session,
        username=form.username,
        password=form.password,
        role=form.role,
        display_name=form.display_name,
    )
    audit_service.record(
        session, actor_id=admin.id, action="user.create", target=user.username, after={"role": user.role}
    )
    return htmx.redirect(request, str(request.url_for("accounts:users")))


@router.post("/admin/users/{user_id}/active", name="accounts:set_active")
def set_active(
    request: Request, user_id: int, form: Annotated[UserActive, Form()], admin: AdminDep, session: SessionDep
) -> Response:
    was_active = accounts_service.get_user(session, user_id).is_active
    user = accounts_service.set_active(session, user_id=user_id, active=form.active)
    audit_service.record(
        session,
        actor_id=admin.id,
        action="user.enable" if form.active else "user.disable",
        target=user.username,
        before={"active": was_active},
        after={"active": form.active},
    )
    return htmx.redirect(request, str(request.url_for("accounts:users")))


@router.post("/admin/users/{user_id}/role", name="accounts:set_role")
def set_role(
    request: Request, user_id: int, form: Annotated[UserRole, Form()], admin: AdminDep, session: SessionDep
) -> Response:
    accounts_service.change_role(session, user_id=user_id, role=form.role, actor=admin)
    return htmx.redirect(request, str(request.url_for("accounts:users")))


@api.get("/me", response_model=UserOut)
def me(user: CurrentUser) -> UserOut:
    return UserOut.model_validate(user)


@api.get("/users", response_model=list[UserOut])
def api_users(admin: AdminDep, session: SessionDep) -> list[UserOut]:
    return [UserOut.model_validate(u) for u in accounts_service.list_users(session)]


@api.post("/users", response_model=UserOut, status_code=201)
def api_create_user(body: UserCreate, admin: AdminDep, session: SessionDep) -> UserOut:
    user = accounts_service.create_user(
        session,
        username=body.username,
        password=body.password,
        role=body.role,
        display_name=body.display_name,
    )
    audit_service.record(
        session, actor_id=admin.id, action="user.create", target=user.username, after={"role": user.role}
    )
    return UserOut.model_validate(user)


@api.post("/users/{user_id}/role", response_model=UserOut)
def api_set_role(user_id: int, body: UserRole, admin: AdminDep, session: SessionDep) -> UserOut:
    """Give a user another role (audited as "user.role"); 409 for your own role."""
    return UserOut.model_validate(accounts_service.change_role(session, user_id=user_id, role=body.role,
                                                               actor=admin))


@api.post("/tokens", response_model=NewTokenOut, status_code=201)
def api_create_token(body: TokenCreate, user: ResearcherDep, session: SessionDep) -> NewTokenOut:
    token, raw = accounts_service.create_api_token(session, user=user, name=body.name)
    return NewTokenOut(
        id=token.id,
        name=token.name,
        prefix=token.prefix,
        created_at=token.created_at,
        revoked_at=None,
        token=raw,
    )
