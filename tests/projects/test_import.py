"""Importing prompt files into a project: all or nothing, bulk, items built for imported candidates."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts.models import Role
from app.audit.models import AuditEvent
from app.errors import Invalid
from app.projects import service as projects_service
from app.projects.models import Candidate, CandidateSource, Item, ItemKind, Mode, Project, Prompt
from tests.factories import make_project, make_user


def _jsonl(*rows: Any) -> bytes:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows).encode()


def _counts(db: Session, project: Project) -> tuple[int, int, int]:
    prompts = db.scalar(select(func.count()).select_from(Prompt).where(Prompt.project_id == project.id))
    candidates = db.scalar(
        select(func.count()).select_from(Candidate).join(Prompt).where(Prompt.project_id == project.id)
    )
    items = db.scalar(select(func.count()).select_from(Item).where(Item.project_id == project.id))
    return prompts or 0, candidates or 0, items or 0


def test_jsonl_import_stores_conversations_candidates_ids_metadata_and_builds_items(db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    project = make_project(db, overlap_k=3)
    content = _jsonl(
        {"prompt": "Say hi.", "external_id": "a"},
        {
            "messages": [
                {"role": "user", "content": "2+2?"},
                {"role": "assistant", "content": "4"},
                {"role": "user", "content": "3+3?"},
            ],
            "external_id": "b",
        },
        {
            "prompt": "Be brief.",
            "system": "You are terse.",
            "candidates": ["ok", "fine", "sure"],
            "external_id": "c",
            "metadata": {"topic": "style"},
        },
    )
    result = projects_service.import_prompts(
        db, project=project, filename="p.jsonl", content=content, actor=admin
    )
    assert result.model_dump() == {"imported": 3, "candidates": 3, "items": 3}
    prompts = {p.external_id: p for p in db.scalars(select(Prompt).where(Prompt.project_id == project.id))}
    assert prompts["a"].messages == [{"role": "user", "content": "Say hi."}]
    assert len(prompts["b"].messages) == 3
    assert prompts["c"].messages[0] == {"role": "system", "content": "You are terse."}
    assert prompts["c"].meta == {"topic": "style"}
    candidates = db.scalars(
        select(Candidate).where(Candidate.prompt_id == prompts["c"].id).order_by(Candidate.sample_index)
    ).all()
    assert [(c.text, c.source, c.sample_index) for c in candidates] == [
        ("ok", CandidateSource.IMPORT, 0),
        ("fine", CandidateSource.IMPORT, 1),
        ("sure", CandidateSource.IMPORT, 2),
    ]
    items = db.scalars(select(Item).where(Item.prompt_id == prompts["c"].id)).all()
    assert len(items) == 3 and {(i.kind, i.open_slots) for i in items} == {(ItemKind.PAIR, 3)}
    waiting = projects_service.prompts_without_candidates(
        db, project_id=project.id, config_key="gen", n=2, limit=10
    )
    assert {p.external_id for p in waiting} == {"a", "b"}
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "prompts.import")).one()
    assert event.project_id == project.id and event.after == {
        "format": "jsonl",
        "imported": 3,
        "candidates": 3,
        "items": 3,
    }


def test_csv_import_with_candidate_columns_into_a_likert_project(db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    project = make_project(db, mode=Mode.LIKERT)
    content = (
        b"external_id,prompt,system,candidate_1,candidate_2,topic\n"
        b"q1,What is 2+2?,Be exact.,4,four,math\n"
        b"q2,Write a haiku,,,,poetry\n"
    )
    result = projects_service.import_prompts(
        db, project=project, filename="prompts.csv", content=content, actor=admin
    )
    assert result.model_dump() == {"imported": 2, "candidates": 2, "items": 2}
    q1 = db.scalars(select(Prompt).where(Prompt.external_id == "q1", Prompt.project_id == project.id)).one()
    assert q1.meta == {"topic": "math"} and q1.messages[0]["role"] == "system"
    kinds = db.scalars(select(Item.kind).where(Item.prompt_id == q1.id)).all()
    assert kinds == [ItemKind.SINGLE, ItemKind.SINGLE]


def test_a_bad_file_imports_nothing_and_reports_every_bad_row(db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    project = make_project(db)
    projects_service.import_prompts(
        db,
        project=project,
        filename="a.jsonl",
        actor=admin,
        content=_jsonl({"prompt": "first", "candidates": ["x", "y"]}),
    )
    before = _counts(db, project)
    content = _jsonl(
        {"prompt": "good", "candidates": ["a", "b"]},
        "{oops",
        {"prompt": "  "},
        {"messages": [{"role": "wizard", "content": "hi"}]},
        {"prompt": "also good"},
    )
    with pytest.raises(Invalid) as caught:
        projects_service.import_prompts(db, project=project, filename="b.jsonl", content=content, actor=admin)
    assert caught.value.message == "3 rows have problems; nothing was imported"
    assert [(d["row"], d["field"]) for d in caught.value.details] == [
        (2, "json"),
        (3, "prompt"),
        (4, "messages[0].role"),
        (4, "messages"),
    ]
    assert _counts(db, project) == before == (1, 2, 1)


def test_external_ids_already_in_the_project_are_refused(db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    project, other = make_project(db), make_project(db)
    first = _jsonl({"prompt": "one", "external_id": "q1"}, {"prompt": "two", "external_id": "q2"})
    projects_service.import_prompts(db, project=project, filename="a.jsonl", content=first, actor=admin)
    projects_service.import_prompts(db, project=other, filename="a.jsonl", content=first, actor=admin)
    again = _jsonl({"prompt": "three", "external_id": "q3"}, {"prompt": "two again", "external_id": "q2"})
    with pytest.raises(Invalid) as caught:
        projects_service.import_prompts(db, project=project, filename="b.jsonl", content=again, actor=admin)
    assert caught.value.details == [
        {"row": 2, "field": "external_id", "message": "'q2' is already in this project"}
    ]
    assert _counts(db, project) == (2, 0, 0)


def test_csv_problems_say_how_rows_are_counted(db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    project = make_project(db)
    content = b"prompt,external_id\nhello,1\n,2\nbye,1\n"
    with pytest.raises(Invalid) as caught:
        projects_service.import_prompts(db, project=project, filename="p.csv", content=content, actor=admin)
    assert "header as row 1" in caught.value.message
    assert [(d["row"], d["field"]) for d in caught.value.details] == [(3, "prompt"), (4, "external_id")]


def test_more_rows_than_the_limit_is_refused(db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    project = make_project(db)
    content = _jsonl(*({"prompt": f"p{i}"} for i in range(4)))
    with pytest.raises(Invalid) as caught:
        projects_service.import_prompts(
            db, project=project, filename="p.jsonl", content=content, actor=admin, max_rows=3
        )
    assert caught.value.details[0]["row"] is None and "limit is 3" in caught.value.details[0]["message"]
    assert _counts(db, project) == (0, 0, 0)


def test_a_large_import_keeps_row_order_and_candidates_with_their_prompts(db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    project = make_project(db)
    rows = [
        {"prompt": f"prompt {i}", "external_id": f"id{i}", "candidates": [f"{i}a", f"{i}b"]}
        for i in range(3000)
    ]
    result = projects_service.import_prompts(
        db, project=project, filename="big.jsonl", content=_jsonl(*rows), actor=admin
    )
    assert result.model_dump() == {"imported": 3000, "candidates": 6000, "items": 3000}
    pairs = db.execute(
        select(Prompt.external_id, Candidate.text)
        .join(Candidate)
        .where(Prompt.project_id == project.id, Prompt.external_id.in_(["id7", "id2999"]))
    ).all()
    assert sorted(pairs) == [("id2999", "2999a"), ("id2999", "2999b"), ("id7", "7a"), ("id7", "7b")]
    first = db.scalars(
        select(Prompt).where(Prompt.project_id == project.id).order_by(Prompt.id).limit(1)
    ).one()
    assert first.external_id == "id0"
