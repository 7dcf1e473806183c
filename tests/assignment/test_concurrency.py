"""Many annotators claiming and judging at once, each on a real connection of its own."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import User
from app.annotation import service as annotation_service
from app.annotation.models import Judgement
from app.annotation.schemas import JudgementIn
from app.assignment import service as assignment_service
from app.assignment.models import Lease
from app.db import unit_of_work, utcnow
from app.projects.models import Item, Project
from tests.factories import make_pair_item, make_project, make_user

ANNOTATORS, ITEMS, K = 12, 20, 3


def _skips(item_id: int, annotator_id: int) -> bool:
    # Deterministic, and at most 2 of 12 consecutive annotator ids per item: every item can still reach k.
    return (item_id + annotator_id) % 7 == 0


def _annotate_until_done(committed: sessionmaker[Session], project_id: int, annotator_id: int) -> int:
    judged = 0
    while True:
        with unit_of_work(committed) as session:
            project = session.get(Project, project_id)
            annotator = session.get(User, annotator_id)
            assert project is not None and annotator is not None
            lease = assignment_service.claim_next_item(session, project=project, annotator=annotator,
                                                       now=utcnow())
            if lease is None:
                return judged
            lease_id, item_id = lease.id, lease.item_id
        with unit_of_work(committed) as session:
            if _skips(item_id, annotator_id):
                annotation_service.skip(session, lease_id=lease_id, annotator=annotator, now=utcnow())
                continue
            form = JudgementIn(choice="a", strength=1)
            annotation_service.submit(session, lease_id=lease_id, annotator=annotator, form=form,
                                      now=utcnow())
            judged += 1


def _annotator_round(committed: sessionmaker[Session], project_id: int, annotator_id: int,
                     judged: list[int]) -> None:
    judged.append(_annotate_until_done(committed, project_id, annotator_id))


def _run_threads(targets: list[Callable[[], object]]) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(targets))

    def run(target: Callable[[], object]) -> None:
        try:
            barrier.wait()
            target()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker thread hung (deadlock?)"
    return errors


def test_each_item_is_judged_by_exactly_k_distinct_annotators_under_concurrency(
        committed: sessionmaker[Session]) -> None:
    with unit_of_work(committed) as session:
        users = [make_user(session) for _ in range(ANNOTATORS)]
        project = make_project(session, overlap_k=K, members=users)
        for n in range(ITEMS):
            make_pair_item(session, project, text=f"prompt {n}")
        project_id, user_ids = project.id, [u.id for u in users]

    # "Nothing left" is a snapshot: a slot can come back after an annotator stopped (a skip, a row that
    # was locked at that instant), so annotators come back (as they would by reloading) until a round
    # in which nobody judged anything.
    for _ in range(5):
        judged: list[int] = []
        errors = _run_threads([functools.partial(_annotator_round, committed, project_id, uid, judged)
                               for uid in user_ids])
        assert errors == []
        if sum(judged) == 0:
            break

    with unit_of_work(committed) as session:
        items = list(session.scalars(select(Item).where(Item.project_id == project_id)))
        assert len(items) == ITEMS
        assert {(i.judgement_count, i.open_slots) for i in items} == {(K, 0)}
        per_item = dict(session.execute(
            select(Judgement.item_id, func.count(func.distinct(Judgement.annotator_id)))
            .group_by(Judgement.item_id)
        ).all())
        assert per_item == {i.id: K for i in items}
        assert session.scalar(select(func.count(Judgement.id))) == ITEMS * K
        judged_leases = session.scalar(select(func.count(Lease.id)).where(Lease.skipped.is_(False)))
        assert judged_leases == ITEMS * K
        duplicates = session.execute(
            select(Lease.item_id, Lease.annotator_id).group_by(Lease.item_id, Lease.annotator_id)
            .having(func.count() > 1)
        ).all()
        assert duplicates == []
        skipped = session.execute(select(Lease.item_id, Lease.annotator_id).where(Lease.skipped)).all()
        assert all(_skips(i, a) for i, a in skipped)
        assert session.scalar(select(func.count(Lease.id)).where(Lease.completed_at.is_(None))) == 0
