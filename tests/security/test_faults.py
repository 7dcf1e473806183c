"""Faults: Postgres goes down mid-run. Requests during the outage get a clean 503 (JSON under /api, a page
otherwise), the app recovers by itself within 30 s of the server's return, and no acknowledged judgement
is lost. The outage is staged on a private embedded Postgres started for this test, never on the shared
server the other tests use."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app import migrate
from app.accounts import service as accounts_service
from app.annotation.models import Judgement
from app.config import Settings
from app.db import make_engine, make_session_factory, utcnow
from app.embedded_pg import EmbeddedPostgres, pg_bin
from app.main import create_app
from app.web.csrf import SESSION_COOKIE
from tests.factories import make_pair_item, make_project, make_user_without_password


def _has_postgres() -> bool:
    try:
        pg_bin("pg_ctl")
    except Exception:
        return False
    return True


pytestmark = pytest.mark.skipif(not _has_postgres(), reason="no Postgres binaries for a private server")


@pytest.fixture
def private_pg() -> Iterator[EmbeddedPostgres]:
    # Not under pytest's tmp dir (see tests/conftest.py: root runs the server as another user).
    path = Path(tempfile.mkdtemp(prefix="prefstudio-fault-"))
    try:
        with EmbeddedPostgres(path, database="faults", durable=False) as pg:
            yield pg
    finally:
        EmbeddedPostgres(path).stop(force=True)
        shutil.rmtree(path, ignore_errors=True)


def _judge(client: TestClient, project_id: int) -> int:
    item = client.get(f"/api/v1/projects/{project_id}/next").json()
    answer = client.post(f"/api/v1/projects/{project_id}/leases/{item['lease_id']}/judgement",
                         json={"choice": "a", "strength": 1, "idempotency_key": item["idempotency_key"]})
    assert answer.status_code == 201
    return int(answer.json()["id"])


def test_an_outage_gives_clean_503s_and_recovery(private_pg: EmbeddedPostgres, tmp_path: Path) -> None:
    engine = make_engine(private_pg.url, pool_size=2)
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    with factory() as db, db.begin():
        annotator = make_user_without_password(db)
        project = make_project(db, overlap_k=1, gold_rate=0.0, members=[annotator])
        for n in range(5):
            make_pair_item(db, project, f"Question {n}")
        _, token = accounts_service.create_api_token(db, user=annotator, name="faults")
        cookie = accounts_service.start_session(db, user=annotator, now=utcnow(), hours=1)
        project_id = project.id
    engine.dispose()

    settings = Settings(database_url=private_pg.url, data_dir=tmp_path, db_pool_size=2, db_max_overflow=0)
    app = create_app(settings)
    with TestClient(app, follow_redirects=False) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        acknowledged = {_judge(client, project_id), _judge(client, project_id)}

        private_pg.stop()
        api = client.get(f"/api/v1/projects/{project_id}/next")
        assert api.status_code == 503 and api.headers["retry-after"] == "5"
        assert "database is not reachable" in api.json()["detail"]
        del client.headers["Authorization"]
        client.cookies.set(SESSION_COOKIE, cookie)
        page = client.get(f"/projects/{project_id}/annotate")
        assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
        assert "nothing was saved, please retry shortly" in page.text and "Traceback" not in page.text

        client.headers["Authorization"] = f"Bearer {token}"
        private_pg.start()
        deadline = time.monotonic() + 30
        while client.get("/api/v1/me").status_code != 200:  # the same app, not restarted
            assert time.monotonic() < deadline, "the app did not recover within 30 s"
            time.sleep(0.2)
        acknowledged.add(_judge(client, project_id))
    app.state.session_factory.kw["bind"].dispose()  # the app's own engine: close its connections now

    engine = make_engine(private_pg.url, pool_size=1)
    with make_session_factory(engine)() as db:
        stored = set(db.scalars(select(Judgement.id)))
        assert stored == acknowledged
        assert db.scalar(select(func.count()).select_from(Judgement)) == 3
    engine.dispose()
