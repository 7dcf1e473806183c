"""Projects: settings, membership, prompts, candidates, and the items built from them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import psycopg
from sqlalchemy import ARRAY, Select, String, any_, bindparam, distinct, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.accounts.models import Role, User
from app.accounts.service import UserLookup
from app.audit import service as audit_service
from app.config import get_settings
from app.errors import Conflict, Invalid, NotFound, PermissionDenied
from app.projects import bulk, design, importer
from app.projects.import_rows import PromptRow, RowError
from app.projects.models import (
    Candidate,
    CandidateSource,
    Item,
    ItemKind,
    Mode,
    Project,
    ProjectMember,
    Prompt,
)
from app.projects.schemas import QUALITY_FIELDS, ImportResult, ProjectCreate, ProjectUpdate

IMPORT_CONFIG_KEY = "import"
CANDIDATE_COLUMNS = ("id", "prompt_id", "text", "source", "config_key", "sample_index", "model", "revision",
                     "params")
ITEM_COLUMNS = ("project_id", "prompt_id", "kind", "candidate_a_id", "candidate_b_id", "open_slots",
                "judgement_count")
SETTINGS_FIELDS = ("name", "description", "mode", "attributes", "overlap_k", "lease_minutes",
                   "candidates_per_prompt", "generation", *QUALITY_FIELDS)


def is_member(session: Session, *, project_id: int, user_id: int) -> bool:
    return session.get(ProjectMember, (project_id, user_id)) is not None


@dataclass(frozen=True)
class Access:
    """What a user may know of one project: the row (None: there is no such project) and membership."""

    project_id: int
    project: Project | None
    member: bool


def get_for_user(session: Session, *, project_id: int, user: User) -> Project:
    """The project if `user` may see it: admins see every project, others only their projects' (403).

    One query for the project and the membership.
    """
    member = select(ProjectMember.user_id).where(ProjectMember.project_id == Project.id,
                                                 ProjectMember.user_id == user.id).exists()
    row = session.execute(select(Project, member).where(Project.id == project_id)).one_or_none()
    access = Access(project_id, row[0] if row else None, bool(row and row[1]))
    return check_access(access, user)


def check_access(access: Access, user: User) -> Project:
    """The project of `access` if `user` may see it (NotFound, PermissionDenied otherwise)."""
    if access.project is None:
        raise NotFound("no such project")
    if user.role != Role.ADMIN and not access.member:
        raise PermissionDenied("you are not a member of this project")
    return access.project


def user_with_access(session: Session, users: UserLookup, *,
                     project_id: int) -> tuple[User, Access] | None:
    """The user `users` finds (None: nobody) and, in the same query, their access to one project.

    For requests that name a project: signing in and the project check then cost one query, not three.
    The statement is built once per kind of lookup (every request runs it).
    """
    statement = _WITH_ACCESS.get(id(users.statement))
    if statement is None:
        member = select(ProjectMember.user_id).where(ProjectMember.project_id == bindparam("access_project"),
                                                     ProjectMember.user_id == User.id).exists()
        statement = (users.statement.add_columns(Project, member)
                     .outerjoin(Project, Project.id == bindparam("access_project")))
        _WITH_ACCESS[id(users.statement)] = statement
    row = session.execute(statement, {**users.params, "access_project": project_id}).first()
    if row is None:
        return None
    user, project, is_member = row
    return user, Access(project_id, project, bool(is_member))


# Per lookup statement (module-level constants of app.accounts.service, which live as long as this).
_WITH_ACCESS: dict[int, Select[Any]] = {}


def list_for_user(session: Session, user: User) -> list[Project]:
    query = select(Project).order_by(Project.id)
    if user.role != Role.ADMIN:
        query = query.join(ProjectMember, ProjectMember.project_id == Project.id).where(
            ProjectMember.user_id == user.id)
    return list(session.scalars(query))


def settings_of(project: Project) -> dict[str, Any]:
    return {name: getattr(project, name) for name in SETTINGS_FIELDS}


def _save_with_unique_name(session: Session, name: str, change: Callable[[], None]) -> None:
    """Applies `change` and flushes inside a savepoint, so a taken name undoes only this change.

    The change must happen inside: begin_nested() first flushes what is pending, outside the savepoint.
    """
    try:
        with session.begin_nested():
            change()
            session.flush()
    except IntegrityError as exc:
        raise Conflict(f"a project named {name!r} already exists", field="name") from exc


def create_project(session: Session, *, data: ProjectCreate, creator: User) -> Project:
    project = Project(name=data.name, description=data.description, mode=data.mode,
                      attributes=[a.model_dump() for a in data.attributes or []], overlap_k=data.overlap_k,
                      lease_minutes=data.lease_minutes, candidates_per_prompt=data.candidates_per_prompt or 1,
                      generation=data.generation.model_dump(), created_by_id=creator.id,
                      **{name: getattr(data, name) for name in QUALITY_FIELDS})
    _save_with_unique_name(session, data.name, lambda: session.add(project))
    audit_service.record(session, actor_id=creator.id, action="project.create", project_id=project.id,
                         target=project.name, after=settings_of(project))
    return project


def _check_update(session: Session, project: Project, changes: dict[str, Any]) -> None:
    if project.mode == Mode.PAIRWISE and changes.get("candidates_per_prompt", 2) < 2:
        raise Invalid("a pairwise project needs at least 2 candidates per prompt",
                      field="candidates_per_prompt")
    if "attributes" in changes:
        if project.mode != Mode.LIKERT:
            raise Invalid("only Likert projects have attributes", field="attributes")
        has_items = session.scalar(select(Item.id).where(Item.project_id == project.id).limit(1))
        if has_items is not None:
            raise Invalid("the attributes cannot change once the project has items to rate",
                          field="attributes")


def update_project(session: Session, *, project: Project, data: ProjectUpdate, actor: User) -> Project:
    """Changes only the fields sent. A new overlap k moves every item's open slots by the difference."""
    changes = {name: value for name, value in data.model_dump(exclude_none=True).items()
               if value != getattr(project, name)}
    _check_update(session, project, changes)
    before = {name: getattr(project, name) for name in changes}

    def change() -> None:
        for name, value in changes.items():
            setattr(project, name, value)

    _save_with_unique_name(session, changes.get("name", project.name), change)  # before the items move
    if "overlap_k" in changes:
        delta = changes["overlap_k"] - before["overlap_k"]
        session.execute(update(Item).where(Item.project_id == project.id)
                        .values(open_slots=func.greatest(Item.open_slots + delta, 0)))
    if changes:
        audit_service.record(session, actor_id=actor.id, action="project.update", project_id=project.id,
                             target=project.name, before=before, after=changes)
    return project


def list_members(session: Session, project_id: int) -> list[User]:
    query = (select(User).join(ProjectMember, ProjectMember.user_id == User.id)
             .where(ProjectMember.project_id == project_id).order_by(User.username))
    return list(session.scalars(query))


def addable_users(session: Session, project_id: int) -> list[User]:
    """Active annotators and researchers who are not members yet (admins see every project anyway)."""
    members = select(ProjectMember.user_id).where(ProjectMember.project_id == project_id)
    query = select(User).where(User.is_active, User.role != Role.ADMIN, User.id.not_in(members))
    return list(session.scalars(query.order_by(User.username)))


def add_member(session: Session, *, project: Project, user_id: int, actor_id: int | None = None) -> User:
    """Idempotent: adding a member twice keeps one membership (and one audit event)."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("no such user", field="user_id")
    if not is_member(session, project_id=project.id, user_id=user_id):
        session.add(ProjectMember(project_id=project.id, user_id=user_id))
        session.flush()
        audit_service.record(session, actor_id=actor_id, action="member.add", project_id=project.id,
                             target=user.username, after={"user_id": user_id, "role": user.role})
    return user


def remove_member(session: Session, *, project: Project, user_id: int, actor_id: int | None = None) -> None:
    member = session.get(ProjectMember, (project.id, user_id))
    if member is None:
        raise NotFound("that user is not a member of this project", field="user_id")
    user = session.get(User, user_id)
    session.delete(member)
    session.flush()
    audit_service.record(session, actor_id=actor_id, action="member.remove", project_id=project.id,
                         target=user.username if user else str(user_id), before={"user_id": user_id})


def _known_external_ids(session: Session, project_id: int, rows: list[PromptRow]) -> list[RowError]:
    row_of = {r.external_id: r.row for r in rows if r.external_id is not None}
    if not row_of:
        return []
    # One round trip whatever the file's size: the ids travel as a single array parameter.
    known = session.scalars(select(Prompt.external_id).where(
        Prompt.project_id == project_id,
        Prompt.external_id == any_(bindparam("ids", list(row_of), type_=ARRAY(String)))))
    return [RowError(row_of[i], "external_id", f"{i!r} is already in this project") for i in known if i]


def import_prompts(session: Session, *, project: Project, filename: str, content: bytes, actor: User,
                   max_rows: int | None = None) -> ImportResult:
    """All or nothing: any bad row raises Invalid listing every problem (row, field, message), and no row
    is stored. Prompts that came with candidates get their items at once; the rest wait for generation."""
    limit = max_rows if max_rows is not None else get_settings().max_import_rows
    parsed = importer.parse_file(filename, content, max_rows=limit)
    errors = parsed.errors + _known_external_ids(session, project.id, parsed.rows)
    if errors:
        raise importer.problem_report(errors, parsed.format)
    result = _store_import(session, project, parsed.rows)
    audit_service.record(session, actor_id=actor.id, action="prompts.import", project_id=project.id,
                         target=filename, after={"format": parsed.format, **result.model_dump()})
    return result


def _store_import(session: Session, project: Project, rows: list[PromptRow]) -> ImportResult:
    prompt_ids = bulk.allocate_ids(session, "prompts", len(rows))
    try:
        bulk.copy_rows(session, "prompts", ("id", "project_id", "external_id", "messages", "meta"), (
            (prompt_id, project.id, r.external_id, bulk.jsonb(r.messages), bulk.jsonb(r.meta))
            for prompt_id, r in zip(prompt_ids, rows, strict=True)))
    except psycopg.errors.UniqueViolation as exc:
        raise Conflict("another import added some of these external ids just now; nothing was imported",
                       field="external_id") from exc
    with_candidates = [(i, r.candidates) for i, r in zip(prompt_ids, rows, strict=True) if r.candidates]
    fresh = iter(bulk.allocate_ids(session, "candidates", sum(len(c) for _, c in with_candidates)))
    candidate_ids = {prompt_id: [next(fresh) for _ in texts] for prompt_id, texts in with_candidates}
    bulk.copy_rows(session, "candidates", CANDIDATE_COLUMNS, (
        (candidate_id, prompt_id, text, CandidateSource.IMPORT.value, IMPORT_CONFIG_KEY, index, "", "",
         bulk.EMPTY_JSON)
        for prompt_id, texts in with_candidates
        for index, (candidate_id, text) in enumerate(zip(candidate_ids[prompt_id], texts, strict=True))))
    items = (_plan_items(project, prompt_id, ids) for prompt_id, ids in candidate_ids.items())
    item_count = bulk.copy_rows(session, "items", ITEM_COLUMNS,
                                (tuple(item[c] for c in ITEM_COLUMNS) for plan in items for item in plan))
    return ImportResult(imported=len(prompt_ids), candidates=sum(map(len, candidate_ids.values())),
                        items=item_count)


def add_candidate(session: Session, *, prompt_id: int, text: str, source: CandidateSource, config_key: str,
                  sample_index: int, model: str = "", revision: str = "",
                  params: dict[str, Any] | None = None, seed: int | None = None,
                  flags: list[str] | None = None) -> Candidate | None:
    """Idempotent on (prompt, config_key, sample_index): None when that candidate already existed."""
    statement = pg_insert(Candidate).values(
        prompt_id=prompt_id, text=text, source=source, config_key=config_key, sample_index=sample_index,
        model=model, revision=revision, params=params or {}, seed=seed, flags=flags or [],
    ).on_conflict_do_nothing(index_elements=["prompt_id", "config_key", "sample_index"])
    return session.scalar(statement.returning(Candidate))


def _plan_items(project: Project, prompt_id: int, candidate_ids: Sequence[int]) -> list[dict[str, Any]]:
    base = {"project_id": project.id, "prompt_id": prompt_id, "open_slots": project.overlap_k,
            "judgement_count": 0}
    if project.mode == Mode.LIKERT:
        return [{**base, "kind": ItemKind.SINGLE.value, "candidate_a_id": c, "candidate_b_id": None}
                for c in sorted(candidate_ids)]
    return [{**base, "kind": ItemKind.PAIR.value, "candidate_a_id": a, "candidate_b_id": b}
            for a, b in design.pairs_of_ids(list(candidate_ids), seed=prompt_id)]


def _insert_items(session: Session, rows: list[dict[str, Any]]) -> int:
    """Inserts the items that do not exist yet (unique pair, unique single); returns how many were new."""
    if not rows:
        return 0
    return len(session.scalars(pg_insert(Item).on_conflict_do_nothing().returning(Item.id), rows).all())


def build_items(session: Session, *, project: Project, prompt_id: int) -> int:
    """Creates the prompt's missing items from its candidates; idempotent, safe to run concurrently.

    Flagged candidates (empty, cut off, repetitive) are left out unless the project's generation settings
    say `include_flagged`. Candidates of two or more configs are paired across configs only, sample i of
    one with sample i of the other, so annotators compare models blind. Otherwise pairwise takes every
    pair up to 4 candidates, a balanced sample of 2n pairs above (design.py). Call it once the prompt has
    all its candidates: a larger n gives a different sample, and earlier pairs stay.
    """
    query = (select(Candidate.id, Candidate.config_key, Candidate.sample_index,
                    func.jsonb_array_length(Candidate.flags).label("flags"))
             .join(Prompt, Prompt.id == Candidate.prompt_id)
             .where(Candidate.prompt_id == prompt_id, Prompt.project_id == project.id).order_by(Candidate.id))
    every = session.execute(query).all()
    # decided before filtering (a config whose answer was flagged still counts), on model configs only
    cross = len({r.config_key for r in every if r.config_key != IMPORT_CONFIG_KEY}) > 1
    include_flagged = bool((project.generation or {}).get("include_flagged"))
    rows = [r for r in every if include_flagged or not r.flags]
    if project.mode == Mode.PAIRWISE and cross:
        base = {"project_id": project.id, "prompt_id": prompt_id, "open_slots": project.overlap_k,
                "judgement_count": 0, "kind": ItemKind.PAIR.value}
        pairs = [{**base, "candidate_a_id": a.id, "candidate_b_id": b.id} for a, b in combinations(rows, 2)
                 if a.config_key != b.config_key and a.sample_index == b.sample_index]
        return _insert_items(session, pairs)
    return _insert_items(session, _plan_items(project, prompt_id, [r.id for r in rows]))


def has_candidates(session: Session, *, prompt_id: int, config_keys: Sequence[str], n: int) -> bool:
    """Whether the prompt has at least `n` candidates under each of `config_keys`."""
    rows = session.execute(select(Candidate.config_key, func.count(Candidate.id))
                           .where(Candidate.prompt_id == prompt_id,
                                  Candidate.config_key.in_(list(config_keys)))
                           .group_by(Candidate.config_key))
    counts = {key: count for key, count in rows}
    return all(counts.get(key, 0) >= n for key in config_keys)


def prompts_without_candidates(session: Session, *, project_id: int, config_key: str, n: int,
                               limit: int) -> list[Prompt]:
    """Prompts with fewer than `n` candidates under `config_key`, oldest first. Prompts imported with
    their own candidates are left out: they never wait for generation."""
    count = (select(func.count(Candidate.id))
             .where(Candidate.prompt_id == Prompt.id, Candidate.config_key == config_key).scalar_subquery())
    imported = select(Candidate.id).where(Candidate.prompt_id == Prompt.id,
                                          Candidate.source == CandidateSource.IMPORT).exists()
    query = (select(Prompt).where(Prompt.project_id == project_id, count < n, ~imported)
             .order_by(Prompt.id).limit(limit))
    return list(session.scalars(query))


def project_stats(session: Session, project_id: int) -> dict[str, int]:
    """Counts: prompts, prompts_with_candidates, candidates, items, items_complete (judged by k
    annotators), judgements (the sum of the items' judgement counts)."""
    prompt_ids = select(Prompt.id).where(Prompt.project_id == project_id)
    prompts = session.scalar(select(func.count()).select_from(prompt_ids.subquery())) or 0
    with_candidates, candidates = session.execute(
        select(func.count(distinct(Candidate.prompt_id)), func.count(Candidate.id))
        .where(Candidate.prompt_id.in_(prompt_ids))).one()
    items, complete, judgements = session.execute(
        select(func.count(Item.id), func.count(Item.id).filter(Item.judgement_count >= Project.overlap_k),
               func.coalesce(func.sum(Item.judgement_count), 0))
        .join(Project, Project.id == Item.project_id).where(Item.project_id == project_id)).one()
    return {"prompts": prompts, "prompts_with_candidates": with_candidates, "candidates": candidates,
            "items": items, "items_complete": complete, "judgements": int(judgements)}


def list_with_stats(session: Session, user: User) -> list[tuple[Project, dict[str, int]]]:
    return [(project, project_stats(session, project.id)) for project in list_for_user(session, user)]


def overview(session: Session, *, project: Project) -> dict[str, Any]:
    """What the project page shows besides the settings: counts, members, users who could join."""
    return {"stats": project_stats(session, project.id), "members": list_members(session, project.id),
            "addable": addable_users(session, project.id)}
