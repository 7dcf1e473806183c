"""The annotator workspace (browser, htmx-enhanced, works without JS) and the annotation API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from app.accounts.models import User
from app.annotation import edits, hotpath
from app.annotation import service as annotation_service
from app.annotation.schemas import EditIn, EditOut, ItemOut, JudgementIn, JudgementOut, WorkspaceForm
from app.db import utcnow
from app.errors import Conflict, Invalid
from app.gold import service as gold_service
from app.gold.schemas import GateOut
from app.guidelines.schemas import AcknowledgementRequired
from app.projects.models import Project
from app.web import htmx
from app.web.deps import AnnotatorDep, ProjectDep, SessionDep
from app.web.templating import render_page_or_fragment

router = APIRouter(tags=["annotation"])
api = APIRouter(tags=["annotation"])

PAGE = "annotation/workspace.html"
FRAGMENT = "annotation/_workspace.html"


async def workspace_form(request: Request) -> WorkspaceForm:
    """The submitted workspace form. Async only to await the form parser (Starlette caches the parsed
    form, which the CSRF check may already have read); no database work happens here, and the routes
    that use it stay sync, so their queries run in the threadpool, off the event loop."""
    form = await request.form()
    return WorkspaceForm.from_pairs(form.multi_items())


WorkspaceFormDep = Annotated[WorkspaceForm, Depends(workspace_form)]


def _show(request: Request, project: Project, workspace: annotation_service.Workspace, *,
          kept: WorkspaceForm | None = None, error: Invalid | None = None, notice: str = "",
          status_code: int = 200) -> Response:
    context = {"project": project, "workspace": workspace, "item": workspace.item,
               "kept": kept or WorkspaceForm(), "error": error, "notice": notice}
    return render_page_or_fragment(request, page=PAGE, fragment=FRAGMENT, context=context,
                                   status_code=status_code)


def _stopped(request: Request, project: Project, stop: gold_service.Gate) -> Response:
    """Calibration due: on to the attempt. Paused or blocked: the reason, instead of an item."""
    if stop.attempt_id is not None:
        return htmx.redirect(request, str(request.url_for("gold:calibration", project_id=project.id,
                                                          attempt_id=stop.attempt_id)))
    return render_page_or_fragment(request, page="gold/stopped.html", fragment="gold/_stopped.html",
                                   context={"project": project, "stop": stop}, status_code=403)


def _next(request: Request, session: SessionDep, project: Project, annotator: User,
          notice: str = "") -> Response:
    """htmx: the next item's fragment swaps in. Without JS (or when the workspace has a gate to show,
    such as new guidelines to acknowledge): back to the workspace (303)."""
    if not notice and not htmx.is_htmx(request):
        return htmx.redirect(request, str(request.url_for("annotation:workspace", project_id=project.id)))
    ready = annotation_service.readiness(session, project=project, annotator=annotator, now=utcnow())
    if ready.pending is not None:
        return htmx.redirect(request, str(request.url_for("annotation:workspace", project_id=project.id)))
    if ready.stop is not None:
        return _stopped(request, project, ready.stop)
    workspace = annotation_service.next_item(session, project=project, annotator=annotator, now=utcnow())
    return _show(request, project, workspace, notice=notice)


@router.get("/projects/{project_id}/annotate", name="annotation:workspace")
def workspace(request: Request, project: ProjectDep, annotator: AnnotatorDep,
              session: SessionDep) -> Response:
    ready = annotation_service.readiness(session, project=project, annotator=annotator, now=utcnow())
    if ready.pending is not None:
        return htmx.redirect(request, str(request.url_for("guidelines:acknowledge_form",
                                                          project_id=project.id)))
    if ready.stop is not None:
        return _stopped(request, project, ready.stop)
    current = annotation_service.next_item(session, project=project, annotator=annotator, now=utcnow())
    return _show(request, project, current)


@router.post("/projects/{project_id}/leases/{lease_id}", name="annotation:submit")
def submit(request: Request, lease_id: int, raw: WorkspaceFormDep, project: ProjectDep,
           annotator: AnnotatorDep, session: SessionDep) -> Response:
    try:
        annotation_service.submit(session, lease_id=lease_id, annotator=annotator, form=raw.to_judgement(),
                                  now=utcnow(), project_id=project.id)
    except Invalid as exc:
        same = annotation_service.lease_workspace(session, lease_id=lease_id, annotator=annotator,
                                                  project=project)
        return _show(request, project, same, kept=raw, error=exc, status_code=422)
    except Conflict as exc:
        return _next(request, session, project, annotator, notice=exc.message)
    return _next(request, session, project, annotator)


@router.post("/projects/{project_id}/leases/{lease_id}/edit", name="annotation:edit")
def edit(request: Request, lease_id: int, form: Annotated[EditIn, Form()], project: ProjectDep,
         annotator: AnnotatorDep, session: SessionDep) -> Response:
    """A direct edit: the rewrite is stored and its diff shown (htmx: in place, under the response)."""
    done = edits.edit_response(session, project_id=project.id, lease_id=lease_id, annotator=annotator,
                               form=form)
    return render_page_or_fragment(request, page="annotation/edited.html", fragment="annotation/_edit.html",
                                   context={"project": project, "edit": done})


@router.post("/projects/{project_id}/leases/{lease_id}/skip", name="annotation:skip")
def skip(request: Request, lease_id: int, project: ProjectDep, annotator: AnnotatorDep,
         session: SessionDep) -> Response:
    annotation_service.skip(session, lease_id=lease_id, annotator=annotator, now=utcnow(),
                            project_id=project.id)
    return _next(request, session, project, annotator)


@api.get("/projects/{project_id}/next", name="annotation:api_next", response_model=ItemOut,
         responses={204: {"description": "nothing left to annotate in this project"},
                    403: {"model": GateOut, "description": "paused, calibration due, or calibration failed"},
                    409: {"model": AcknowledgementRequired, "description": "acknowledge guidelines first"}})
async def api_next(request: Request, project_id: int) -> Response:
    """Claim (or get again) the caller's current item. Responses come in SHOWN order: answer with the
    side as shown ("a" = the first response). 409: acknowledge the new guidelines first. 403 with `status`
    calibration: answer the calibration attempt `calibration_attempt_id` first (see the calibration
    endpoints)."""
    return await run_in_threadpool(hotpath.next_response, request, project_id=project_id)


@api.post("/projects/{project_id}/leases/{lease_id}/judgement", name="annotation:api_judgement",
          response_model=JudgementOut, status_code=201,
          responses={200: {"model": JudgementOut, "description": "an idempotent repeat: already stored"}})
async def api_judgement(request: Request, project_id: int, lease_id: int, body: JudgementIn) -> Response:
    """Judge a leased item (choice on the SHOWN sides). The stored choice is canonical; see `swapped`."""
    return await run_in_threadpool(hotpath.judgement_response, request, project_id=project_id,
                                   lease_id=lease_id, body=body)


@api.post("/projects/{project_id}/leases/{lease_id}/edit", name="annotation:api_edit", response_model=EditOut,
          status_code=201)
def api_edit(lease_id: int, body: EditIn, project: ProjectDep, annotator: AnnotatorDep,
             session: SessionDep) -> Response:
    """Rewrite a response of a leased item (`side` as SHOWN) into a better one: a new candidate, exported
    as preferred over the original."""
    done = edits.edit_response(session, project_id=project.id, lease_id=lease_id, annotator=annotator,
                               form=body)
    out = EditOut(candidate_id=done.candidate_id, original_id=done.original_id, side=done.side,
                  lines_added=done.added, lines_removed=done.removed)
    return hotpath.json_response(out, status_code=201)
