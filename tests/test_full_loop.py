"""The whole loop over real HTTP and committed transactions: import, generate (tiny local model),
annotate through the API by two annotators, export TRL, train a reward model from the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.accounts import service as accounts_service
from app.accounts.models import Role
from app.config import Settings
from app.db import unit_of_work
from app.generation.worker import handlers
from app.jobs.runner import run_worker
from app.main import create_app
from tests.generation.test_generator import save_tiny_model

PROMPTS = [{"prompt": f"what is the answer {i}", "external_id": f"p{i}"} for i in range(6)]


@pytest.fixture
def live(committed: sessionmaker[Session], settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, session_factory=committed)) as client:
        yield client


def _tokens(committed: sessionmaker[Session]) -> dict[str, dict[str, str]]:
    headers = {}
    with unit_of_work(committed) as session:
        for name, role in [
            ("ada", Role.ADMIN),
            ("ann1", Role.ANNOTATOR),
            ("ann2", Role.ANNOTATOR),
            ("res", Role.RESEARCHER),
        ]:
            user = accounts_service.create_user(session, username=name, password="long enough pw", role=role)
            _, raw = accounts_service.create_api_token(session, user=user, name="t")
            headers[name] = {"Authorization": f"Bearer {raw}"}
    return headers


def _annotate_until_done(client: TestClient, project_id: int, auth: dict[str, str]) -> int:
    done = 0
    while (item := client.get(f"/api/v1/projects/{project_id}/next", headers=auth)).status_code == 200:
        body = item.json()
        # Sides are shuffled per annotator, so both answer by content: the shorter response wins.
        left, right = (r["text"] for r in body["responses"])
        choice = "a" if len(left) <= len(right) else "b"
        vote = {"choice": choice, "strength": 2, "idempotency_key": body["idempotency_key"], "seconds": 3.5}
        url = f"/api/v1/projects/{project_id}/leases/{body['lease_id']}/judgement"
        assert client.post(url, json=vote, headers=auth).status_code == 201
        assert client.post(url, json=vote, headers=auth).status_code == 200  # a retry stores nothing
        done += 1
    assert item.status_code == 204
    return done


def test_prompts_to_reward_model(
    live: TestClient, committed: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    auth = _tokens(committed)
    model_dir = save_tiny_model(tmp_path / "tiny-llama")
    created = live.post(
        "/api/v1/projects",
        headers=auth["ada"],
        json={
            "name": "loop",
            "mode": "pairwise",
            "overlap_k": 2,
            "candidates_per_prompt": 3,
            "repeat_rate": 0.0,  # no repeats: each annotator judges exactly the 18 items
            "generation": {
                "model": str(model_dir),
                "max_new_tokens": 8,
                "temperature": 0.9,
                "top_p": 0.95,
                "seed": 1,
                "include_flagged": True,  # a random model's answers fill the token budget ("long")
            },
        },
    )
    assert created.status_code == 201, created.text
    project_id = created.json()["id"]
    for user in ("ann1", "ann2", "res"):
        me = live.get("/api/v1/me", headers=auth[user]).json()
        added = live.post(
            f"/api/v1/projects/{project_id}/members", json={"user_id": me["id"]}, headers=auth["ada"]
        )
        assert added.status_code == 201, added.text

    jsonl = "\n".join(json.dumps(row) for row in PROMPTS).encode()
    imported = live.post(
        f"/api/v1/projects/{project_id}/prompts",
        headers=auth["ada"],
        files={"file": ("prompts.jsonl", jsonl, "application/jsonl")},
    )
    assert imported.status_code == 201 and imported.json()["imported"] == 6

    assert (
        live.post(f"/api/v1/projects/{project_id}/generation-runs", headers=auth["ada"], json={}).status_code
        == 201
    )
    ran = run_worker(
        committed,
        handlers(settings),
        worker_id="test",
        poll_seconds=0.05,
        lease_seconds=60,
        stop=threading.Event(),
        exit_when_idle=True,
    )
    assert ran == 1
    runs = live.get(f"/api/v1/projects/{project_id}/generation-runs", headers=auth["ada"]).json()
    assert runs[0]["status"] == "done"

    # 6 prompts x 3 candidates -> 3 pairs each -> 18 items, each judged by both annotators
    assert _annotate_until_done(live, project_id, auth["ann1"]) == 18
    assert _annotate_until_done(live, project_id, auth["ann2"]) == 18

    export = live.get(f"/api/v1/projects/{project_id}/export", params={"format": "trl", "package": "jsonl"},
                      headers=auth["res"])
    assert export.status_code == 200
    lines = [json.loads(line) for line in export.text.splitlines()]
    assert lines and {"prompt", "chosen", "rejected", "margin"} <= lines[0].keys()
    assert all(len(r["chosen"][0]["content"]) <= len(r["rejected"][0]["content"]) for r in lines)
    export_file = tmp_path / "prefs.jsonl"
    export_file.write_text(export.text)

    out = tmp_path / "rm"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "train-rm",
            str(export_file),
            "--out",
            str(out),
            "--epochs",
            "1",
            "--max-length",
            "64",
            "--batch-size",
            "8",
        ],
        check=True,
        timeout=300,
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_train"] + metrics["n_eval"] == len(lines)
    assert (out / "model" / "config.json").exists()
