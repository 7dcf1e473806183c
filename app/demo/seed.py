"""The demo: users with known passwords, a pairwise project with the bundled prompts, a generation run.

Idempotent: running it again on the same database changes nothing and reports the same logins.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.accounts import service as accounts_service
from app.accounts.models import Role, User
from app.demo import PROMPTS_PATH
from app.generation import service as generation_service
from app.projects import service as projects_service
from app.projects.models import Mode, Project
from app.projects.schemas import ProjectCreate

PROJECT_NAME = "Demo: helpful assistant replies"


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: Role


DEMO_LOGINS = (
    DemoLogin("admin", "demo-admin-pass", Role.ADMIN),
    DemoLogin("alice", "demo-alice-pass", Role.ANNOTATOR),
    DemoLogin("bob", "demo-bob-pass", Role.ANNOTATOR),
    DemoLogin("rita", "demo-rita-pass", Role.RESEARCHER),
)


def _ensure_user(session: Session, login: DemoLogin) -> User:
    existing = accounts_service.get_user_by_name(session, login.username)
    if existing is not None:
        return existing
    return accounts_service.create_user(
        session,
        username=login.username,
        password=login.password,
        role=login.role,
        display_name=login.username.capitalize(),
    )


def _ensure_project(session: Session, admin: User, members: list[User]) -> Project:
    for existing in projects_service.list_for_user(session, admin):
        if existing.name == PROJECT_NAME:
            return existing
    data = ProjectCreate(
        name=PROJECT_NAME,
        mode=Mode.PAIRWISE,
        overlap_k=2,
        lease_minutes=30,
        candidates_per_prompt=2,
        description="Two SmolLM2 answers per prompt: pick the better one, say how much better, and why.",
        # The 135M model runs to the 160-token budget on about two answers in three: the demo keeps those
        # (their candidates still carry the "long" flag) so that every prompt gets its pair quickly;
        # new projects leave flagged outputs out by default.
        generation={"model": "", "max_new_tokens": 160, "temperature": 0.8, "top_p": 0.95, "seed": 0,
                    "include_flagged": True},
    )
    project = projects_service.create_project(session, data=data, creator=admin)
    for member in members:
        projects_service.add_member(session, project=project, user_id=member.id)
    projects_service.import_prompts(
        session, project=project, filename=PROMPTS_PATH.name, content=PROMPTS_PATH.read_bytes(), actor=admin
    )
    generation_service.start_run(session, project=project, actor=admin)
    return project


def seed(session: Session) -> Project:
    users = {login.username: _ensure_user(session, login) for login in DEMO_LOGINS}
    others = [u for name, u in users.items() if name != "admin"]
    return _ensure_project(session, users["admin"], others)
