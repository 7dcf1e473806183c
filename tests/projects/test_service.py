"""Project settings, membership, candidates, items and counts, against the real database."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts.models import Role
from app.audit.models import AuditEvent
from app.errors import Conflict, Invalid, NotFound
from app.projects import service as projects_service
from app.projects.models import Candidate, CandidateSource, Item, ItemKind, Mode
from app.projects.schemas import ProjectCreate, ProjectUpdate
from tests.factories import make_project, make_prompt, make_user


def _actions(db: Session, project_id: int) -> list[str]:
    return list(
        db.scalars(
            select(AuditEvent.action).where(AuditEvent.project_id == project_id).order_by(AuditEvent.id)
        )
    )


def test_create_project_fills_the_defaults_and_records_an_audit_event(db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    project = projects_service.create_project(
        db, data=ProjectCreate(name=" rating ", mode=Mode.LIKERT), creator=admin
    )
    assert project.name == "rating" and project.candidates_per_prompt == 1 and project.overlap_k == 2
    assert [a["name"] for a in project.attributes] == ["helpfulness", "correctness", "safety", "style"]
    assert project.generation == {
        "model": "",
        "max_new_tokens": 256,
        "temperature": 0.8,
        "top_p": 0.95,
        "seed": 0,
        "include_flagged": False,
    }
    assert _actions(db, project.id) == ["project.create"]
    pairwise = projects_service.create_project(
        db, data=ProjectCreate(name="pairs", mode=Mode.PAIRWISE), creator=admin
    )
    assert pairwise.candidates_per_prompt == 2 and pairwise.attributes == []


def test_a_taken_project_name_is_a_conflict_on_the_name_field(db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    projects_service.create_project(db, data=ProjectCreate(name="same", mode=Mode.PAIRWISE), creator=admin)
    with pytest.raises(Conflict) as caught:
        projects_service.create_project(db, data=ProjectCreate(name="same", mode=Mode.LIKERT), creator=admin)
    assert caught.value.field == "name"
    assert [p.name for p in projects_service.list_for_user(db, admin)] == ["same"]  # the session goes on


def test_update_changes_only_sent_fields_and_moves_open_slots_with_k(db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    project = make_project(db, overlap_k=2)
    prompt = make_prompt(db, project, candidates=["a", "b", "c"])
    assert projects_service.build_items(db, project=project, prompt_id=prompt.id) == 3
    projects_service.update_project(
        db, project=project, data=ProjectUpdate(overlap_k=3, description="d"), actor=admin
    )
    assert project.overlap_k == 3 and project.description == "d" and project.lease_minutes == 30
    slots = db.scalars(
        select(Item.open_slots).where(Item.project_id == project.id).execution_options(populate_existing=True)
    )
    assert set(slots) == {3}
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "project.update")).one()
    assert event.before == {"overlap_k": 2, "description": ""} and event.after == {
        "overlap_k": 3,
        "description": "d",
    }


def test_a_rename_to_a_taken_name_leaves_everything_unchanged(db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    make_project(db, name="taken")
    project = make_project(db, name="mine", overlap_k=2)
    with pytest.raises(Conflict):
        projects_service.update_project(
            db, project=project, data=ProjectUpdate(name="taken", overlap_k=5), actor=admin
        )
    db.refresh(project)
    assert (project.name, project.overlap_k) == ("mine", 2)


def test_pairwise_projects_have_no_attributes_and_need_two_candidates(db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    project = make_project(db, mode=Mode.PAIRWISE)
    with pytest.raises(Invalid) as caught:
        projects_service.update_project(
            db, project=project, data=ProjectUpdate(candidates_per_prompt=1), actor=admin
        )
    assert caught.value.field == "candidates_per_prompt"
    attributes = ProjectUpdate.model_validate({"attributes": [{"name": "x", "low": "l", "high": "h"}]})
    with pytest.raises(Invalid) as caught:
        projects_service.update_project(db, project=project, data=attributes, actor=admin)
    assert caught.value.field == "attributes"


def test_members_are_added_once_removed_and_audited(db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    annotator = make_user(db, Role.ANNOTATOR)
    project = make_project(db)
    assert annotator.id in [u.id for u in projects_service.addable_users(db, project.id)]
    assert admin.id not in [u.id for u in projects_service.addable_users(db, project.id)]
    projects_service.add_member(db, project=project, user_id=annotator.id, actor_id=admin.id)
    projects_service.add_member(db, project=project, user_id=annotator.id, actor_id=admin.id)
    assert [u.id for u in projects_service.list_members(db, project.id)] == [annotator.id]
    assert annotator.id not in [u.id for u in projects_service.addable_users(db, project.id)]
    projects_service.remove_member(db, project=project, user_id=annotator.id, actor_id=admin.id)
    assert projects_service.list_members(db, project.id) == []
    assert _actions(db, project.id) == ["member.add", "member.remove"]
    with pytest.raises(NotFound):
        projects_service.remove_member(db, project=project, user_id=annotator.id, actor_id=admin.id)
    with pytest.raises(NotFound) as caught:
        projects_service.add_member(db, project=project, user_id=10**9, actor_id=admin.id)
    assert caught.value.field == "user_id"


def test_add_candidate_is_idempotent_on_prompt_config_and_sample_index(db: Session) -> None:
    project = make_project(db)
    prompt = make_prompt(db, project)
    first = projects_service.add_candidate(
        db,
        prompt_id=prompt.id,
        text="Hi",
        source=CandidateSource.MODEL,
        config_key="cfg",
        sample_index=0,
        model="m",
        seed=3,
        params={"temperature": 0.8},
    )
    again = projects_service.add_candidate(
        db, prompt_id=prompt.id, text="Other", source=CandidateSource.MODEL, config_key="cfg", sample_index=0
    )
    other = projects_service.add_candidate(
        db, prompt_id=prompt.id, text="Yo", source=CandidateSource.MODEL, config_key="cfg", sample_index=1
    )
    assert first is not None and first.id and first.seed == 3 and first.params == {"temperature": 0.8}
    assert again is None and other is not None
    texts = db.scalars(select(Candidate.text).where(Candidate.prompt_id == prompt.id).order_by(Candidate.id))
    assert list(texts) == ["Hi", "Yo"]


def test_build_items_pairs_every_two_of_three_candidates_once(db: Session) -> None:
    project = make_project(db, overlap_k=3)
    prompt = make_prompt(db, project, candidates=["a", "b", "c"])
    assert projects_service.build_items(db, project=project, prompt_id=prompt.id) == 3
    assert projects_service.build_items(db, project=project, prompt_id=prompt.id) == 0
    items = db.scalars(select(Item).where(Item.prompt_id == prompt.id)).all()
    assert len(items) == 3 and {i.kind for i in items} == {ItemKind.PAIR}
    assert all(i.candidate_b_id is not None and i.candidate_a_id < i.candidate_b_id for i in items)
    assert {i.open_slots for i in items} == {3} and {i.judgement_count for i in items} == {0}


def test_build_items_with_six_candidates_uses_a_balanced_design(db: Session) -> None:
    project = make_project(db)
    prompt = make_prompt(db, project, candidates=[f"answer {i}" for i in range(6)])
    assert projects_service.build_items(db, project=project, prompt_id=prompt.id) == 12
    pairs = db.execute(
        select(Item.candidate_a_id, Item.candidate_b_id).where(Item.prompt_id == prompt.id)
    ).all()
    assert len(set(pairs)) == 12 < 15
    assert set(Counter(c for pair in pairs for c in pair).values()) == {4}


def test_likert_items_are_one_single_per_candidate_and_idempotent(db: Session) -> None:
    project = make_project(db, mode=Mode.LIKERT)
    prompt = make_prompt(db, project, candidates=["a", "b"])
    assert projects_service.build_items(db, project=project, prompt_id=prompt.id) == 2
    assert projects_service.build_items(db, project=project, prompt_id=prompt.id) == 0
    items = db.scalars(select(Item).where(Item.prompt_id == prompt.id)).all()
    assert {(i.kind, i.candidate_b_id) for i in items} == {(ItemKind.SINGLE, None)}


def test_build_items_ignores_a_prompt_of_another_project(db: Session) -> None:
    project, other = make_project(db), make_project(db)
    prompt = make_prompt(db, other, candidates=["a", "b"])
    assert projects_service.build_items(db, project=project, prompt_id=prompt.id) == 0


def test_prompts_without_candidates_skips_complete_and_imported_prompts(db: Session) -> None:
    project = make_project(db)
    waiting = make_prompt(db, project, "waiting")
    half = make_prompt(db, project, "half")
    done = make_prompt(db, project, "done")
    make_prompt(db, project, "imported", candidates=["x", "y"])
    projects_service.add_candidate(
        db, prompt_id=half.id, text="h", source=CandidateSource.MODEL, config_key="cfg", sample_index=0
    )
    for index in range(2):
        projects_service.add_candidate(
            db,
            prompt_id=done.id,
            text="d",
            source=CandidateSource.MODEL,
            config_key="cfg",
            sample_index=index,
        )
    found = projects_service.prompts_without_candidates(
        db, project_id=project.id, config_key="cfg", n=2, limit=10
    )
    assert [p.id for p in found] == [waiting.id, half.id]
    assert (
        len(
            projects_service.prompts_without_candidates(
                db, project_id=project.id, config_key="cfg", n=2, limit=1
            )
        )
        == 1
    )


def test_project_stats_counts_prompts_candidates_items_and_judgements(db: Session) -> None:
    project = make_project(db, overlap_k=2)
    make_prompt(db, project)
    prompt = make_prompt(db, project, candidates=["a", "b", "c"])
    projects_service.build_items(db, project=project, prompt_id=prompt.id)
    items = db.scalars(select(Item).where(Item.prompt_id == prompt.id).order_by(Item.id)).all()
    items[0].judgement_count, items[1].judgement_count = 2, 1
    db.flush()
    assert projects_service.project_stats(db, project.id) == {
        "prompts": 2,
        "prompts_with_candidates": 1,
        "candidates": 3,
        "items": 3,
        "items_complete": 1,
        "judgements": 3,
    }
    empty = make_project(db)
    assert set(projects_service.project_stats(db, empty.id).values()) == {0}
    assert (db.scalar(select(func.count()).select_from(Item)) or 0) >= 3
