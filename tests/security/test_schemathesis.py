"""Schemathesis against /openapi.json, as an admin and as an annotator (bearer tokens): no 5xx, every response
matches its documented schema, and authentication is not ignored (the same call without the token is
refused). Bounded: a few examples per operation, so the whole run stays under a minute."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import ignored_auth, not_a_server_error, response_schema_conformance
from sqlalchemy.orm import Session, sessionmaker

from app.accounts import service as accounts_service
from app.accounts.models import Role
from app.config import Settings
from app.main import create_app
from tests.factories import make_pair_item, make_project, make_user_without_password

CHECKS = [not_a_server_error, response_schema_conformance, ignored_auth]


def _app(settings: Settings, session_factory: sessionmaker[Session], db: Session) -> tuple[Any, list[str]]:
    app = create_app(settings, session_factory=session_factory)
    admin = make_user_without_password(db, Role.ADMIN)
    annotator = make_user_without_password(db)
    project = make_project(db, members=[annotator])
    make_pair_item(db, project)
    tokens = [accounts_service.create_api_token(db, user=user, name="fuzz")[1] for user in (admin, annotator)]
    return app, tokens


def test_the_api_holds_to_its_schema(settings: Settings, session_factory: sessionmaker[Session],
                                     db: Session) -> None:
    app, tokens = _app(settings, session_factory, db)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30
    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis_settings(max_examples=3, deadline=None, phases=[Phase.generate], database=None,
                             suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            for token in tokens:
                case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)

        try:
            run()
        except Exception as exc:  # collect every operation's failure, then report them together
            failures.append(f"{operation.label}: {str(exc)[:600]}")
    assert not failures, "\n\n".join(failures)
