"""Guideline pages: read, edit with a live preview (htmx; a Preview button without JS), publish, diff, and
the acknowledgement the workspace asks for; and the same as JSON under /api/v1."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import Response

from app.accounts.models import Role, User
from app.db import utcnow
from app.errors import Invalid, NotFound
from app.guidelines import service as guidelines_service
from app.guidelines.models import GuidelineVersion
from app.guidelines.schemas import (
    AcknowledgementOut,
    DiffMode,
    DiffOut,
    DraftCreate,
    DraftForm,
    DraftUpdate,
    PendingOut,
    PublishIn,
    VersionOut,
    VersionSummaryOut,
    diff_out,
)
from app.projects.models import Project
from app.web import htmx
from app.web.deps import AdminDep, CurrentUser, ProjectDep, SessionDep
from app.web.templating import render, render_page_or_fragment

router = APIRouter(tags=["guidelines"])
api = APIRouter(tags=["guidelines"])

DraftFormDep = Annotated[DraftForm, Form()]


def _url(request: Request, name: str, **params: Any) -> str:
    return str(request.url_for(name, **params))


def _editor(request: Request, project: Project, version: GuidelineVersion, form: DraftForm, *,
            error: Invalid | None = None, saved: bool = False) -> Response:
    context = {"project": project, "version": version, "form": form, "error": error, "saved": saved}
    return render(request, "guidelines/edit.html", context, status_code=422 if error else 200)


@router.get("/projects/{project_id}/guidelines", name="guidelines:index")
def index(request: Request, project: ProjectDep, user: CurrentUser, session: SessionDep) -> Response:
    versions = guidelines_service.list_versions(session, project_id=project.id, viewer=user)
    active = next((v for v in versions if not v.is_draft), None)
    draft = next((v for v in versions if v.is_draft), None)
    return render(request, "guidelines/index.html",
                  {"project": project, "versions": versions, "active": active, "draft": draft})


@router.get("/projects/{project_id}/guidelines/panel", name="guidelines:panel")
def panel(request: Request, project: ProjectDep, session: SessionDep) -> Response:
    """The active version as a fragment, for the workspace's overlay (key g)."""
    active = guidelines_service.active_version(session, project_id=project.id)
    return render(request, "guidelines/_panel.html", {"project": project, "active": active})


@router.get("/projects/{project_id}/guidelines/versions/{version_id}", name="guidelines:version")
def version_page(request: Request, version_id: int, project: ProjectDep, user: CurrentUser,
                 session: SessionDep) -> Response:
    version = guidelines_service.get_version(session, project_id=project.id, version_id=version_id,
                                             viewer=user)
    versions = guidelines_service.list_versions(session, project_id=project.id, viewer=user)
    return render(request, "guidelines/version.html",
                  {"project": project, "version": version, "versions": versions})


@router.post("/projects/{project_id}/guidelines/drafts", name="guidelines:create_draft")
def create_draft(request: Request, project: ProjectDep, admin: AdminDep, session: SessionDep) -> Response:
    """Opens the project's draft (a copy of the active version when there is none yet)."""
    version = guidelines_service.open_draft(session, project_id=project.id, author=admin, now=utcnow())
    return htmx.redirect(request, _url(request, "guidelines:edit", project_id=project.id,
                                       version_id=version.id))


@router.get("/projects/{project_id}/guidelines/versions/{version_id}/edit", name="guidelines:edit")
def edit(request: Request, version_id: int, project: ProjectDep, admin: AdminDep, session: SessionDep,
         saved: bool = False) -> Response:
    version = guidelines_service.get_version(session, project_id=project.id, version_id=version_id,
                                             viewer=admin)
    if not version.is_draft:
        return htmx.redirect(request, _url(request, "guidelines:version", project_id=project.id,
                                           version_id=version.id))
    return _editor(request, project, version, DraftForm(body=version.body), saved=saved)


@router.post("/projects/{project_id}/guidelines/versions/{version_id}", name="guidelines:save")
def save(request: Request, version_id: int, form: DraftFormDep, project: ProjectDep, admin: AdminDep,
         session: SessionDep) -> Response:
    guidelines_service.save_draft(session, project_id=project.id, version_id=version_id, body=form.body,
                                  actor=admin, now=utcnow())
    url = _url(request, "guidelines:edit", project_id=project.id, version_id=version_id)
    return htmx.redirect(request, url + "?saved=true")


@router.post("/projects/{project_id}/guidelines/versions/{version_id}/preview", name="guidelines:preview")
def preview(request: Request, version_id: int, form: DraftFormDep, project: ProjectDep, admin: AdminDep,
            session: SessionDep) -> Response:
    """htmx: the sanitized render of the text as typed. Without JS: the editor again, text kept, preview
    shown. Nothing is saved either way."""
    version = guidelines_service.get_version(session, project_id=project.id, version_id=version_id,
                                             viewer=admin)
    context = {"project": project, "version": version, "form": form, "error": None, "saved": False}
    return render_page_or_fragment(request, page="guidelines/edit.html", fragment="guidelines/_preview.html",
                                   context=context)


@router.post("/projects/{project_id}/guidelines/versions/{version_id}/publish", name="guidelines:publish")
def publish(request: Request, version_id: int, form: DraftFormDep, project: ProjectDep, admin: AdminDep,
            session: SessionDep) -> Response:
    try:
        version = guidelines_service.publish(
            session, project_id=project.id, version_id=version_id, actor=admin, summary=form.summary,
            requires_recalibration=form.requires_recalibration, body=form.body, now=utcnow())
    except Invalid as exc:  # nothing was changed: the editor again, with the text and the problem
        draft = guidelines_service.get_version(session, project_id=project.id, version_id=version_id,
                                               viewer=admin)
        return _editor(request, project, draft, form, error=exc)
    return htmx.redirect(request, _url(request, "guidelines:version", project_id=project.id,
                                       version_id=version.id))


@router.get("/projects/{project_id}/guidelines/diff", name="guidelines:diff")
def compare(request: Request, project: ProjectDep, user: CurrentUser, session: SessionDep,
            old: Annotated[int, Query(description="the older version's id")],
            new: Annotated[int, Query(description="the newer version's id")],
            mode: DiffMode = "unified") -> Response:
    a, b = guidelines_service.compare(session, project_id=project.id, old_id=old, new_id=new, viewer=user)
    versions = guidelines_service.list_versions(session, project_id=project.id, viewer=user)
    return render(request, "guidelines/diff.html",
                  {"project": project, "diff": diff_out(a, b, mode), "versions": versions})


def _after_acknowledging(request: Request, project: Project, user: User) -> str:
    if user.role == Role.RESEARCHER:  # researchers do not annotate
        return _url(request, "guidelines:index", project_id=project.id)
    return _url(request, "annotation:workspace", project_id=project.id)


@router.get("/projects/{project_id}/guidelines/acknowledge", name="guidelines:acknowledge_form")
def acknowledge_form(request: Request, project: ProjectDep, user: CurrentUser,
                     session: SessionDep) -> Response:
    """What the workspace sends annotators to when a version waits for them: read it, then confirm."""
    pending = guidelines_service.pending_acknowledgement(session, project_id=project.id, user_id=user.id)
    if pending is None:
        return htmx.redirect(request, _after_acknowledging(request, project, user))
    since = guidelines_service.version_in_force(session, project_id=project.id, user_id=user.id)
    return render(request, "guidelines/acknowledge.html",
                  {"project": project, "version": pending, "since": since})


@router.post("/projects/{project_id}/guidelines/versions/{version_id}/acknowledge",
             name="guidelines:acknowledge")
def acknowledge(request: Request, version_id: int, project: ProjectDep, user: CurrentUser,
                session: SessionDep) -> Response:
    guidelines_service.acknowledge(session, project_id=project.id, version_id=version_id, user=user,
                                   now=utcnow())
    return htmx.redirect(request, _after_acknowledging(request, project, user))


@api.get("/projects/{project_id}/guidelines/versions", response_model=list[VersionSummaryOut],
         name="guidelines:api_versions")
def api_versions(project: ProjectDep, user: CurrentUser, session: SessionDep) -> list[VersionSummaryOut]:
    """Newest first; the draft (admins only) on top."""
    versions = guidelines_service.list_versions(session, project_id=project.id, viewer=user)
    return [VersionSummaryOut.model_validate(v) for v in versions]


@api.post("/projects/{project_id}/guidelines/versions", response_model=VersionOut, status_code=201,
          name="guidelines:api_create_draft", responses={409: {"description": "the project has a draft"}})
def api_create_draft(body: DraftCreate, project: ProjectDep, admin: AdminDep,
                     session: SessionDep) -> VersionOut:
    version = guidelines_service.create_draft(session, project_id=project.id, author=admin, body=body.body,
                                              now=utcnow())
    return VersionOut.model_validate(version)


@api.get("/projects/{project_id}/guidelines/active", response_model=VersionOut,
         name="guidelines:api_active", responses={404: {"description": "nothing published yet"}})
def api_active(project: ProjectDep, session: SessionDep) -> VersionOut:
    active = guidelines_service.active_version(session, project_id=project.id)
    if active is None:
        raise NotFound("this project has no published guidelines yet")
    return VersionOut.model_validate(active)


@api.get("/projects/{project_id}/guidelines/pending", response_model=PendingOut,
         name="guidelines:api_pending")
def api_pending(project: ProjectDep, user: CurrentUser, session: SessionDep) -> PendingOut:
    """The version the caller must acknowledge before their next item (null: none)."""
    pending = guidelines_service.pending_acknowledgement(session, project_id=project.id, user_id=user.id)
    return PendingOut(pending=VersionSummaryOut.model_validate(pending) if pending is not None else None)


@api.get("/projects/{project_id}/guidelines/diff", response_model=DiffOut, name="guidelines:api_diff")
def api_diff(project: ProjectDep, user: CurrentUser, session: SessionDep,
             old: Annotated[int, Query(description="the older version's id")],
             new: Annotated[int, Query(description="the newer version's id")],
             mode: DiffMode = "unified") -> DiffOut:
    a, b = guidelines_service.compare(session, project_id=project.id, old_id=old, new_id=new, viewer=user)
    return diff_out(a, b, mode)


@api.get("/projects/{project_id}/guidelines/versions/{version_id}", response_model=VersionOut,
         name="guidelines:api_version")
def api_version(version_id: int, project: ProjectDep, user: CurrentUser, session: SessionDep) -> VersionOut:
    version = guidelines_service.get_version(session, project_id=project.id, version_id=version_id,
                                             viewer=user)
    return VersionOut.model_validate(version)


@api.put("/projects/{project_id}/guidelines/versions/{version_id}", response_model=VersionOut,
         name="guidelines:api_update_draft", responses={409: {"description": "the version is published"}})
def api_update_draft(version_id: int, body: DraftUpdate, project: ProjectDep, admin: AdminDep,
                     session: SessionDep) -> VersionOut:
    version = guidelines_service.save_draft(session, project_id=project.id, version_id=version_id,
                                            body=body.body, actor=admin, now=utcnow())
    return VersionOut.model_validate(version)


@api.post("/projects/{project_id}/guidelines/versions/{version_id}/publish", response_model=VersionOut,
          name="guidelines:api_publish", responses={409: {"description": "already published"}})
def api_publish(version_id: int, body: PublishIn, project: ProjectDep, admin: AdminDep,
                session: SessionDep) -> VersionOut:
    version = guidelines_service.publish(
        session, project_id=project.id, version_id=version_id, actor=admin, summary=body.summary,
        requires_recalibration=body.requires_recalibration, body=body.body, now=utcnow())
    return VersionOut.model_validate(version)


@api.post("/projects/{project_id}/guidelines/versions/{version_id}/acknowledge",
          response_model=AcknowledgementOut, name="guidelines:api_acknowledge")
def api_acknowledge(version_id: int, project: ProjectDep, user: CurrentUser,
                    session: SessionDep) -> AcknowledgementOut:
    """I have read this version. Idempotent: a repeat keeps the first time."""
    ack = guidelines_service.acknowledge(session, project_id=project.id, version_id=version_id, user=user,
                                         now=utcnow())
    return AcknowledgementOut.model_validate(ack)
