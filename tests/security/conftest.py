"""Fixtures of the security tests: the two-project world and a client that does not follow redirects."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.main import create_app
from tests.security import world as world_module
from tests.security.world import World


@pytest.fixture
def world(db: Session) -> World:
    return world_module.build(db)


@pytest.fixture
def client(settings: Settings, session_factory: sessionmaker[Session]) -> Iterator[TestClient]:
    app = create_app(settings, session_factory=session_factory)
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        yield client
