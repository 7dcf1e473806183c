"""Generation configs: the models (with backend and decoding) that answer a project's prompts."""

from __future__ import annotations

from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.audit import service as audit_service
from app.errors import Conflict, Invalid, NotFound
from app.generation.models import BackendKind, GenerationConfig
from app.generation.schemas import ConfigData, ConfigForm, ConfigIn
from app.projects.models import Project
from app.projects.schemas import GenerationSettings

DEFAULT_KEY = "default"


def implicit_config(project: Project) -> ConfigData:
    """The project's own generation settings, used as the one config while it has none."""
    try:
        settings = GenerationSettings.model_validate(project.generation or {})
    except ValueError as exc:
        raise Invalid(f"the project's generation settings are not valid: {exc}", field="generation") from exc
    params = settings.model_dump(exclude={"model", "include_flagged"})
    params.update(stop=[], system_prompt="")
    return ConfigData(key=DEFAULT_KEY, backend=BackendKind.TRANSFORMERS, model=settings.model, params=params,
                      remote={}, implicit=True)


def list_configs(session: Session, *, project: Project) -> list[ConfigData]:
    """The project's configs in creation order; its implicit default config when it has none."""
    rows = session.scalars(select(GenerationConfig).where(GenerationConfig.project_id == project.id)
                           .order_by(GenerationConfig.id)).all()
    if not rows:
        return [implicit_config(project)]
    return [ConfigData(key=r.key, backend=BackendKind(r.backend), model=r.model, params=dict(r.params),
                       remote=dict(r.remote)) for r in rows]


def create_from_form(session: Session, *, project: Project, form: ConfigForm, actor: User) -> ConfigData:
    try:
        body = form.to_config()
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"]) or None
        raise Invalid(f"{field or 'config'}: {error['msg']}", field=field) from exc
    return create_config(session, project=project, body=body, actor=actor)


def create_config(session: Session, *, project: Project, body: ConfigIn, actor: User) -> ConfigData:
    """Conflict when the project already has a config with this key (the unique key backs the check)."""
    row = GenerationConfig(project_id=project.id, key=body.key, backend=body.backend, model=body.model,
                           params=body.decoding(), remote=body.remote())
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        raise Conflict(f"the project already has a config {body.key!r}", field="key") from exc
    audit_service.record(session, actor_id=actor.id, action="generation.config_create", project_id=project.id,
                         target=f"generation config {body.key}", after=body.model_dump())
    return ConfigData(key=row.key, backend=body.backend, model=row.model, params=row.params,
                      remote=row.remote)


def delete_config(session: Session, *, project: Project, key: str, actor: User) -> None:
    """Removes the config; its candidates and their judgements stay (they are data already collected)."""
    deleted = session.scalar(delete(GenerationConfig).where(GenerationConfig.project_id == project.id,
                                                            GenerationConfig.key == key)
                             .returning(GenerationConfig.id))
    if deleted is None:
        raise NotFound(f"no generation config {key!r}")
    audit_service.record(session, actor_id=actor.id, action="generation.config_delete", project_id=project.id,
                         target=f"generation config {key}")
