"""Generation through any OpenAI-compatible chat-completions server (vLLM, TGI, llama.cpp, Ollama).

One request per sample (n=1 with its own seed, which such servers honour unevenly), at most
`concurrency` in flight; 429, 5xx, timeouts and dropped connections are retried with exponential
backoff (Retry-After honoured up to the cap); other 4xx answers fail the prompt at once.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from app.generation.generator import (
    Conversation,
    DecodingParams,
    GenerationFailed,
    Sample,
    cut_at_stop,
    sample_seed,
)
from app.generation.model_store import ModelNotAvailable

MAX_BACKOFF_SECONDS = 30.0


class RequestFailed(Exception):
    pass


class OpenAIBackend:
    def __init__(self, base_url: str, model: str, *, api_key: str = "", timeout_seconds: float = 60.0,
                 max_retries: int = 3, concurrency: int = 4, backoff_seconds: float = 0.5) -> None:
        self.model_id = model
        self.revision = ""
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.max_retries = max_retries
        self.concurrency = concurrency
        self.backoff_seconds = backoff_seconds
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(timeout=timeout_seconds, headers=headers,
                                   limits=httpx.Limits(max_connections=concurrency))
        self.in_flight = 0  # observed by tests: never above `concurrency`
        self.most_in_flight = 0
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, model: str, remote: dict[str, Any]) -> OpenAIBackend:
        """The backend a config's `remote` settings describe; the API key is read from the named
        environment variable of this (the worker's) process."""
        env = str(remote.get("api_key_env") or "")
        if env and env not in os.environ:
            raise ModelNotAvailable(f"the environment variable {env} (the API key) is not set")
        return cls(str(remote["base_url"]), model, api_key=os.environ.get(env, "") if env else "",
                   timeout_seconds=float(remote.get("timeout_seconds", 60.0)),
                   max_retries=int(remote.get("max_retries", 3)),
                   concurrency=int(remote.get("concurrency", 4)))

    def generate(self, conversations: Sequence[Conversation], n: int,
                 params: DecodingParams) -> list[list[Sample]]:
        tasks = [(i, j) for i in range(len(conversations)) for j in range(n)]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            outcomes = list(pool.map(lambda t: self._sample(conversations[t[0]], t[1], params), tasks))
        partial: list[list[Sample] | None] = [[] for _ in conversations]
        reasons: dict[int, str] = {}
        for (i, _), outcome in zip(tasks, outcomes, strict=True):
            if isinstance(outcome, str):
                reasons.setdefault(i, outcome)
                partial[i] = None
            elif partial[i] is not None:
                partial[i].append(outcome)  # type: ignore[union-attr]
        if reasons:
            raise GenerationFailed(partial, reasons)
        return [samples or [] for samples in partial]

    def _sample(self, conversation: Conversation, index: int, params: DecodingParams) -> Sample | str:
        """One sample, or the reason it could not be had."""
        seed = sample_seed(params.seed, conversation, index)
        body: dict[str, Any] = {"model": self.model_id, "messages": conversation, "n": 1, "seed": seed,
                                "max_tokens": params.max_new_tokens, "temperature": params.temperature,
                                "top_p": params.top_p}
        if params.stop:
            body["stop"] = list(params.stop)
        try:
            answer = self._post(body)
            choice = answer["choices"][0]
            text = str(choice["message"].get("content") or "")
            tokens = int((answer.get("usage") or {}).get("completion_tokens") or len(text.split()))
        except RequestFailed as exc:
            return str(exc)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            return f"unexpected answer from {self.url}: {type(exc).__name__}: {exc}"
        return Sample(text=cut_at_stop(text, params.stop), sample_index=index, seed=seed, tokens=tokens)

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            wait = self.backoff_seconds * 2**attempt
            try:
                with self._counted():
                    response = self.client.post(self.url, json=body)
            except httpx.TimeoutException:
                error = f"timed out after {self.client.timeout.read} s"
            except httpx.TransportError as exc:
                error = f"cannot reach {self.url}: {exc}"
            else:
                if response.status_code == 200:
                    answer: dict[str, Any] = response.json()
                    return answer
                error = f"HTTP {response.status_code}: {response.text[:200]}"
                if response.status_code != 429 and response.status_code < 500:
                    raise RequestFailed(error)  # a bad request stays bad
                wait = max(wait, _retry_after(response))
            if last:
                raise RequestFailed(f"{error} (after {attempt + 1} attempts)")
            time.sleep(min(wait, MAX_BACKOFF_SECONDS))
        raise AssertionError("unreachable")

    def _counted(self) -> _InFlight:
        return _InFlight(self)


class _InFlight:
    def __init__(self, backend: OpenAIBackend) -> None:
        self.backend = backend

    def __enter__(self) -> None:
        with self.backend._lock:
            self.backend.in_flight += 1
            self.backend.most_in_flight = max(self.backend.most_in_flight, self.backend.in_flight)

    def __exit__(self, *exc: object) -> None:
        with self.backend._lock:
            self.backend.in_flight -= 1


def _retry_after(response: httpx.Response) -> float:
    try:
        return float(response.headers.get("retry-after", 0))
    except ValueError:
        return 0.0
