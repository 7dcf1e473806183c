from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Form, Request
from starlette.responses import Response

from app.db import utcnow
from app.generation import configs as configs_service
from app.generation import service as generation_service
from app.generation.schemas import ConfigForm, ConfigIn, ConfigOut, RunOut, RunStart
from app.web import htmx
from app.web.deps import AdminDep, ProjectDep, SessionDep
from app.web.templating import render, render_page_or_fragment

router = APIRouter(tags=["generation"])
api = APIRouter(tags=["generation"])


@router.post("/projects/{project_id}/generation", name="generation:start")
def start(request: Request, project: ProjectDep, admin: AdminDep, session: SessionDep) -> Response:
    generation_service.start_run(session, project=project, actor=admin)
    if htmx.is_htmx(request):
        panel = generation_service.panel_state(session, project=project, now=utcnow())
        return render(request, "generation/_panel.html", {"project": project, "panel": panel})
    return htmx.redirect(request, str(request.url_for("projects:detail", project_id=project.id)))


@router.get("/projects/{project_id}/generation/panel", name="generation:panel")
def panel(request: Request, project: ProjectDep, session: SessionDep) -> Response:
    panel = generation_service.panel_state(session, project=project, now=utcnow())
    configs = configs_service.list_configs(session, project=project)
    return render_page_or_fragment(request, page="generation/panel.html", fragment="generation/_panel.html",
                                   context={"project": project, "panel": panel, "configs": configs})


@router.post("/projects/{project_id}/generation/configs", name="generation:config_create")
def config_create(request: Request, form: Annotated[ConfigForm, Form()], project: ProjectDep,
                  admin: AdminDep, session: SessionDep) -> Response:
    configs_service.create_from_form(session, project=project, form=form, actor=admin)
    return htmx.redirect(request, str(request.url_for("generation:panel", project_id=project.id)))


@router.post("/projects/{project_id}/generation/configs/{key}/delete", name="generation:config_delete")
def config_delete(request: Request, key: str, project: ProjectDep, admin: AdminDep,
                  session: SessionDep) -> Response:
    configs_service.delete_config(session, project=project, key=key, actor=admin)
    return htmx.redirect(request, str(request.url_for("generation:panel", project_id=project.id)))


@api.post("/projects/{project_id}/generation-runs", response_model=RunOut, status_code=201,
          name="generation:api_start")
def api_start(project: ProjectDep, admin: AdminDep, session: SessionDep,
              body: Annotated[RunStart | None, Body()] = None) -> RunOut:
    run = generation_service.start_run(session, project=project, actor=admin,
                                       model=body.model if body is not None else None)
    return generation_service.run_out(run, now=utcnow())


@api.get("/projects/{project_id}/generation-runs", response_model=list[RunOut], name="generation:api_list")
def api_list(project: ProjectDep, session: SessionDep) -> list[RunOut]:
    return generation_service.run_views(session, project_id=project.id, now=utcnow())


@api.get("/projects/{project_id}/generation-configs", response_model=list[ConfigOut],
         name="generation:api_configs")
def api_configs(project: ProjectDep, session: SessionDep) -> list[ConfigOut]:
    """The project's configs; while it has none, its own generation settings as the implicit "default"."""
    return [c.out() for c in configs_service.list_configs(session, project=project)]


@api.post("/projects/{project_id}/generation-configs", response_model=ConfigOut, status_code=201,
          name="generation:api_config_create")
def api_config_create(body: ConfigIn, project: ProjectDep, admin: AdminDep, session: SessionDep) -> ConfigOut:
    return configs_service.create_config(session, project=project, body=body, actor=admin).out()


@api.delete("/projects/{project_id}/generation-configs/{key}", status_code=204,
            name="generation:api_config_delete")
def api_config_delete(key: str, project: ProjectDep, admin: AdminDep, session: SessionDep) -> Response:
    configs_service.delete_config(session, project=project, key=key, actor=admin)
    return Response(status_code=204)


def _panel(request: Request, project: ProjectDep, session: SessionDep) -> Response:
    panel = generation_service.panel_state(session, project=project, now=utcnow())
    if htmx.is_htmx(request):
        return render(request, "generation/_panel.html", {"project": project, "panel": panel})
    return htmx.redirect(request, str(request.url_for("generation:panel", project_id=project.id)))


@router.post("/projects/{project_id}/generation/{run_id}/cancel", name="generation:cancel")
def cancel(request: Request, run_id: int, project: ProjectDep, admin: AdminDep,
           session: SessionDep) -> Response:
    generation_service.cancel_run(session, project=project, run_id=run_id, actor=admin, now=utcnow())
    return _panel(request, project, session)


@router.post("/projects/{project_id}/generation/{run_id}/retry", name="generation:retry")
def retry(request: Request, run_id: int, project: ProjectDep, admin: AdminDep,
          session: SessionDep) -> Response:
    generation_service.retry_run(session, project=project, run_id=run_id, actor=admin)
    return _panel(request, project, session)


@api.post("/projects/{project_id}/generation-runs/{run_id}/cancel", response_model=RunOut,
          name="generation:api_cancel")
def api_cancel(run_id: int, project: ProjectDep, admin: AdminDep, session: SessionDep) -> RunOut:
    run = generation_service.cancel_run(session, project=project, run_id=run_id, actor=admin, now=utcnow())
    return generation_service.run_out(run, now=utcnow())


@api.post("/projects/{project_id}/generation-runs/{run_id}/retry", response_model=RunOut, status_code=201,
          name="generation:api_retry")
def api_retry(run_id: int, project: ProjectDep, admin: AdminDep, session: SessionDep) -> RunOut:
    run = generation_service.retry_run(session, project=project, run_id=run_id, actor=admin)
    return generation_service.run_out(run, now=utcnow())
