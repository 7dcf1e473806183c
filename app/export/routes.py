"""Export page and JSONL downloads: thin routes over app.export.service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response, StreamingResponse

from app.accounts.models import User
from app.db import utcnow
from app.export import formats
from app.export import service as export_service
from app.export.schemas import ExportQuery
from app.projects.models import Project
from app.web.deps import ProjectDep, ResearcherDep, SessionDep
from app.web.templating import render

router = APIRouter(tags=["export"])
api = APIRouter(tags=["export"])


@router.get("/projects/{project_id}/export", name="export:page")
def export_page(request: Request, project: ProjectDep, user: ResearcherDep, session: SessionDep) -> Response:
    summary = export_service.export_summary(session, project_id=project.id)
    return render(request, "export/page.html", {"project": project, "summary": summary})


@router.get("/projects/{project_id}/export/download", name="export:download")
def download(request: Request, query: Annotated[ExportQuery, Query()], project: ProjectDep,
             user: ResearcherDep, session: SessionDep) -> StreamingResponse:
    return _attachment(request, query, project, user, session)


@api.get("/projects/{project_id}/export", name="export:api_download",
         response_class=StreamingResponse,
         responses={200: {"content": {formats.MEDIA_TYPE: {}}, "description": "JSONL, one object a line"}})
def api_download(request: Request, query: Annotated[ExportQuery, Query()], project: ProjectDep,
                 user: ResearcherDep, session: SessionDep) -> StreamingResponse:
    return _attachment(request, query, project, user, session)


def _attachment(request: Request, query: ExportQuery, project: Project, user: User,
                session: SessionDep) -> StreamingResponse:
    """Audit in the request's unit of work; the lines come from a session of the stream's own."""
    export_service.record_export(session, project=project, actor=user, fmt=query.format)
    lines = export_service.stream_export_with(request.app.state.session_factory, project_id=project.id,
                                              fmt=query.format, secret=request.app.state.settings.secret_key,
                                              block_chars=export_service.BLOCK_CHARS)
    filename = formats.download_name(project_id=project.id, fmt=query.format, now=utcnow())
    return StreamingResponse(lines, media_type=formats.MEDIA_TYPE,
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})
