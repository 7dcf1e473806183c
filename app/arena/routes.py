"""The arena page and its JSON: generation configs ranked from the judgements between them."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.arena import chart
from app.arena import service as arena_service
from app.arena.schemas import ArenaOut
from app.web.deps import ProjectDep, ResearcherDep, SessionDep
from app.web.templating import render

router = APIRouter(tags=["arena"])
api = APIRouter(tags=["arena"])


@router.get("/projects/{project_id}/arena", name="arena:page")
def arena_page(request: Request, project: ProjectDep, user: ResearcherDep, session: SessionDep) -> Response:
    data = arena_service.arena(session, project=project)
    return render(request, "arena/arena.html", {"project": project, "data": data,
                                                "chart": chart.score_chart(data)})


@api.get("/projects/{project_id}/arena", name="arena:api", response_model=ArenaOut)
def arena_api(project: ProjectDep, user: ResearcherDep, session: SessionDep) -> ArenaOut:
    """Bradley-Terry scores (Elo scale, ties as half a win) with 95% bootstrap intervals, and the
    win-rate matrix, of the project's generation configs."""
    return arena_service.arena(session, project=project)
