"""The web application factory. Nothing in app/ imports this module."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session, sessionmaker

from app import migrate
from app.accounts.routes import api as accounts_api
from app.accounts.routes import router as accounts_router
from app.accounts.throttle import LoginThrottle
from app.agreement.routes import api as agreement_api
from app.agreement.routes import router as agreement_router
from app.annotation.fastlane import FastLane
from app.annotation.routes import api as annotation_api
from app.annotation.routes import router as annotation_router
from app.arena.routes import api as arena_api
from app.arena.routes import router as arena_router
from app.audit.routes import api as audit_api
from app.audit.routes import router as audit_router
from app.config import Settings, get_settings
from app.db import make_engine, make_session_factory
from app.export.routes import api as export_api
from app.export.routes import router as export_router
from app.generation.routes import api as generation_api
from app.generation.routes import router as generation_router
from app.gold.routes import api as gold_api
from app.gold.routes import router as gold_router
from app.guidelines.routes import api as guidelines_api
from app.guidelines.routes import router as guidelines_router
from app.projects.routes import api as projects_api
from app.projects.routes import router as projects_router
from app.training.routes import api as training_api
from app.training.routes import router as training_router
from app.web import handlers, openapi
from app.web.csrf import require_csrf
from app.web.limits import ConcurrencyLimit
from app.web.security import SecurityHeaders
from app.web.templating import ROOT

API_DESCRIPTION = """Everything the browser does, as JSON. Authenticate with `Authorization: Bearer <token>`;
researchers and admins create tokens on their account page (or `prefstudio users token`)."""


class DatabaseNotMigrated(RuntimeError):
    pass


def _default_session_factory(settings: Settings) -> sessionmaker[Session]:
    if not settings.database_url:
        raise RuntimeError("no database URL: start the app with `prefstudio serve`, which starts Postgres")
    engine = make_engine(settings.database_url, pool_size=settings.db_pool_size,
                         max_overflow=settings.db_max_overflow)
    if not migrate.is_up_to_date(engine):
        engine.dispose()
        raise DatabaseNotMigrated(
            f"the database is not migrated to the newest schema ({migrate.head_revision()}): "
            "run `prefstudio db upgrade` first"
        )
    return make_session_factory(engine)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    if app.state.owns_engine:  # an engine the app made itself goes with it (tests start many apps)
        app.state.session_factory.kw["bind"].dispose()


def create_app(
    settings: Settings | None = None, session_factory: sessionmaker[Session] | None = None
) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="prefstudio",
        version="0.1.0",
        description=API_DESCRIPTION,
        dependencies=[Depends(require_csrf)],
        docs_url="/api/docs",
        redoc_url=None,
        # No request body larger than an allowed upload (plus the form around it): 413 before parsing.
        max_body_size=(settings.max_upload_mb + 1) * 1024 * 1024,
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.owns_engine = session_factory is None
    app.state.session_factory = session_factory or _default_session_factory(settings)
    app.state.login_throttle = LoginThrottle(per_account=settings.login_failures_per_account,
                                             per_address=settings.login_failures_per_address,
                                             window_seconds=settings.login_window_minutes * 60)
    app.add_middleware(FastLane)  # inside the door and the headers: bearer next/judgement, lean path only
    app.add_middleware(ConcurrencyLimit, limit=settings.db_pool_size)
    app.add_middleware(SecurityHeaders)
    handlers.install(app)
    openapi.install(app)
    app.mount("/static", StaticFiles(directory=str(ROOT / "static")), name="static")
    routers = (accounts_router, projects_router, generation_router, annotation_router, export_router,
               guidelines_router, audit_router, gold_router, agreement_router, arena_router, training_router)
    apis = (annotation_api, accounts_api, projects_api, generation_api, export_api, guidelines_api,
            audit_api, gold_api, agreement_api, arena_api, training_api)
    # FastAPI tries every route in turn until one matches, so the annotation API (the hot path: every
    # annotator asks for an item and submits it, over and over) goes first. No HTML page lives under
    # /api/, and no other API route shares a path with these, so the order changes no route's match.
    for api in apis:
        app.include_router(api, prefix="/api/v1")
    for router in routers:
        app.include_router(router, include_in_schema=False)  # HTML pages: the OpenAPI schema is the JSON API
    return app
