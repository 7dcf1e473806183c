"""Gold and calibration pages: answer keys and annotator standing for admins, calibration attempts for
annotators; and the same as JSON under /api/v1."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Query, Request
from starlette.responses import Response

from app.db import utcnow
from app.errors import Invalid, NotFound
from app.gold import calibration
from app.gold import service as gold_service
from app.gold.models import CalibrationAttempt, GoldAnswer
from app.gold.schemas import (
    AttemptDetailOut,
    CalibrationAnswerIn,
    CalibrationForm,
    CalibrationItemOut,
    FeedbackOut,
    GoldAnswerForm,
    GoldAnswerIn,
    GoldItemOut,
    PauseIn,
    StandingOut,
)
from app.projects.models import Item, ItemKind, ItemPurpose, Project
from app.web import htmx
from app.web.deps import AdminDep, AnnotatorDep, ProjectDep, ResearcherDep, SessionDep
from app.web.templating import render, render_page_or_fragment

router = APIRouter(tags=["gold"])
api = APIRouter(tags=["gold"])


async def _answer_form(request: Request) -> GoldAnswerForm:
    """Async only to await the form parser; the routes that use it stay sync (see annotation.routes)."""
    return GoldAnswerForm.from_pairs((await request.form()).multi_items())


async def _calibration_form(request: Request) -> CalibrationForm:
    return CalibrationForm.from_pairs((await request.form()).multi_items())


def _gold_out(item: Item, answer: GoldAnswer) -> GoldItemOut:
    purpose: Literal["gold", "calibration"] = (
        "calibration" if item.purpose == ItemPurpose.CALIBRATION else "gold")
    return GoldItemOut(item_id=item.id, purpose=purpose,
                       kind="pair" if item.kind == ItemKind.PAIR else "single", choice=answer.choice,
                       ranges={name: (low, high) for name, (low, high) in answer.ranges.items()},
                       explanation=answer.explanation, updated_at=answer.updated_at)


def _standing_out(session: SessionDep, project: Project, user_id: int) -> StandingOut:
    standing = gold_service.standings(session, project_id=project.id).get(user_id)
    if standing is None:
        raise NotFound("that user does not annotate in this project", field="user_id")
    return StandingOut.model_validate(standing)


# --- admin pages: answer keys ------------------------------------------------------------------------

@router.get("/projects/{project_id}/gold", name="gold:overview")
def overview(request: Request, project: ProjectDep, admin: AdminDep, session: SessionDep,
             after: Annotated[int, Query(ge=0)] = 0) -> Response:
    items = gold_service.browse(session, project_id=project.id, after_id=after)
    return render(request, "gold/overview.html", {
        "project": project, "answers": gold_service.answers(session, project_id=project.id),
        "items": items, "after": after, "more": items[-1].id if len(items) == 50 else None})


def _item_page(request: Request, session: SessionDep, project: Project, item_id: int,
               form: GoldAnswerForm | None = None, error: Invalid | None = None) -> Response:
    item = gold_service.get_item(session, project_id=project.id, item_id=item_id)
    answer = gold_service.answer_of(session, item_id=item.id)
    if form is None:
        form = GoldAnswerForm(purpose=str(item.purpose) if answer else "gold",
                              choice=answer.choice or "" if answer else "",
                              explanation=answer.explanation if answer else "",
                              bounds={n: {"min": str(r[0]), "max": str(r[1])}
                                      for n, r in (answer.ranges if answer else {}).items()})
    return render(request, "gold/item.html", {"project": project, "item": item, "answer": answer,
                                              "form": form, "error": error},
                  status_code=error.status_code if error else 200)


@router.get("/projects/{project_id}/gold/items/{item_id}", name="gold:item")
def item_page(request: Request, item_id: int, project: ProjectDep, admin: AdminDep,
              session: SessionDep) -> Response:
    return _item_page(request, session, project, item_id)


@router.post("/projects/{project_id}/gold/items/{item_id}", name="gold:mark")
def mark(request: Request, item_id: int, form: Annotated[GoldAnswerForm, Depends(_answer_form)],
         project: ProjectDep, admin: AdminDep, session: SessionDep) -> Response:
    try:
        gold_service.mark(session, project=project, item_id=item_id, data=form.to_answer(), actor=admin,
                          now=utcnow())
    except Invalid as exc:
        return _item_page(request, session, project, item_id, form, exc)
    return htmx.redirect(request, str(request.url_for("gold:overview", project_id=project.id)))


@router.post("/projects/{project_id}/gold/items/{item_id}/unmark", name="gold:unmark")
def unmark(request: Request, item_id: int, project: ProjectDep, admin: AdminDep,
           session: SessionDep) -> Response:
    gold_service.unmark(session, project=project, item_id=item_id, actor=admin)
    return htmx.redirect(request, str(request.url_for("gold:overview", project_id=project.id)))


# --- admin pages: annotators and calibration attempts -------------------------------------------------

@router.get("/projects/{project_id}/annotators", name="gold:annotators")
def annotators(request: Request, project: ProjectDep, admin: AdminDep, session: SessionDep) -> Response:
    standings = gold_service.standings(session, project_id=project.id)
    return render(request, "gold/annotators.html", {"project": project, "standings": standings.values()})


def _back_to_annotators(request: Request, project: Project) -> Response:
    return htmx.redirect(request, str(request.url_for("gold:annotators", project_id=project.id)))


@router.post("/projects/{project_id}/annotators/{user_id}/pause", name="gold:pause")
def pause(request: Request, user_id: int, form: Annotated[PauseIn, Form()],
          project: ProjectDep, admin: AdminDep, session: SessionDep) -> Response:
    gold_service.pause(session, project=project, user_id=user_id, reason=form.reason, actor=admin,
                       now=utcnow())
    return _back_to_annotators(request, project)


@router.post("/projects/{project_id}/annotators/{user_id}/resume", name="gold:resume")
def resume(request: Request, user_id: int, project: ProjectDep, admin: AdminDep,
           session: SessionDep) -> Response:
    gold_service.resume(session, project=project, user_id=user_id, actor=admin, now=utcnow())
    return _back_to_annotators(request, project)


@router.post("/projects/{project_id}/annotators/{user_id}/grant", name="gold:grant")
def grant(request: Request, user_id: int, project: ProjectDep, admin: AdminDep,
          session: SessionDep) -> Response:
    gold_service.grant_attempt(session, project=project, user_id=user_id, actor=admin, now=utcnow())
    return _back_to_annotators(request, project)


@router.get("/projects/{project_id}/calibration", name="gold:attempts")
def attempts(request: Request, project: ProjectDep, admin: AdminDep, session: SessionDep) -> Response:
    return render(request, "gold/attempts.html", {
        "project": project, "attempts": calibration.attempts(session, project_id=project.id)})


# --- annotators: calibration attempts -----------------------------------------------------------------

def _calibration_page(request: Request, session: SessionDep, project: Project, attempt: CalibrationAttempt, *,
                      item: CalibrationItemOut | None = None, feedback: FeedbackOut | None = None,
                      kept: CalibrationForm | None = None, error: Invalid | None = None) -> Response:
    """The attempt's page: an item to answer, the feedback on the item just answered, or the result."""
    if item is None and feedback is None:
        item = calibration.next_item(session, project=project, attempt=attempt, now=utcnow())
    context = {"project": project, "item": item, "feedback": feedback, "kept": kept or CalibrationForm(),
               "error": error, "summary": calibration.summary(session, attempt)}
    return render_page_or_fragment(request, page="gold/calibration.html", fragment="gold/_calibration.html",
                                   context=context, status_code=error.status_code if error else 200)


@router.get("/projects/{project_id}/calibration/{attempt_id}", name="gold:calibration")
def calibration_page(request: Request, attempt_id: int, project: ProjectDep, annotator: AnnotatorDep,
                     session: SessionDep) -> Response:
    attempt = calibration.get_attempt(session, project_id=project.id, attempt_id=attempt_id, user=annotator)
    return _calibration_page(request, session, project, attempt)


@router.post("/projects/{project_id}/calibration/{attempt_id}/items/{item_id}",
             name="gold:calibration_answer")
def calibration_answer(request: Request, attempt_id: int, item_id: int,
                       form: Annotated[CalibrationForm, Depends(_calibration_form)], project: ProjectDep,
                       annotator: AnnotatorDep, session: SessionDep) -> Response:
    """The feedback panel for the item just answered (the item, the expected answer, the explanation),
    then "next". Invalid input shows the same item again with the problem and the choices kept."""
    feedback: FeedbackOut | None = None
    error: Invalid | None = None
    try:
        feedback = calibration.answer(session, project=project, attempt_id=attempt_id, item_id=item_id,
                                      data=form.to_answer(), user=annotator, now=utcnow())
    except Invalid as exc:
        error = exc
    attempt = calibration.get_attempt(session, project_id=project.id, attempt_id=attempt_id, user=annotator)
    item = calibration.describe(session, project=project, attempt=attempt, item_id=item_id)
    return _calibration_page(request, session, project, attempt, item=item, feedback=feedback, kept=form,
                             error=error)


# --- JSON API -----------------------------------------------------------------------------------------

@api.get("/projects/{project_id}/gold", response_model=list[GoldItemOut], name="gold:api_list")
def api_list(project: ProjectDep, researcher: ResearcherDep, session: SessionDep,
             purpose: Annotated[str | None, Query(pattern="^(gold|calibration)$")] = None
             ) -> list[GoldItemOut]:
    """Gold and calibration items with their expected answers (the calibration set: purpose=calibration)."""
    return [_gold_out(item, answer) for item, answer in gold_service.answers(session, project_id=project.id)
            if purpose is None or item.purpose == purpose]


@api.put("/projects/{project_id}/items/{item_id}/answer", response_model=GoldItemOut, name="gold:api_mark")
def api_mark(item_id: int, body: GoldAnswerIn, project: ProjectDep, admin: AdminDep,
             session: SessionDep) -> GoldItemOut:
    """Make an item gold or calibration with its expected answer, or change the answer (rescored)."""
    answer = gold_service.mark(session, project=project, item_id=item_id, data=body, actor=admin,
                               now=utcnow())
    return _gold_out(gold_service.get_item(session, project_id=project.id, item_id=item_id), answer)


@api.delete("/projects/{project_id}/items/{item_id}/answer", status_code=204, name="gold:api_unmark")
def api_unmark(item_id: int, project: ProjectDep, admin: AdminDep, session: SessionDep) -> Response:
    gold_service.unmark(session, project=project, item_id=item_id, actor=admin)
    return Response(status_code=204)


@api.get("/projects/{project_id}/standings", response_model=list[StandingOut], name="gold:api_standings")
def api_standings(project: ProjectDep, researcher: ResearcherDep, session: SessionDep) -> list[StandingOut]:
    """Every annotator's status (and why paused), gold accuracy and calibration state."""
    standings = gold_service.standings(session, project_id=project.id)
    return [StandingOut.model_validate(s) for s in standings.values()]


@api.post("/projects/{project_id}/annotators/{user_id}/pause", response_model=StandingOut,
          name="gold:api_pause")
def api_pause(user_id: int, body: PauseIn, project: ProjectDep, admin: AdminDep,
              session: SessionDep) -> StandingOut:
    gold_service.pause(session, project=project, user_id=user_id, reason=body.reason, actor=admin,
                       now=utcnow())
    return _standing_out(session, project, user_id)


@api.post("/projects/{project_id}/annotators/{user_id}/resume", response_model=StandingOut,
          name="gold:api_resume")
def api_resume(user_id: int, project: ProjectDep, admin: AdminDep, session: SessionDep) -> StandingOut:
    """Resume a paused annotator; the gold items judged before no longer count toward a new pause."""
    gold_service.resume(session, project=project, user_id=user_id, actor=admin, now=utcnow())
    return _standing_out(session, project, user_id)


@api.post("/projects/{project_id}/annotators/{user_id}/calibration-grant", response_model=StandingOut,
          name="gold:api_grant")
def api_grant(user_id: int, project: ProjectDep, admin: AdminDep, session: SessionDep) -> StandingOut:
    """One more calibration attempt for an annotator who ran out of them."""
    gold_service.grant_attempt(session, project=project, user_id=user_id, actor=admin, now=utcnow())
    return _standing_out(session, project, user_id)


@api.get("/projects/{project_id}/calibration/attempts", response_model=list[AttemptDetailOut],
         name="gold:api_attempts")
def api_attempts(project: ProjectDep, admin: AdminDep, session: SessionDep) -> list[AttemptDetailOut]:
    """Every calibration attempt in the project: who, when, score, each answer."""
    return calibration.attempts(session, project_id=project.id)


@api.get("/projects/{project_id}/calibration/attempts/{attempt_id}/next", response_model=CalibrationItemOut,
         name="gold:api_calibration_next",
         responses={204: {"description": "every item of the attempt is answered"}})
def api_calibration_next(attempt_id: int, project: ProjectDep, annotator: AnnotatorDep,
                         session: SessionDep) -> CalibrationItemOut | Response:
    """The attempt's next calibration item, responses in SHOWN order (the attempt id comes in the 403
    of GET /projects/{id}/next while calibration is due)."""
    attempt = calibration.get_attempt(session, project_id=project.id, attempt_id=attempt_id, user=annotator)
    item = calibration.next_item(session, project=project, attempt=attempt, now=utcnow())
    return item if item is not None else Response(status_code=204)


@api.post("/projects/{project_id}/calibration/attempts/{attempt_id}/items/{item_id}",
          response_model=FeedbackOut, name="gold:api_calibration_answer")
def api_calibration_answer(attempt_id: int, item_id: int, body: CalibrationAnswerIn, project: ProjectDep,
                           annotator: AnnotatorDep, session: SessionDep) -> FeedbackOut:
    """Answer one calibration item (SHOWN sides): the expected answer and explanation come back, and
    the attempt's score once the last item is answered."""
    return calibration.answer(session, project=project, attempt_id=attempt_id, item_id=item_id, data=body,
                              user=annotator, now=utcnow())
