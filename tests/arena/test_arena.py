"""The arena over the real database: judgements between configs in, ranking and win rates out."""

from __future__ import annotations

import math

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.accounts.models import Role, User
from app.arena import service as arena_service
from app.generation import configs as configs_service
from app.generation.schemas import ConfigIn
from app.projects.models import Candidate, CandidateSource, Item, ItemKind, Project
from tests.factories import bearer, login, make_judgement, make_project, make_prompt, make_user


def _item(db: Session, project: Project, keys: tuple[str, str]) -> Item:
    prompt = make_prompt(db, project, "q")
    a, b = (Candidate(prompt_id=prompt.id, text=f"answer of {k}", source=CandidateSource.MODEL, config_key=k,
                      sample_index=0) for k in keys)
    db.add_all([a, b])
    db.flush()
    item = Item(project_id=project.id, prompt_id=prompt.id, kind=ItemKind.PAIR, candidate_a_id=a.id,
                candidate_b_id=b.id, open_slots=2, judgement_count=0)
    db.add(item)
    db.flush()
    return item


def _arena_project(db: Session, admin: User) -> Project:
    """`big` beats `small` 3 to 1 (one of them shown as b first), ties once with `<tiny>`."""
    project = make_project(db)
    for key in ("small", "big", "tiny"):
        body = ConfigIn(key=key, model=f"m/{key}")
        configs_service.create_config(db, project=project, body=body, actor=admin)
    annotator = make_user(db, Role.ANNOTATOR)
    for choice in ("a", "a", "b"):
        make_judgement(db, _item(db, project, ("big", "small")), annotator, choice, strength=1)
    make_judgement(db, _item(db, project, ("small", "big")), annotator, "b", strength=2)
    make_judgement(db, _item(db, project, ("big", "tiny")), annotator, "tie")
    return project


def test_configs_are_ranked_with_ties_as_half_and_intervals(db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    project = _arena_project(db, admin)

    data = arena_service.arena(db, project=project, samples=50)

    assert data.judgements == 5
    assert data.ranking[0].key == "big"
    ranks = {r.key: r for r in data.ranking}
    assert (ranks["big"].games, ranks["big"].points) == (5, 3.5)
    assert (ranks["small"].games, ranks["tiny"].points) == (4, 0.5)
    assert ranks["big"].score > ranks["tiny"].score > ranks["small"].score
    assert all(r.low is not None and r.high is not None and r.low <= r.score <= r.high for r in data.ranking)
    big, small, tiny = (data.keys.index(k) for k in ("big", "small", "tiny"))
    assert data.win_rate[big][small] == 0.75 and data.win_rate[small][big] == 0.25
    assert data.win_rate[big][tiny] == 0.5 and data.win_rate[small][tiny] is None
    assert data.games[big][small] == 4


def test_more_wins_than_losses_move_the_score_by_the_fitted_odds(db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    project = make_project(db)
    for key in ("x", "y"):
        configs_service.create_config(db, project=project, body=ConfigIn(key=key), actor=admin)
    annotator = make_user(db)
    for choice in ("a", "a", "a", "b"):
        make_judgement(db, _item(db, project, ("x", "y")), annotator, choice, strength=1)
    data = arena_service.arena(db, project=project, samples=0)
    # prior 0.5: a quarter of a virtual win each way, so 3.25 to 1.25
    gap = data.ranking[0].score - data.ranking[1].score
    assert gap == pytest.approx(400 * math.log10(3.25 / 1.25), abs=0.2)


def test_arena_page_and_api_for_researchers_not_annotators(app_client: TestClient, db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    project = _arena_project(db, admin)
    researcher = make_user(db, Role.RESEARCHER)
    annotator = make_user(db, Role.ANNOTATOR)
    from app.projects.models import ProjectMember

    db.add_all([ProjectMember(project_id=project.id, user_id=u.id) for u in (researcher, annotator)])
    db.flush()

    api = app_client.get(f"/api/v1/projects/{project.id}/arena", headers=bearer(db, researcher))
    assert api.status_code == 200
    body = api.json()
    assert body["ranking"][0]["key"] == "big" and body["judgements"] == 5
    assert len(body["win_rate"]) == 3 and body["keys"][0] == "big"
    denied = app_client.get(f"/api/v1/projects/{project.id}/arena", headers=bearer(db, annotator))
    assert denied.status_code == 403

    login(app_client, db, admin)
    page = app_client.get(f"/projects/{project.id}/arena")
    assert page.status_code == 200
    assert "<svg" in page.text and 'id="arena-ranking"' in page.text and "75%" in page.text
    assert "<script" not in page.text.split("</head>")[-1].replace('<script src="/static/', "")
