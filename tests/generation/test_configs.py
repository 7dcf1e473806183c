"""Several generation configs per project: the JSON API, runs across configs, pairs across configs,
system prompts, and flagged outputs kept from annotators."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import Role
from app.config import Settings
from app.generation import configs as configs_service
from app.generation import service as generation_service
from app.generation import worker
from app.generation.generator import Conversation, DecodingParams, Sample
from app.generation.models import GenerationRun, RunStatus
from app.generation.schemas import ConfigIn
from app.projects.models import Candidate, Item, Project
from tests.factories import bearer, login, make_project, make_prompt, make_user
from tests.generation.test_worker import _claim


class KeyedBackend:
    """Answers "<model>: <last turn> #j"; remembers the conversations and parameters it got."""

    revision = "r"

    def __init__(self, model: str) -> None:
        self.model_id = model
        self.seen: list[tuple[Conversation, DecodingParams]] = []

    def generate(self, conversations: Sequence[Conversation], n: int,
                 params: DecodingParams) -> list[list[Sample]]:
        self.seen += [(c, params) for c in conversations]
        text = "" if self.model_id == "m/empty" else "{model}: {last} #{j}"
        return [[Sample(text=text.format(model=self.model_id, last=c[-1]["content"], j=j), sample_index=j,
                        seed=j, tokens=3) for j in range(n)] for c in conversations]


@pytest.fixture
def backends(monkeypatch: pytest.MonkeyPatch) -> dict[str, KeyedBackend]:
    loaded: dict[str, KeyedBackend] = {}

    def load(model: str, models_dir: Path, device: str = "auto") -> KeyedBackend:
        return loaded.setdefault(model, KeyedBackend(model))

    monkeypatch.setattr(worker, "load_backend", load)
    return loaded


def _configured(db: Session, keys: Sequence[str], **extra: object) -> Project:
    admin = make_user(db, Role.ADMIN)
    project = make_project(db, candidates_per_prompt=2)
    for key in keys:
        configs_service.create_config(db, project=project, actor=admin,
                                      body=ConfigIn.model_validate({"key": key, "model": f"m/{key}",
                                                                    **extra}))
    for text in ("one", "two"):
        make_prompt(db, project, text)
    return project


def _run(db: Session, factory: sessionmaker[Session], settings: Settings, project: Project) -> GenerationRun:
    run = generation_service.start_run(db, project=project, actor=make_user(db, Role.ADMIN))
    worker.handle_generate(factory, _claim(db), settings)
    db.refresh(run)
    return run


def test_a_run_fills_every_config_and_pairs_only_across_configs(
        db: Session, session_factory: sessionmaker[Session], settings: Settings,
        backends: dict[str, KeyedBackend]) -> None:
    project = _configured(db, ["big", "small"])
    run = _run(db, session_factory, settings, project)

    assert (run.status, run.done_prompts, run.total_prompts) == (RunStatus.DONE, 4, 4)  # 2 prompts, 2 configs
    candidates = {c.id: c for c in db.scalars(select(Candidate))}
    assert sorted((c.config_key, c.model) for c in candidates.values()) == \
        [("big", "m/big")] * 4 + [("small", "m/small")] * 4
    items = db.scalars(select(Item).where(Item.project_id == project.id)).all()
    assert len(items) == 4  # per prompt: big #0 vs small #0, big #1 vs small #1
    for item in items:
        a, b = candidates[item.candidate_a_id], candidates[item.candidate_b_id or 0]
        assert {a.config_key, b.config_key} == {"big", "small"} and a.sample_index == b.sample_index
        assert a.prompt_id == b.prompt_id


def test_a_config_prepends_its_system_prompt_and_cuts_at_its_stop_params(
        db: Session, session_factory: sessionmaker[Session], settings: Settings,
        backends: dict[str, KeyedBackend]) -> None:
    project = _configured(db, ["sys"], system_prompt="Be brief.", stop=["#"], seed=9, max_new_tokens=7)
    _run(db, session_factory, settings, project)
    conversation, params = backends["m/sys"].seen[0]
    assert conversation == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "one"}]
    assert (params.stop, params.seed, params.max_new_tokens) == (("#",), 9, 7)
    stored = db.scalars(select(Candidate).order_by(Candidate.id)).first()
    assert stored is not None and stored.params["system_prompt"] == "Be brief."


def test_flagged_outputs_stay_out_of_items_unless_the_admin_opts_in(
        db: Session, session_factory: sessionmaker[Session], settings: Settings,
        backends: dict[str, KeyedBackend]) -> None:
    project = _configured(db, ["empty", "fine"])
    _run(db, session_factory, settings, project)
    flags = {c.config_key: c.flags for c in db.scalars(select(Candidate))}
    assert flags == {"empty": ["empty"], "fine": []}
    assert db.scalars(select(Item).where(Item.project_id == project.id)).all() == []

    opted = _configured(db, ["empty", "fine"])
    opted.generation = {"include_flagged": True}
    _run(db, session_factory, settings, opted)
    assert len(db.scalars(select(Item).where(Item.project_id == opted.id)).all()) == 4


def test_configs_api_creates_lists_refuses_and_deletes(app_client: TestClient, db: Session) -> None:
    admin, annotator = make_user(db, Role.ADMIN), make_user(db, Role.ANNOTATOR)
    project = make_project(db, members=[annotator])
    url = f"/api/v1/projects/{project.id}/generation-configs"
    headers = bearer(db, admin)
    assert [c["key"] for c in app_client.get(url, headers=headers).json()] == ["default"]  # implicit

    remote = {"key": "vllm", "backend": "openai", "model": "llama", "base_url": "http://127.0.0.1:9/v1",
              "api_key_env": "VLLM_KEY"}
    created = app_client.post(url, headers=headers, json=remote)
    assert created.status_code == 201
    assert created.json()["remote"]["api_key_env"] == "VLLM_KEY" and created.json()["implicit"] is False
    assert app_client.post(url, headers=headers, json={"key": "vllm"}).status_code == 409
    assert app_client.post(url, headers=headers, json={"key": "x", "backend": "openai"}).status_code == 422
    assert app_client.post(url, headers=headers, json={"key": "import"}).status_code == 422
    assert app_client.post(url, headers=bearer(db, annotator), json={"key": "y"}).status_code == 403
    assert [c["key"] for c in app_client.get(url, headers=headers).json()] == ["vllm"]

    assert app_client.delete(f"{url}/vllm", headers=headers).status_code == 204
    assert app_client.delete(f"{url}/vllm", headers=headers).status_code == 404


def test_admin_adds_and_removes_a_config_with_the_form(app_client: TestClient, db: Session) -> None:
    admin = make_user(db, Role.ADMIN)
    project = make_project(db)
    token = login(app_client, db, admin)
    page = app_client.get(f"/projects/{project.id}/generation/panel").text
    assert "Add a config" in page and "(the project's settings)" in page

    form = {"key": "terse", "model": "", "max_new_tokens": "64", "temperature": "0.7", "top_p": "0.9",
            "seed": "3", "stop": "\nEND\n\n###\n", "system_prompt": "Be <terse>.", "csrf_token": token}
    created = app_client.post(f"/projects/{project.id}/generation/configs", data=form)
    assert created.status_code == 303
    [config] = configs_service.list_configs(db, project=project)
    assert (config.key, config.params["stop"], config.params["system_prompt"]) == ("terse", ["END", "###"],
                                                                                   "Be <terse>.")
    page = app_client.get(f"/projects/{project.id}/generation/panel").text
    assert "stop END · ###" in page and "<terse>" not in page

    bad = app_client.post(f"/projects/{project.id}/generation/configs",
                          data={**form, "key": "remote", "backend": "openai"})
    assert bad.status_code == 422 and "base_url" in bad.text

    removed = app_client.post(f"/projects/{project.id}/generation/configs/terse/delete",
                              data={"csrf_token": token})
    assert removed.status_code == 303
    assert [c.key for c in configs_service.list_configs(db, project=project)] == ["default"]
