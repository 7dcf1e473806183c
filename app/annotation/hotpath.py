"""The annotation API's two hot routes, each run whole (sign-in, the work, the commit) in one threadpool
trip: the lean path first (app/annotation/lean.py), else the general path in the same transaction.

The routes (app/annotation/routes.py) are async and hand the request here; see docs/architecture.md,
"The annotation API's lean path".
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.accounts import service as accounts_service
from app.annotation import fastlane, lean
from app.annotation import service as annotation_service
from app.annotation.schemas import JudgementIn, JudgementOut
from app.db import unit_of_work, utcnow
from app.gold.schemas import GateOut
from app.guidelines.schemas import AcknowledgementRequired
from app.web import deps


def next_response(request: Request, *, project_id: int) -> Response:
    return _in_one_trip(request, lambda session: _next(request, session, project_id=project_id))


def judgement_response(request: Request, *, project_id: int, lease_id: int, body: JudgementIn) -> Response:
    return _in_one_trip(request, lambda session: _judgement(request, session, project_id=project_id,
                                                            lease_id=lease_id, body=body))


def _next(request: Request, session: Session, *, project_id: int) -> Response:
    now = utcnow()
    token = _bearer_digest(request)
    if token and (item := lean.next_item(session, token_hash=token, project_id=project_id, now=now)):
        return json_response(item)
    annotator, project = deps.annotator_in_project(request, session, project_id)  # the general path
    ready = annotation_service.readiness(session, project=project, annotator=annotator, now=now)
    if ready.pending is not None:
        return JSONResponse(AcknowledgementRequired.of(ready.pending).model_dump(mode="json"),
                            status_code=409)
    if (stop := ready.stop):
        return JSONResponse(GateOut(detail=stop.detail, status=stop.status, reason=stop.reason,
                                    calibration_attempt_id=stop.attempt_id).model_dump(), status_code=403)
    found = annotation_service.claim_item(session, project=project, annotator=annotator, now=now)
    return json_response(found) if found is not None else Response(status_code=204)


def _judgement(request: Request, session: Session, *, project_id: int, lease_id: int,
               body: JudgementIn) -> Response:
    now = utcnow()
    token = _bearer_digest(request)
    if token and (stored := lean.record(session, token_hash=token, project_id=project_id, lease_id=lease_id,
                                        form=body, now=now)):
        return json_response(stored, status_code=201)
    annotator, project = deps.annotator_in_project(request, session, project_id)  # the general path
    result = annotation_service.record(session, lease_id=lease_id, annotator=annotator, form=body,
                                       now=now, project_id=project.id)
    return json_response(JudgementOut.of(result.judgement), status_code=201 if result.created else 200)


def _in_one_trip(request: Request, handler: Callable[[Session], Response]) -> Response:
    """The whole request in one threadpool trip: sign-in, the work and the commit (the response leaves
    after the commit). The two hot API routes run so: FastAPI's dependencies would cost three trips and
    the ORM objects they load."""
    with unit_of_work(request.app.state.session_factory) as session:
        return handler(session)


def _bearer_digest(request: Request) -> str | None:
    """The digest of the request's bearer token (as deps.authenticate reads it), or None: no token, or
    the fast lane offered this request to the lean path already."""
    if fastlane.declined(request.state):
        return None
    token = accounts_service.bearer_token(request.headers.get("Authorization", ""))
    return accounts_service.token_digest(token) if token is not None else None


def json_response(model: BaseModel, status_code: int = 200) -> Response:
    """A model already built and checked by the service, serialized once (response_model only documents:
    FastAPI would validate it a second time)."""
    return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")
