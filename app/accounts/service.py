"""Accounts: users and roles, password hashing, browser sessions and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import ColumnElement, Select, and_, bindparam, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.accounts.models import ApiToken, AuthSession, Role, User
from app.audit import service as audit_service
from app.errors import Conflict, Invalid, NotAuthenticated, NotFound

MIN_PASSWORD_LENGTH = 8
_hasher = PasswordHasher()
# Verifying against this keeps a login for an unknown name as slow as one with a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"the password needs at least {MIN_PASSWORD_LENGTH} characters", field="password")
    return _hasher.hash(password)


def create_user(
    session: Session, *, username: str, password: str, role: Role, display_name: str = ""
) -> User:
    username = username.strip()
    if not username or len(username) > 64:
        raise Invalid("a username has 1 to 64 characters", field="username")
    user = User(
        username=username,
        display_name=display_name.strip() or username,
        password_hash=hash_password(password),
        role=Role(role),
    )
    try:
        with session.begin_nested():  # a taken name rolls back only this savepoint
            session.add(user)
            session.flush()
    except IntegrityError as exc:
        raise Conflict(f"the username {username!r} is taken", field="username") from exc
    return user


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("no such user")
    return user


def get_user_by_name(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def authenticate(session: Session, *, username: str, password: str) -> User:
    user = get_user_by_name(session, username.strip())
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        user = None
    if user is None or not user.is_active:
        raise NotAuthenticated("wrong username or password", field="password")
    return user


def start_session(session: Session, *, user: User, now: datetime, hours: int,
                  idle_minutes: int | None = None) -> str:
    """Create a browser session; returns the raw token for the cookie (only its digest is stored).

    `expires_at` is the idle deadline (pushed forward by touch_session while the session is used), never
    later than `hours` after the start.
    """
    raw = secrets.token_urlsafe(32)
    life = timedelta(hours=hours)
    idle = min(life, timedelta(minutes=idle_minutes)) if idle_minutes else life
    session.add(AuthSession(token_hash=token_digest(raw), user_id=user.id, created_at=now,
                            expires_at=now + idle))
    session.flush()
    return raw


def touch_session(session: Session, raw_token: str, *, now: datetime, hours: int, idle_minutes: int) -> None:
    """Push a used session's idle deadline forward, capped at its lifetime. Writes only when less than
    half the idle window is left, so a busy session costs one write per half window, not one a request."""
    idle = timedelta(minutes=idle_minutes)
    session.execute(
        update(AuthSession)
        .where(AuthSession.token_hash == token_digest(raw_token), AuthSession.expires_at < now + idle / 2)
        .values(expires_at=func.least(now + idle, AuthSession.created_at + timedelta(hours=hours)))
    )


def end_session(session: Session, raw_token: str) -> None:
    session.execute(delete(AuthSession).where(AuthSession.token_hash == token_digest(raw_token)))


@dataclass(frozen=True)
class UserLookup:
    """A query for one user: a statement built once, with bind parameters, and this request's values.

    Every request signs in, and building the statement cost more CPU than running it; callers may add
    columns to `statement` (built once too), with parameters of their own beside `params`.
    """

    statement: Select[User]
    params: dict[str, Any]

    def bound(self) -> Select[User]:
        return self.statement.params(self.params)


_SESSION_USER = (
    select(User).join(AuthSession, AuthSession.user_id == User.id)
    .where(AuthSession.token_hash == bindparam("token_hash"), AuthSession.expires_at > bindparam("now"),
           User.is_active.is_(True))
)
def api_token_holder() -> ColumnElement[bool]:
    """SQL, over api_tokens joined to users: the token (`token_hash`) is unrevoked and its user active."""
    return and_(ApiToken.token_hash == bindparam("token_hash"), ApiToken.revoked_at.is_(None),
                User.is_active.is_(True))


_API_TOKEN_USER = select(User).join(ApiToken, ApiToken.user_id == User.id).where(api_token_holder())


def bearer_token(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value, or None for any other value."""
    return authorization[7:].strip() if authorization.lower().startswith("bearer ") else None


def session_lookup(raw_token: str, now: datetime) -> UserLookup:
    """The active user of a live browser session."""
    return UserLookup(_SESSION_USER, {"token_hash": token_digest(raw_token), "now": now})


def api_token_lookup(raw_token: str) -> UserLookup:
    """The active user of an unrevoked API token."""
    return UserLookup(_API_TOKEN_USER, {"token_hash": token_digest(raw_token)})


def session_user(raw_token: str, now: datetime) -> Select[User]:
    """The query for the active user of a live browser session."""
    return session_lookup(raw_token, now).bound()


def api_token_user(raw_token: str) -> Select[User]:
    """The query for the active user of an unrevoked API token."""
    return api_token_lookup(raw_token).bound()


def user_for_session(session: Session, raw_token: str, now: datetime) -> User | None:
    return session.scalar(session_user(raw_token, now))


def user_for_api_token(session: Session, raw_token: str) -> User | None:
    return session.scalar(api_token_user(raw_token))


def create_api_token(session: Session, *, user: User, name: str) -> tuple[ApiToken, str]:
    """Returns the row and the raw token, which is shown once and never stored."""
    name = name.strip() or "token"
    raw = "ps_" + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name[:120], prefix=raw[:10], token_hash=token_digest(raw))
    session.add(token)
    session.flush()
    return token, raw


def list_api_tokens(session: Session, user: User) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)))


def revoke_api_token(session: Session, *, user: User, token_id: int, now: datetime) -> None:
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise NotFound("no such token")
    token.revoked_at = token.revoked_at or now
    session.flush()


def set_active(session: Session, *, user_id: int, active: bool) -> User:
    """Disabling also ends every browser session, so it takes effect on the next request."""
    user = get_user(session, user_id)
    user.is_active = active
    if not active:
        session.execute(delete(AuthSession).where(AuthSession.user_id == user.id))
    session.flush()
    return user


def set_role(session: Session, *, user_id: int, role: Role) -> User:
    user = get_user(session, user_id)
    user.role = Role(role)
    session.flush()
    return user


def change_role(session: Session, *, user_id: int, role: Role, actor: User) -> User:
    """An admin gives a user another role (audit "user.role", before and after). An admin cannot change
    their own role, so the last admin cannot lock everyone out. Setting the same role changes nothing."""
    user = get_user(session, user_id)
    if user.id == actor.id:
        raise Conflict("you cannot change your own role: ask another admin", field="role")
    before = Role(user.role)
    if before != role:
        set_role(session, user_id=user.id, role=role)
        audit_service.record(session, actor_id=actor.id, action="user.role", target=user.username,
                             before={"role": before.value}, after={"role": Role(role).value})
    return user
