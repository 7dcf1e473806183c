"""Annotators racing on real connections with gold and repeats interleaved: the k invariant of the
regular work holds, gold is judged at most once per annotator, repeats never count."""

from __future__ import annotations

import threading

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import User
from app.annotation import service as annotation_service
from app.annotation.models import Judgement
from app.annotation.schemas import JudgementIn
from app.assignment import service as assignment_service
from app.db import unit_of_work, utcnow
from app.gold.models import GoldScore
from app.projects.models import Item, ItemPurpose, Project
from tests.factories import make_gold, make_pair_item, make_project, make_user_without_password

ANNOTATORS, REGULAR, GOLD, K = 8, 16, 4, 3


def _work(committed: sessionmaker[Session], project_id: int, annotator_id: int) -> int:
    judged = 0
    while True:
        with unit_of_work(committed) as session:
            project, annotator = session.get(Project, project_id), session.get(User, annotator_id)
            assert project is not None and annotator is not None
            lease = assignment_service.claim_next_item(session, project=project, annotator=annotator,
                                                       now=utcnow())
            if lease is None:
                return judged
            lease_id = lease.id
        with unit_of_work(committed) as session:
            annotation_service.submit(session, lease_id=lease_id, annotator=annotator,
                                      form=JudgementIn(choice="a", strength=1), now=utcnow())
            judged += 1


def _round(committed: sessionmaker[Session], project_id: int, user_ids: list[int]) -> int:
    judged: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(user_ids))

    def run(user_id: int) -> None:
        try:
            barrier.wait()
            judged.append(_work(committed, project_id, user_id))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(uid,)) for uid in user_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker thread hung (deadlock?)"
    assert errors == []
    return sum(judged)


def test_gold_and_repeats_interleaved_under_concurrency_keep_every_count(
        committed: sessionmaker[Session]) -> None:
    with unit_of_work(committed) as session:
        users = [make_user_without_password(session) for _ in range(ANNOTATORS)]
        project = make_project(session, overlap_k=K, members=users, gold_rate=0.25, repeat_rate=0.25)
        for n in range(REGULAR):
            make_pair_item(session, project, text=f"regular {n}")
        for n in range(GOLD):
            make_gold(session, make_pair_item(session, project, text=f"gold {n}"), "a")
        project_id, user_ids = project.id, [u.id for u in users]
    for _ in range(5):
        if _round(committed, project_id, user_ids) == 0:
            break
    with unit_of_work(committed) as session:
        items = {i.id: i for i in session.scalars(select(Item).where(Item.project_id == project_id))}
        firsts = session.execute(
            select(Judgement.item_id, func.count(), func.count(func.distinct(Judgement.annotator_id)))
            .where(Judgement.is_repeat.is_(False)).group_by(Judgement.item_id)).all()
        for item_id, count, distinct in firsts:
            item = items[item_id]
            assert count == distinct, "nobody judged an item twice (outside repeats)"
            if item.purpose == ItemPurpose.REGULAR:
                assert (count, item.judgement_count, item.open_slots) == (K, K, 0)
            else:
                assert (item.judgement_count, item.open_slots) == (0, K), "gold takes no slot"
        assert {i for i, _, _ in firsts} == set(items), "every item was judged"
        gold_judgements = sum(c for i, c, _ in firsts if items[i].purpose == ItemPurpose.GOLD)
        assert session.scalar(select(func.count(GoldScore.id))) == gold_judgements
        repeats = session.execute(
            select(Judgement.item_id, Judgement.annotator_id).where(Judgement.is_repeat.is_(True))).all()
        assert repeats, "the 0.25 repeat rate brought repeats"
        assert len(set(repeats)) == len(repeats)
        assert all(items[i].purpose == ItemPurpose.REGULAR for i, _ in repeats)
