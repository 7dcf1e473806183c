"""No loss under load: 64 simulated annotators (threads, httpx) against a live server on 127.0.0.1, with
random retries after lost answers and double submits. Every judgement stored was acknowledged, every
acknowledgement names a stored judgement, nobody judged an item twice, and no item went past k."""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.accounts import service as accounts_service
from app.annotation.models import Judgement
from app.config import Settings
from app.main import create_app
from app.projects.models import Item
from tests.browser import serve
from tests.factories import make_pair_item, make_project, make_user_without_password

ANNOTATORS = 64
ITEMS = 60
K = 3


@dataclass
class Ledger:
    acknowledged: set[int] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ack(self, judgement_id: int) -> None:
        with self.lock:
            self.acknowledged.add(judgement_id)


def _post_until_acknowledged(client: httpx.Client, url: str, body: dict[str, object], ledger: Ledger,
                             rng: random.Random) -> None:
    """Send the judgement until an answer arrives; sometimes the first answer is 'lost' (a timeout shorter
    than the request) and sometimes the same judgement goes twice at once (a double click)."""
    for _ in range(20):
        timeout = 0.002 if rng.random() < 0.15 else 30.0
        copies = 2 if rng.random() < 0.2 else 1
        try:
            with ThreadPoolExecutor(copies) as pool:
                answers = list(pool.map(lambda _, t=timeout: client.post(url, json=body, timeout=t),
                                        range(copies)))
        except httpx.TimeoutException:
            continue  # the server may well have stored it: the retry with the same key must say so
        for answer in answers:
            if answer.status_code in (200, 201):
                ledger.ack(answer.json()["id"])
            else:
                ledger.problems.append(f"{answer.status_code} {answer.text[:200]}")
        return
    ledger.problems.append("no answer after 20 tries")


def _annotate(base: str, project_id: int, token: str, seed: int, ledger: Ledger) -> None:
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30.0) as client:
        for _ in range(ITEMS + 5):
            response = client.get(f"/api/v1/projects/{project_id}/next")
            if response.status_code == 204:
                return
            if response.status_code != 200:
                ledger.problems.append(f"next: {response.status_code} {response.text[:200]}")
                return
            item = response.json()
            body = {"choice": rng.choice(["a", "b"]), "strength": rng.randint(1, 3),
                    "idempotency_key": item["idempotency_key"] or uuid.uuid4().hex}
            url = f"/api/v1/projects/{project_id}/leases/{item['lease_id']}/judgement"
            _post_until_acknowledged(client, url, body, ledger, rng)
    ledger.problems.append("an annotator never ran out of items")


def test_no_judgement_is_lost_or_doubled_under_load(committed: sessionmaker[Session],
                                                    settings: Settings) -> None:
    with committed() as db, db.begin():
        users = [make_user_without_password(db) for _ in range(ANNOTATORS)]
        project = make_project(db, overlap_k=K, gold_rate=0.0, members=users)
        for n in range(ITEMS):
            make_pair_item(db, project, f"Question {n}")
        tokens = [accounts_service.create_api_token(db, user=u, name="load")[1] for u in users]
        project_id = project.id
    ledger = Ledger()
    with serve(create_app(settings, session_factory=committed)) as base:
        threads = [threading.Thread(target=_annotate, args=(base, project_id, token, n, ledger))
                   for n, token in enumerate(tokens)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert not ledger.problems, ledger.problems[:10]
    with committed() as db:
        stored = db.execute(select(Judgement.id, Judgement.item_id, Judgement.annotator_id)
                            .where(Judgement.project_id == project_id)).all()
        counts = dict(db.execute(select(Item.id, Item.judgement_count)
                                 .where(Item.project_id == project_id)).all())
    assert {row.id for row in stored} == ledger.acknowledged  # stored == acknowledged, both ways
    pairs = Counter((row.item_id, row.annotator_id) for row in stored)
    assert max(pairs.values()) == 1  # nobody judged an item twice
    per_item = Counter(row.item_id for row in stored)
    assert set(per_item.values()) == {K} and len(per_item) == ITEMS  # every item exactly k, none past
    assert counts == dict(per_item)  # the counters agree with the rows
