"""The OpenAI-compatible backend against a small chat-completions server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import Role
from app.config import Settings
from app.generation import configs as configs_service
from app.generation import service as generation_service
from app.generation import worker
from app.generation.backends.openai_backend import OpenAIBackend
from app.generation.generator import DecodingParams, GenerationFailed, sample_seed
from app.generation.model_store import ModelNotAvailable
from app.generation.models import GenerationRun, RunStatus
from app.generation.schemas import ConfigIn
from app.projects.models import Candidate
from tests.factories import make_project, make_prompt, make_user
from tests.generation.test_worker import _claim


class FakeServer:
    """Answers POST /v1/chat/completions. `script` maps a prompt's last turn to the statuses of its
    successive attempts ("slow" sleeps past the client's timeout first); the default is 200."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.script: dict[str, list[int | str]] = {}
        self.delay = 0.0
        self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        last = body["messages"][-1]["content"]
        with self.lock:
            steps = self.script.get(last, [])
            step = steps.pop(0) if steps else 200
        if step == "slow":
            time.sleep(1.0)
            step = 200
        if step != 200:
            return int(step), {"error": {"message": f"scripted {step}"}}
        text = f"echo {last} (seed {body['seed']})"
        choice = {"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        return 200, {"choices": [choice], "usage": {"completion_tokens": 4}}


@pytest.fixture
def server() -> Iterator[tuple[FakeServer, str]]:
    fake = FakeServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with fake.lock:
                fake.requests.append(body)
                fake.headers.append(dict(self.headers))
                fake.in_flight += 1
                fake.most_in_flight = max(fake.most_in_flight, fake.in_flight)
            try:
                time.sleep(fake.delay)
                status, answer = fake.answer(body) if self.path == "/v1/chat/completions" else (404, {})
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)
            finally:
                with fake.lock:
                    fake.in_flight -= 1

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield fake, f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _backend(url: str, **options: Any) -> OpenAIBackend:
    return OpenAIBackend(url, "served-model", backoff_seconds=0.01, **{"timeout_seconds": 5.0, **options})


CONVERSATION = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]


def test_sends_the_chat_request_and_returns_one_sample_per_seed(server: tuple[FakeServer, str]) -> None:
    fake, url = server
    params = DecodingParams(max_new_tokens=12, temperature=0.3, top_p=0.9, seed=4, stop=("(",))
    [[first, second]] = _backend(url).generate([CONVERSATION], 2, params)
    assert (first.text, first.sample_index, first.tokens) == ("echo hi ", 0, 4)  # cut at the stop sequence
    assert first.seed == sample_seed(4, CONVERSATION, 0) and second.seed == sample_seed(4, CONVERSATION, 1)
    body = fake.requests[0]
    assert body["model"] == "served-model" and body["messages"] == CONVERSATION
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["stop"]) == (12, 0.3, 0.9, ["("])


def test_retries_500_and_429_with_backoff_then_succeeds(server: tuple[FakeServer, str]) -> None:
    fake, url = server
    fake.script["hi"] = [500, 429]
    [[sample]] = _backend(url, max_retries=3).generate([CONVERSATION], 1, DecodingParams())
    assert sample.text.startswith("echo hi") and len(fake.requests) == 3


def test_a_timeout_is_retried(server: tuple[FakeServer, str]) -> None:
    fake, url = server
    fake.script["hi"] = ["slow"]
    backend = _backend(url, timeout_seconds=0.3, max_retries=2)
    [[sample]] = backend.generate([CONVERSATION], 1, DecodingParams())
    assert sample.text.startswith("echo hi") and len(fake.requests) == 2


def test_spent_retries_fail_only_that_prompt_with_its_reason(server: tuple[FakeServer, str]) -> None:
    fake, url = server
    fake.script["bad"] = [500, 500, 500]
    fake.script["slow"] = ["slow", "slow"]
    other = [{"role": "user", "content": "fine"}]
    conversations = [[{"role": "user", "content": "bad"}], other, [{"role": "user", "content": "slow"}]]
    with pytest.raises(GenerationFailed) as failed:
        _backend(url, max_retries=1, timeout_seconds=0.3).generate(conversations, 1, DecodingParams())
    assert failed.value.partial[0] is None and failed.value.partial[2] is None
    assert [s.text for s in failed.value.partial[1] or []] == [f"echo fine (seed {sample_seed(0, other, 0)})"]
    assert "HTTP 500" in failed.value.reasons[0] and "after 2 attempts" in failed.value.reasons[0]
    assert "timed out" in failed.value.reasons[2]


def test_a_bad_request_is_not_retried(server: tuple[FakeServer, str]) -> None:
    fake, url = server
    fake.script["hi"] = [400]
    with pytest.raises(GenerationFailed) as failed:
        _backend(url, max_retries=3).generate([CONVERSATION], 1, DecodingParams())
    assert "HTTP 400" in failed.value.reasons[0] and len(fake.requests) == 1


def test_never_more_requests_in_flight_than_the_concurrency_limit(server: tuple[FakeServer, str]) -> None:
    fake, url = server
    fake.delay = 0.05
    backend = _backend(url, concurrency=2)
    conversations = [[{"role": "user", "content": f"q{i}"}] for i in range(4)]
    backend.generate(conversations, 2, DecodingParams())
    assert len(fake.requests) == 8 and fake.most_in_flight == 2 and backend.most_in_flight == 2


def test_the_api_key_comes_from_the_named_environment_variable(
        server: tuple[FakeServer, str], monkeypatch: pytest.MonkeyPatch) -> None:
    fake, url = server
    remote = {"base_url": url, "api_key_env": "PREFSTUDIO_TEST_KEY"}
    monkeypatch.delenv("PREFSTUDIO_TEST_KEY", raising=False)
    with pytest.raises(ModelNotAvailable, match="PREFSTUDIO_TEST_KEY"):
        OpenAIBackend.from_config("served-model", remote)
    monkeypatch.setenv("PREFSTUDIO_TEST_KEY", "sk-test")
    OpenAIBackend.from_config("served-model", remote).generate([CONVERSATION], 1, DecodingParams())
    assert fake.headers[0]["Authorization"] == "Bearer sk-test"


def test_a_run_through_a_remote_config_stores_answers_and_records_failures(
        server: tuple[FakeServer, str], db: Session, session_factory: sessionmaker[Session],
        settings: Settings) -> None:
    fake, url = server
    fake.script["refused"] = [400, 400]
    admin = make_user(db, Role.ADMIN)
    project = make_project(db, candidates_per_prompt=1, mode="likert")
    configs_service.create_config(db, project=project, actor=admin, body=ConfigIn(
        key="remote", backend="openai", model="served-model", base_url=url, max_retries=0))
    for text in ("one", "refused", "two"):
        make_prompt(db, project, text)
    run = generation_service.start_run(db, project=project, actor=admin)

    worker.handle_generate(session_factory, _claim(db), settings)

    db.refresh(run)
    assert (run.status, run.done_prompts, run.total_prompts, run.tokens) == (RunStatus.DONE, 2, 3, 8)
    assert [(f["config"], f["reason"][:8]) for f in run.failures] == [("remote", "HTTP 400")]
    texts = sorted(c.text.split(" (")[0] for c in db.scalars(select(Candidate)))
    assert texts == ["echo one", "echo two"]
    assert db.scalar(select(GenerationRun.id)) == run.id
