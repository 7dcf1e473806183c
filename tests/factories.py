"""Plain factory functions: rows built directly, flushed, returned."""

from __future__ import annotations

import itertools
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.accounts import service as accounts_service
from app.accounts.models import Role, User
from app.db import utcnow
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
from app.web.csrf import SESSION_COOKIE, token_for

PASSWORD = "correct horse battery"
_counter = itertools.count(1)
DEFAULT_ATTRIBUTES = [
    {"name": "helpfulness", "low": "not helpful at all", "high": "as helpful as it could be"},
    {"name": "correctness", "low": "wrong", "high": "fully correct"},
]


def make_user(session: Session, role: Role = Role.ANNOTATOR, username: str | None = None) -> User:
    name = username or f"{role.value}{next(_counter)}"
    # Low-cost argon2 parameters would diverge from production; the hash cost is paid once per user.
    return accounts_service.create_user(session, username=name, password=PASSWORD, role=role)


def make_project(session: Session, *, mode: Mode = Mode.PAIRWISE, overlap_k: int = 2,
                 members: list[User] | None = None, **fields: Any) -> Project:
    # Repeats are opt-in here: a repeat adds a judgement that tests of the regular work do not expect.
    fields.setdefault("repeat_rate", 0.0)
    project = Project(name=fields.pop("name", f"project {next(_counter)}"), mode=mode, overlap_k=overlap_k,
                      attributes=fields.pop("attributes", DEFAULT_ATTRIBUTES if mode == Mode.LIKERT else []),
                      lease_minutes=fields.pop("lease_minutes", 30), generation={}, **fields)
    session.add(project)
    session.flush()
    for user in members or []:
        session.add(ProjectMember(project_id=project.id, user_id=user.id))
    session.flush()
    return project


def make_prompt(session: Session, project: Project, text: str = "Say hello.",
                candidates: list[str] | None = None) -> Prompt:
    prompt = Prompt(project_id=project.id, messages=[{"role": "user", "content": text}], meta={})
    session.add(prompt)
    session.flush()
    for i, body in enumerate(candidates or []):
        session.add(Candidate(prompt_id=prompt.id, text=body, source=CandidateSource.IMPORT,
                              config_key="import", sample_index=i))
    session.flush()
    return prompt


def make_pair_item(session: Session, project: Project, text: str = "Say hello.",
                   a: str = "Hello!", b: str = "Go away.") -> Item:
    prompt = make_prompt(session, project, text, [a, b])
    cands = sorted(session.query(Candidate).filter_by(prompt_id=prompt.id), key=lambda c: c.id)
    item = Item(project_id=project.id, prompt_id=prompt.id, kind=ItemKind.PAIR, candidate_a_id=cands[0].id,
                candidate_b_id=cands[1].id, open_slots=project.overlap_k)
    session.add(item)
    session.flush()
    return item


def make_single_item(session: Session, project: Project, text: str = "Say hello.", body: str = "Hi!") -> Item:
    prompt = make_prompt(session, project, text, [body])
    cand = session.query(Candidate).filter_by(prompt_id=prompt.id).one()
    item = Item(project_id=project.id, prompt_id=prompt.id, kind=ItemKind.SINGLE, candidate_a_id=cand.id,
                open_slots=project.overlap_k)
    session.add(item)
    session.flush()
    return item


def login(client: TestClient, session: Session, user: User) -> str:
    """Sign `client` in as `user` (cookie set); returns the CSRF token for its forms."""
    raw = accounts_service.start_session(session, user=user, now=utcnow(), hours=1)
    session.flush()
    client.cookies.set(SESSION_COOKIE, raw)
    return token_for(raw)


def bearer(session: Session, user: User) -> dict[str, str]:
    _, raw = accounts_service.create_api_token(session, user=user, name="test")
    session.flush()
    return {"Authorization": f"Bearer {raw}"}


def make_judgement(session: Session, item: Item, annotator: User, choice: str | None = None,
                   strength: int | None = None, *, swapped: bool = False,
                   ratings: dict[str, int] | None = None, rationale: str = "", flags: list[str] | None = None,
                   seconds: float | None = None) -> Any:
    """A submitted judgement (canonical `choice`) on `item`, with the completed Lease it requires."""
    import uuid
    from datetime import timedelta

    from app.annotation.models import Judgement, Rating
    from app.assignment.models import Lease

    now = utcnow()
    lease = Lease(item_id=item.id, annotator_id=annotator.id, project_id=item.project_id, swapped=swapped,
                  expires_at=now + timedelta(minutes=30), completed_at=now)
    session.add(lease)
    session.flush()
    judgement = Judgement(project_id=item.project_id, item_id=item.id, lease_id=lease.id,
                          annotator_id=annotator.id, choice=choice, strength=strength, swapped=swapped,
                          rationale=rationale, flags=flags or [], seconds=seconds,
                          idempotency_key=uuid.uuid4().hex)
    session.add(judgement)
    session.flush()
    for attribute, value in (ratings or {}).items():
        session.add(Rating(judgement_id=judgement.id, attribute=attribute, value=value))
    item.judgement_count += 1
    item.open_slots = max(0, item.open_slots - 1)
    session.flush()
    return judgement


def make_user_without_password(session: Session, role: Role = Role.ANNOTATOR) -> User:
    """A user who never signs in with a password (login() and bearer() need none): skips argon2's cost."""
    n = next(_counter)
    user = User(username=f"{role.value}-np{n}", display_name=f"{role.value} {n}", password_hash="!",
                role=role)
    session.add(user)
    session.flush()
    return user


def make_guideline_version(session: Session, project: Project, author: User,
                           body: str = "# Rules\n\nBe fair.", summary: str = "first version", *,
                           publish: bool = True, requires_recalibration: bool = False) -> Any:
    """A guideline version of `project` (published unless publish=False), through the service."""
    from app.guidelines import service as guidelines_service

    version = guidelines_service.create_draft(session, project_id=project.id, author=author, body=body,
                                              now=utcnow())
    if publish:
        guidelines_service.publish(session, project_id=project.id, version_id=version.id, actor=author,
                                   summary=summary, requires_recalibration=requires_recalibration,
                                   now=utcnow())
    return version
def make_gold(session: Session, item: Item, choice: str | None = "a", *, purpose: str = "gold",
              ranges: dict[str, tuple[int, int]] | None = None, explanation: str = "Because.") -> Any:
    """Turn `item` into a gold (or calibration) item with this expected answer, as an admin would."""
    from app.gold import service as gold_service
    from app.gold.schemas import GoldAnswerIn

    admin = session.query(User).filter_by(role=Role.ADMIN).first()
    admin = admin or make_user_without_password(session, Role.ADMIN)
    project = session.get(Project, item.project_id)
    assert project is not None
    data = GoldAnswerIn(purpose=purpose, choice=None if ranges else choice,  # type: ignore[arg-type]
                        ranges=ranges or {}, explanation=explanation)
    return gold_service.mark(session, project=project, item_id=item.id, data=data, actor=admin, now=utcnow())
