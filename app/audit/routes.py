"""The audit log for admins: every project's events, or one project's, newest first; and as JSON."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from app.audit import service as audit_service
from app.audit.schemas import AuditPageOut
from app.web.deps import AdminDep, ProjectDep, SessionDep
from app.web.templating import render

router = APIRouter(tags=["audit"])
api = APIRouter(tags=["audit"])

ActionQuery = Annotated[str | None, Query(max_length=64, description="only this action, e.g. user.role")]
PageQuery = Annotated[int, Query(ge=1, le=1_000_000, description="1 is the newest")]
PerPageQuery = Annotated[int, Query(ge=1, le=500)]


def _page(request: Request, session: SessionDep, project_id: int | None, action: str | None,
          number: int, context: dict[str, object]) -> Response:
    result = audit_service.page(session, project_id=project_id, action=action or None, number=number)
    actions = audit_service.actions(session, project_id=project_id)
    return render(request, "audit/events.html",
                  {**context, "result": result, "actions": actions, "action": action or ""})


@router.get("/admin/audit", name="audit:global")
def global_log(request: Request, admin: AdminDep, session: SessionDep, action: ActionQuery = None,
               page: PageQuery = 1) -> Response:
    return _page(request, session, None, action, page, {"project": None})


@router.get("/projects/{project_id}/audit", name="audit:project")
def project_log(request: Request, project: ProjectDep, admin: AdminDep, session: SessionDep,
                action: ActionQuery = None, page: PageQuery = 1) -> Response:
    return _page(request, session, project.id, action, page, {"project": project})


@api.get("/audit-events", response_model=AuditPageOut, name="audit:api_events")
def api_events(admin: AdminDep, session: SessionDep, project_id: int | None = None,
               action: ActionQuery = None, page: PageQuery = 1, per_page: PerPageQuery = 50) -> AuditPageOut:
    """Every event (or one project's), newest first."""
    result = audit_service.page(session, project_id=project_id, action=action or None, number=page,
                                per_page=per_page)
    return AuditPageOut.of(result)


@api.get("/projects/{project_id}/audit-events", response_model=AuditPageOut, name="audit:api_project_events")
def api_project_events(project: ProjectDep, admin: AdminDep, session: SessionDep, action: ActionQuery = None,
                       page: PageQuery = 1, per_page: PerPageQuery = 50) -> AuditPageOut:
    result = audit_service.page(session, project_id=project.id, action=action or None, number=page,
                                per_page=per_page)
    return AuditPageOut.of(result)
