"""A small world with two projects and one of each kind of visitor, for the security tests.

Project A is the one under test; project B holds the objects a visitor of A must never reach through A's
URLs. Every object id a route path can name has a value in A (`ids_a`) and one in B (`ids_b`).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.accounts import service as accounts_service
from app.accounts.models import Role, User
from app.assignment import service as assignment_service
from app.db import utcnow
from app.generation import configs as configs_service
from app.generation import service as generation_service
from app.generation.schemas import ConfigIn
from app.gold import calibration
from app.projects.models import Project
from app.training import service as training_service
from app.training.schemas import TrainingForm
from app.web.csrf import token_for
from tests.factories import (
    make_gold,
    make_guideline_version,
    make_pair_item,
    make_project,
    make_prompt,
    make_user_without_password,
)

ACTORS = ("anonymous", "annotator", "other_annotator", "researcher", "admin", "disabled")


@dataclass
class Visitor:
    """How one actor authenticates: a session cookie (browser) and a bearer token (API)."""

    cookie: str | None
    bearer: str | None
    user: User | None = None

    @property
    def csrf(self) -> str:
        return token_for(self.cookie) if self.cookie else ""


@dataclass
class World:
    project_a: Project
    project_b: Project
    visitors: dict[str, Visitor]
    dual: Visitor  # an annotator of both projects, whose own objects in B are tried through A's URLs
    ids_a: dict[str, Any] = field(default_factory=dict)
    ids_b: dict[str, Any] = field(default_factory=dict)


def _visitor(db: Session, user: User) -> Visitor:
    cookie = accounts_service.start_session(db, user=user, now=utcnow(), hours=1)
    _, token = accounts_service.create_api_token(db, user=user, name="matrix")
    return Visitor(cookie, token, user)


def path_values(ids: dict[str, Any], *, route_name: str, project_id: int) -> dict[str, Any]:
    """What fills a route's path: the ids, the project, and {run_id} as the route's domain means it
    (generation runs and training runs share the name)."""
    run = ids["training_run_id" if route_name.startswith("training:") else "generation_run_id"]
    return dict(ids, project_id=project_id, run_id=run)


def _objects(db: Session, project: Project, annotator: User, admin: User, researcher: User,
             member: User) -> dict[str, Any]:
    """One of each object a path can name, in `project`: the annotator's lease and attempt."""
    make_gold(db, make_pair_item(db, project, "Calibrate me."), purpose="calibration")
    item = make_pair_item(db, project, "Judge me.")
    lease = assignment_service.claim_next_item(db, project=project, annotator=annotator, now=utcnow())
    assert lease is not None
    attempt = calibration.open_or_start(db, project=project, user_id=annotator.id, retries_left=1,
                                        now=utcnow())
    make_guideline_version(db, project, admin, body="# Rules")
    draft = make_guideline_version(db, project, admin, body="# Draft", publish=False)
    token, _ = accounts_service.create_api_token(db, user=researcher, name="revocable")
    make_prompt(db, project, "Generate for me.")  # a prompt without candidates: a generation run has work
    config = configs_service.create_config(db, project=project, body=ConfigIn(key=f"cfg{project.id}"),
                                           actor=admin)
    generation = generation_service.start_run(db, project=project, actor=admin)
    training = training_service.start_run(db, project=project, actor=researcher, form=TrainingForm(),
                                          runs_root=Path(tempfile.gettempdir()) / "prefstudio-matrix-runs")
    return {"item_id": item.id, "lease_id": lease.id, "attempt_id": attempt.id,
            "version_id": draft.id, "user_id": member.id, "token_id": token.id,
            "generation_run_id": generation.id, "training_run_id": training.id, "key": config.key}


def build(db: Session) -> World:
    admin = make_user_without_password(db, Role.ADMIN)
    annotator = make_user_without_password(db)
    other = make_user_without_password(db)
    researcher = make_user_without_password(db, Role.RESEARCHER)
    disabled = make_user_without_password(db)
    dual = make_user_without_password(db)
    project_a = make_project(db, name="project A", members=[annotator, researcher, disabled, dual])
    project_b = make_project(db, name="project B", members=[other, dual])
    visitors = {"anonymous": Visitor(None, None)}
    for name, user in (("annotator", annotator), ("other_annotator", other), ("researcher", researcher),
                       ("admin", admin), ("disabled", disabled)):
        visitors[name] = _visitor(db, user)
    world = World(project_a, project_b, visitors, _visitor(db, dual))
    world.ids_a = _objects(db, project_a, annotator, admin, researcher, annotator)
    world.ids_b = _objects(db, project_b, dual, admin, researcher, other)
    admin_token, _ = accounts_service.create_api_token(db, user=admin, name="foreign")
    world.ids_b["token_id"] = admin_token.id  # someone else's token
    disabled.is_active = False
    db.flush()
    return world
