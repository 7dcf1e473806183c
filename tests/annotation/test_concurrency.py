"""Double submits racing on real, separate connections."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import User
from app.annotation import service as annotation_service
from app.annotation.models import Judgement
from app.annotation.schemas import JudgementIn
from app.assignment import service as assignment_service
from app.db import unit_of_work, utcnow
from app.projects.models import Item
from tests.factories import make_pair_item, make_project, make_user


def _submit_from_threads(committed: sessionmaker[Session], annotator: User, lease_id: int,
                         forms: list[JudgementIn]) -> list[int]:
    barrier = threading.Barrier(len(forms))
    ids: list[int] = []
    errors: list[BaseException] = []

    def submit(form: JudgementIn) -> None:
        try:
            with unit_of_work(committed) as session:
                barrier.wait()
                judgement = annotation_service.submit(session, lease_id=lease_id, annotator=annotator,
                                                      form=form, now=utcnow())
                ids.append(judgement.id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=(form,)) for form in forms]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    return ids


@pytest.mark.parametrize("same_key", [True, False], ids=["same-key", "new-key-per-click"])
def test_a_double_submit_from_two_connections_stores_one_judgement(committed: sessionmaker[Session],
                                                                   same_key: bool) -> None:
    with unit_of_work(committed) as session:
        annotator = make_user(session)
        project = make_project(session, members=[annotator])
        make_pair_item(session, project)
        lease = assignment_service.claim_next_item(session, project=project, annotator=annotator,
                                                   now=utcnow())
        assert lease is not None
        lease_id = lease.id

    keys = ["double-click-key"] * 4 if same_key else [f"retry-key-{n}" for n in range(4)]
    forms = [JudgementIn(choice="b", strength=2, idempotency_key=key) for key in keys]
    ids = _submit_from_threads(committed, annotator, lease_id, forms)

    assert len(ids) == 4 and len(set(ids)) == 1, "every submit answers with the one stored judgement"
    with unit_of_work(committed) as session:
        assert session.scalar(select(func.count(Judgement.id))) == 1
        assert session.scalar(select(Item.judgement_count)) == 1
