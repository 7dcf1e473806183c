"""CSRF for cookie-authenticated requests.

The token is an HMAC of the raw session cookie, so a forged cross-site request (which cannot read the
cookie) cannot know it, and no storage is needed. Anonymous forms (login) use a random `ps_anon` cookie
the same way. Requests that carry `Authorization: Bearer` are exempt: browsers never attach that header
on their own; so are API requests without a session cookie (nothing ambient to abuse: they get 401).
API requests authenticated by the session cookie are not exempt. Installed as an app-wide dependency,
so no state-changing route can forget it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request

from app.accounts import service as accounts_service
from app.errors import PermissionDenied

SESSION_COOKIE = "ps_session"
ANON_COOKIE = "ps_anon"
FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def token_for(cookie_value: str) -> str:
    return hmac.new(cookie_value.encode(), b"prefstudio-csrf", hashlib.sha256).hexdigest()


def new_anon_cookie() -> str:
    return secrets.token_urlsafe(24)


def request_token(request: Request) -> str:
    """The CSRF token the current page should embed (empty if the browser has no cookie yet)."""
    cookie = (
        request.cookies.get(SESSION_COOKIE)
        or getattr(request.state, "anon_cookie", None)
        or request.cookies.get(ANON_COOKIE)
    )
    return token_for(cookie) if cookie else ""


async def require_csrf(request: Request) -> None:
    if request.method in SAFE_METHODS:
        return
    if accounts_service.bearer_token(request.headers.get("Authorization", "")) is not None:
        return
    if request.url.path.startswith("/api/") and SESSION_COOKIE not in request.cookies:
        return  # no ambient credential to abuse: the route's sign-in check answers 401
    cookie = request.cookies.get(SESSION_COOKIE) or request.cookies.get(ANON_COOKIE)
    sent = request.headers.get(HEADER)
    if not sent and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(FIELD)
        sent = value if isinstance(value, str) else None
    if not cookie or not sent or not hmac.compare_digest(sent, token_for(cookie)):
        raise PermissionDenied(
            "the form's security token is missing or stale: reload the page and retry", field=FIELD
        )
