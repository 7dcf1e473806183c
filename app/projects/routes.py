from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from starlette.responses import Response

from app.errors import DomainError, Invalid
from app.projects import service as projects_service
from app.projects.models import Project
from app.projects.schemas import (
    ImportResult,
    MemberAdd,
    MemberOut,
    ProjectCreate,
    ProjectDetailOut,
    ProjectForm,
    ProjectOut,
    ProjectStats,
    ProjectUpdate,
)
from app.web import htmx
from app.web.deps import AdminDep, CurrentUser, ProjectDep, SessionDep
from app.web.templating import render, render_page_or_fragment

router = APIRouter(tags=["projects"])
api = APIRouter(tags=["projects"])

Upload = Annotated[UploadFile, File(description="a .jsonl or .csv file of prompts")]


def _read_upload(request: Request, file: UploadFile) -> tuple[str, bytes]:
    limit_mb = request.app.state.settings.max_upload_mb
    content = file.file.read(limit_mb * 1024 * 1024 + 1)
    if len(content) > limit_mb * 1024 * 1024:
        raise Invalid(f"the file is larger than {limit_mb} MB (settings.max_upload_mb)", field="file")
    return file.filename or "", content


def _form_page(request: Request, name: str, form: ProjectForm, project: Project | None = None,
               error: DomainError | None = None) -> Response:
    details = error.details if error and isinstance(error.details, list) else []
    if error and not details:
        details = [{"field": error.field or "", "message": error.message}]
    context = {"form": form, "project": project, "error": error,
               "field_errors": {d["field"]: d["message"] for d in details}}
    return render(request, name, context, status_code=error.status_code if error else 200)


def _detail_url(request: Request, project: Project) -> str:
    return str(request.url_for("projects:detail", project_id=project.id))


@router.get("/projects", name="projects:list")
def project_list(request: Request, user: CurrentUser, session: SessionDep) -> Response:
    projects = projects_service.list_with_stats(session, user)
    return render(request, "projects/list.html", {"projects": projects})


@router.get("/projects/new", name="projects:new")
def new_project(request: Request, admin: AdminDep) -> Response:
    return _form_page(request, "projects/new.html", ProjectForm.blank())


@router.post("/projects", name="projects:create")
def create_project(request: Request, form: Annotated[ProjectForm, Form()], admin: AdminDep,
                   session: SessionDep) -> Response:
    try:
        project = projects_service.create_project(session, data=form.to_create(), creator=admin)
    except DomainError as exc:  # invalid or a taken name: the form again, with the problems beside the fields
        return _form_page(request, "projects/new.html", form, error=exc)
    return htmx.redirect(request, _detail_url(request, project))


@router.get("/projects/{project_id}", name="projects:detail")
def project_detail(request: Request, project: ProjectDep, session: SessionDep) -> Response:
    context = {"project": project, **projects_service.overview(session, project=project)}
    return render(request, "projects/detail.html", context)


@router.get("/projects/{project_id}/edit", name="projects:edit")
def edit_project(request: Request, project: ProjectDep, admin: AdminDep) -> Response:
    return _form_page(request, "projects/edit.html", ProjectForm.of(project), project)


@router.post("/projects/{project_id}/edit", name="projects:update")
def update_project(request: Request, form: Annotated[ProjectForm, Form()], project: ProjectDep,
                   admin: AdminDep, session: SessionDep) -> Response:
    try:
        data = form.to_update(project.mode)
        projects_service.update_project(session, project=project, data=data, actor=admin)
    except DomainError as exc:
        return _form_page(request, "projects/edit.html", form, project, error=exc)
    return htmx.redirect(request, _detail_url(request, project))


@router.post("/projects/{project_id}/members", name="projects:add_member")
def add_member(request: Request, form: Annotated[MemberAdd, Form()], project: ProjectDep, admin: AdminDep,
               session: SessionDep) -> Response:
    projects_service.add_member(session, project=project, user_id=form.user_id, actor_id=admin.id)
    return htmx.redirect(request, _detail_url(request, project))


@router.post("/projects/{project_id}/members/{user_id}/remove", name="projects:remove_member")
def remove_member(request: Request, user_id: int, project: ProjectDep, admin: AdminDep,
                  session: SessionDep) -> Response:
    projects_service.remove_member(session, project=project, user_id=user_id, actor_id=admin.id)
    return htmx.redirect(request, _detail_url(request, project))


@router.post("/projects/{project_id}/import", name="projects:import")
def import_prompts(request: Request, file: Upload, project: ProjectDep, admin: AdminDep,
                   session: SessionDep) -> Response:
    """The page (or, for htmx, the import panel) with the counts imported or the table of problems."""
    filename, content = _read_upload(request, file)
    context: dict[str, Any] = {"project": project, "import_result": None, "import_error": None}
    try:
        context["import_result"] = projects_service.import_prompts(
            session, project=project, filename=filename, content=content, actor=admin,
            max_rows=request.app.state.settings.max_import_rows)
    except Invalid as exc:
        context["import_error"] = exc
    context.update(projects_service.overview(session, project=project))
    return render_page_or_fragment(request, page="projects/detail.html", fragment="projects/_import.html",
                                   context=context, status_code=422 if context["import_error"] else 200)


@api.get("/projects", response_model=list[ProjectOut], name="projects:api_list")
def api_list(user: CurrentUser, session: SessionDep) -> list[ProjectOut]:
    return [ProjectOut.model_validate(p) for p in projects_service.list_for_user(session, user)]


@api.post("/projects", response_model=ProjectOut, status_code=201, name="projects:api_create")
def api_create(body: ProjectCreate, admin: AdminDep, session: SessionDep) -> ProjectOut:
    return ProjectOut.model_validate(projects_service.create_project(session, data=body, creator=admin))


@api.get("/projects/{project_id}", response_model=ProjectDetailOut, name="projects:api_detail")
def api_detail(project: ProjectDep, session: SessionDep) -> ProjectDetailOut:
    stats = ProjectStats(**projects_service.project_stats(session, project.id))
    return ProjectDetailOut(**ProjectOut.model_validate(project).model_dump(), stats=stats)


@api.patch("/projects/{project_id}", response_model=ProjectOut, name="projects:api_update")
def api_update(body: ProjectUpdate, project: ProjectDep, admin: AdminDep, session: SessionDep) -> ProjectOut:
    projects_service.update_project(session, project=project, data=body, actor=admin)
    return ProjectOut.model_validate(project)


@api.get("/projects/{project_id}/members", response_model=list[MemberOut], name="projects:api_members")
def api_members(project: ProjectDep, session: SessionDep) -> list[MemberOut]:
    return [MemberOut.model_validate(u) for u in projects_service.list_members(session, project.id)]


@api.post("/projects/{project_id}/members", response_model=MemberOut, status_code=201,
          name="projects:api_add_member")
def api_add_member(body: MemberAdd, project: ProjectDep, admin: AdminDep, session: SessionDep) -> MemberOut:
    user = projects_service.add_member(session, project=project, user_id=body.user_id, actor_id=admin.id)
    return MemberOut.model_validate(user)


@api.delete("/projects/{project_id}/members/{user_id}", status_code=204, name="projects:api_remove_member")
def api_remove_member(user_id: int, project: ProjectDep, admin: AdminDep, session: SessionDep) -> Response:
    projects_service.remove_member(session, project=project, user_id=user_id, actor_id=admin.id)
    return Response(status_code=204)


@api.post("/projects/{project_id}/prompts", response_model=ImportResult, status_code=201,
          name="projects:api_import")
def api_import(request: Request, file: Upload, project: ProjectDep, admin: AdminDep,
               session: SessionDep) -> ImportResult:
    """All or nothing: a bad file answers 422 with `errors`, one {row, field, message} per problem."""
    filename, content = _read_upload(request, file)
    return projects_service.import_prompts(session, project=project, filename=filename, content=content,
                                           actor=admin, max_rows=request.app.state.settings.max_import_rows)
