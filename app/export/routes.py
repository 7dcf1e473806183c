"""Export page (a form with every option and a live preview), downloads and the API: thin routes over
app.export.service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import Response, StreamingResponse

from app.accounts.models import User
from app.db import utcnow
from app.export import formats
from app.export import service as export_service
from app.export.aggregate import TiePolicy
from app.export.schemas import FLAGS, Aggregation, DownloadOptions, ExportOptions
from app.projects.models import Project
from app.web.deps import ProjectDep, ResearcherDep, SessionDep
from app.web.templating import render

router = APIRouter(tags=["export"])
api = APIRouter(tags=["export"])


@router.get("/projects/{project_id}/export", name="export:page")
def export_page(request: Request, project: ProjectDep, user: ResearcherDep, session: SessionDep) -> Response:
    options = DownloadOptions()
    plan = export_service.plan_export(session, project_id=project.id, options=options)
    return render(request, "export/page.html", {
        "project": project, "options": options, "preview": export_service.preview(session, plan),
        "summary": export_service.export_summary(session, project_id=project.id),
        "formats": list(formats.ExportFormat), "styles": list(formats.Style),
        "aggregations": list(Aggregation), "policies": list(TiePolicy), "flags": FLAGS})


@router.get("/projects/{project_id}/export/preview", name="export:preview")
def preview(request: Request, options: Annotated[ExportOptions, Query()], project: ProjectDep,
            user: ResearcherDep, session: SessionDep) -> Response:
    plan = export_service.plan_export(session, project_id=project.id, options=options)
    return render(request, "export/_preview.html",
                  {"project": project, "preview": export_service.preview(session, plan)})


@router.post("/projects/{project_id}/export", name="export:download")
def download(request: Request, form: Annotated[DownloadOptions, Form()], project: ProjectDep,
             user: ResearcherDep, session: SessionDep) -> StreamingResponse:
    return _attachment(request, form, project, user, session, channel="browser")


@api.get("/projects/{project_id}/export", name="export:api_download",
         response_class=StreamingResponse,
         responses={200: {"content": {"application/zip": {}, formats.MEDIA_TYPE: {}},
                          "description": "a zip: the JSONL and its dataset card; package=jsonl: the JSONL"}})
def api_download(request: Request, query: Annotated[DownloadOptions, Query()], project: ProjectDep,
                 user: ResearcherDep, session: SessionDep) -> StreamingResponse:
    return _attachment(request, query, project, user, session, channel="api")


def _attachment(request: Request, options: DownloadOptions, project: Project, user: User,
                session: SessionDep, *, channel: str) -> StreamingResponse:
    """Checked and audited in the request's unit of work; the lines come from the stream's own session."""
    plan = export_service.plan_export(session, project_id=project.id, options=options)
    export_service.record_export(session, plan=plan, actor=user, channel=channel)
    run = export_service.start(plan, factory=request.app.state.session_factory,
                               secret=request.app.state.settings.secret_key, now=utcnow())
    out = export_service.download(run, options)
    return StreamingResponse(out.body, media_type=out.media_type,
                             headers={"Content-Disposition": f'attachment; filename="{out.filename}"'})
