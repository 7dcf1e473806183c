"""The annotation API's fast lane: bearer-token `next` and `judgement` requests answered by the lean path
(app/annotation/lean.py) in front of FastAPI's routing, dependencies and validation.

An ASGI middleware, inside the security headers and the concurrency door. It takes a request only when
all of these hold: GET /api/v1/projects/{id}/next or POST /api/v1/projects/{id}/leases/{id}/judgement,
an `Authorization: Bearer` header (such requests need no CSRF token: app/web/csrf.py), and a body that
JudgementIn accepts. Then the lean path runs in one threadpool trip with its own unit of work; when it
answers, so does the lane (200 with the item, 201 with the stored judgement). Everything else, and every
request the lean path declines, finds invalid (an `app.errors` error) or fails on (a database error; the
transaction rolled back, or nothing written if the connection died),
goes on to FastAPI untouched, with the body replayed and the scope marked so the route does not ask the
lean path again: the route gives the general path's answers and errors, and the OpenAPI schema still
describes both routes. Skipped: route matching through ~90 routes, dependency solving and the body's
second validation, about a sixth of the CPU of each request.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Any

import psycopg
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.accounts import service as accounts_service
from app.annotation import lean
from app.annotation.schemas import JudgementIn
from app.db import unit_of_work, utcnow
from app.errors import DomainError

NEXT = re.compile(r"/api/v1/projects/([0-9]{1,10})/next")
JUDGEMENT = re.compile(r"/api/v1/projects/([0-9]{1,10})/leases/([0-9]{1,10})/judgement")
DECLINED = "lean_declined"  # in the scope's state: the lean path declined this request already


class FastLane:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = _bearer(scope) if scope["type"] == "http" else None
        method, path = scope.get("method"), scope.get("path", "")
        ours = (method == "GET" and NEXT.fullmatch(path)) or (method == "POST" and JUDGEMENT.fullmatch(path))
        if token is None or not ours:
            await self.app(scope, receive, send)
            return
        body = await _body(receive) if method == "POST" else b""
        factory = scope["app"].state.session_factory
        answer = await run_in_threadpool(_answer, factory, token, path, body)
        if answer is None:
            scope.setdefault("state", {})[DECLINED] = True
            await self.app(scope, _replay(body, receive), send)
            return
        model, status = answer
        payload = model.model_dump_json().encode()
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})


def _answer(factory: sessionmaker[Session], token: str, path: str,
            body: bytes) -> tuple[BaseModel, int] | None:
    """The lean path's answer and its status, or None: the route's turn."""
    digest = accounts_service.token_digest(token)
    work: Callable[[Session], BaseModel | None]
    if (next_path := NEXT.fullmatch(path)) is not None:
        project_id, status = int(next_path[1]), 200
        work = partial(lean.next_item, token_hash=digest, project_id=project_id, now=utcnow())
    else:
        judgement_path = JUDGEMENT.fullmatch(path)
        assert judgement_path is not None
        try:
            form = JudgementIn.model_validate_json(body)
        except ValidationError:
            return None  # the route answers 422 with FastAPI's words
        project_id, lease_id, status = int(judgement_path[1]), int(judgement_path[2]), 201
        work = partial(lean.record, token_hash=digest, project_id=project_id, lease_id=lease_id, form=form,
                       now=utcnow())
    try:
        with unit_of_work(factory) as session:
            found = work(session)
    except (DomainError, psycopg.Error, DBAPIError):
        return None  # rolled back; the route tries again and answers (or says why, as the API does)
    return (found, status) if found is not None else None


def _bearer(scope: Scope) -> str | None:
    """The bearer token of the request (as deps.authenticate reads it), or None."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            return accounts_service.bearer_token(value.decode("latin-1"))
    return None


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the body already read, then whatever comes next (a disconnect)."""
    given = False

    async def replayed() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        message: Message = await receive()
        return message

    return replayed


def declined(state: Any) -> bool:
    """Whether the fast lane already offered this request to the lean path (the route skips it)."""
    return bool(getattr(state, DECLINED, False))
