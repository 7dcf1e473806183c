"""Training page, run progress and files, reward-model disagreements: thin routes over the service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import FileResponse, Response

from app.errors import DomainError
from app.projects.models import Project
from app.training import service as training_service
from app.training.schemas import Disagreement, QueueOrderForm, RunOut, TrainingForm, TrainingFormText
from app.web import htmx
from app.web.deps import AdminDep, ProjectDep, ResearcherDep, SessionDep
from app.web.templating import render, render_page_or_fragment

router = APIRouter(tags=["training"])
api = APIRouter(tags=["training"])
Confidence = Annotated[float, Query(ge=0.5, lt=1.0)]


def _page(request: Request, project: Project, session: SessionDep, form: TrainingFormText | None = None,
          error: DomainError | None = None) -> Response:
    context = {"project": project, "form": form or TrainingFormText(), "error": error,
               "runs": training_service.list_runs(session, project_id=project.id),
               "scores": training_service.score_summary(session, project_id=project.id)}
    return render(request, "training/page.html", context, status_code=error.status_code if error else 200)


@router.get("/projects/{project_id}/training", name="training:page")
def page(request: Request, project: ProjectDep, user: ResearcherDep, session: SessionDep) -> Response:
    return _page(request, project, session)


@router.post("/projects/{project_id}/training", name="training:start")
def start(request: Request, form: Annotated[TrainingFormText, Form()], project: ProjectDep,
          user: ResearcherDep, session: SessionDep) -> Response:
    try:
        values = training_service.parse_form(form.values())
        run = training_service.start_run(session, project=project, actor=user, form=values,
                                         runs_root=request.app.state.settings.data_dir / "training")
    except DomainError as exc:  # the form again, with the problem named
        return _page(request, project, session, form, exc)
    return htmx.redirect(request, str(request.url_for("training:run", project_id=project.id, run_id=run.id)))


@router.get("/projects/{project_id}/training/runs/{run_id}", name="training:run")
def run_page(request: Request, run_id: int, project: ProjectDep, user: ResearcherDep,
             session: SessionDep) -> Response:
    run = training_service.get_run(session, project_id=project.id, run_id=run_id)
    return render_page_or_fragment(request, page="training/run.html", fragment="training/_run.html",
                                   context={"project": project, "run": run})


@router.get("/projects/{project_id}/training/runs/{run_id}/reliability.png", name="training:reliability")
def reliability(run_id: int, project: ProjectDep, user: ResearcherDep, session: SessionDep) -> Response:
    run = training_service.get_run(session, project_id=project.id, run_id=run_id)
    path = training_service.artifact(run, training_service.RELIABILITY_PNG)
    return FileResponse(path, media_type="image/png")


@router.get("/projects/{project_id}/training/runs/{run_id}/model.zip", name="training:download")
def download(run_id: int, project: ProjectDep, user: ResearcherDep, session: SessionDep) -> Response:
    run = training_service.get_run(session, project_id=project.id, run_id=run_id)
    path = training_service.artifact(run, training_service.ARCHIVE)
    name = training_service.download_name(project, run)
    return FileResponse(path, media_type="application/zip", filename=name)


@router.post("/projects/{project_id}/training/runs/{run_id}/score", name="training:score")
def score(request: Request, run_id: int, project: ProjectDep, admin: AdminDep,
          session: SessionDep) -> Response:
    run = training_service.get_run(session, project_id=project.id, run_id=run_id)
    training_service.enqueue_run_scoring(session, project=project, run=run, actor=admin)
    return htmx.redirect(request, str(request.url_for("training:page", project_id=project.id)))


@router.post("/projects/{project_id}/training/queue-order", name="training:queue_order")
def queue_order(request: Request, form: Annotated[QueueOrderForm, Form()], project: ProjectDep,
                admin: AdminDep, session: SessionDep) -> Response:
    training_service.set_uncertain_first(session, project=project, enabled=form.uncertain_first == "on",
                                         actor=admin)
    return htmx.redirect(request, str(request.url_for("training:page", project_id=project.id)))


@router.get("/projects/{project_id}/disagreements", name="training:disagreements")
def disagreements(request: Request, project: ProjectDep, admin: AdminDep, session: SessionDep,
                  min_confidence: Confidence = 0.8) -> Response:
    rows = training_service.disagreements(session, project=project, min_confidence=min_confidence)
    return render(request, "training/disagreements.html",
                  {"project": project, "rows": rows, "min_confidence": min_confidence,
                   "scores": training_service.score_summary(session, project_id=project.id)})


@api.get("/projects/{project_id}/disagreements", response_model=list[Disagreement],
         name="training:api_disagreements")
def api_disagreements(project: ProjectDep, admin: AdminDep, session: SessionDep,
                      min_confidence: Confidence = 0.8) -> list[Disagreement]:
    return training_service.disagreements(session, project=project, min_confidence=min_confidence)


@api.post("/projects/{project_id}/training-runs", response_model=RunOut, status_code=201,
          name="training:api_start")
def api_start(request: Request, body: TrainingForm, project: ProjectDep, user: ResearcherDep,
              session: SessionDep) -> RunOut:
    run = training_service.start_run(session, project=project, actor=user, form=body,
                                     runs_root=request.app.state.settings.data_dir / "training")
    return RunOut.model_validate(run)


@api.get("/projects/{project_id}/training-runs", response_model=list[RunOut], name="training:api_list")
def api_list(project: ProjectDep, user: ResearcherDep, session: SessionDep) -> list[RunOut]:
    return [RunOut.model_validate(run) for run in training_service.list_runs(session, project_id=project.id)]
