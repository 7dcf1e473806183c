"""Generate candidate answers: conversations and decoding parameters in, sampled texts out.

Plain in, plain out: no database, no web. Importing this module does not load torch; `load_backend` does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Protocol

from app.generation.model_store import resolve_model

Conversation = list[dict[str, str]]


@dataclass(frozen=True)
class DecodingParams:
    max_new_tokens: int = 256
    temperature: float = 0.8  # 0: greedy
    top_p: float = 0.95
    seed: int = 0
    stop: tuple[str, ...] = ()  # the text ends before the first of these

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "stop": list(self.stop)}

    @classmethod
    def of(cls, params: dict[str, Any]) -> DecodingParams:
        """From a config's params; unknown keys (system_prompt) are left out."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in params.items() if k in known}
        return cls(**{**values, "stop": tuple(values.get("stop", ()))})


@dataclass(frozen=True)
class Sample:
    text: str
    sample_index: int
    seed: int  # the seed this sample's random draws came from
    tokens: int  # generated tokens, end-of-sequence excluded


class GenerationFailed(Exception):
    """Some prompts of a batch failed for good: `partial[i]` holds prompt i's samples, or None with its
    reason in `reasons[i]`. The worker stores the rest and records the failures."""

    def __init__(self, partial: list[list[Sample] | None], reasons: dict[int, str]) -> None:
        super().__init__(f"{len(reasons)} of {len(partial)} prompts failed")
        self.partial = partial
        self.reasons = reasons


class Backend(Protocol):
    model_id: str
    revision: str

    def generate(
        self, conversations: Sequence[Conversation], n: int, params: DecodingParams
    ) -> list[list[Sample]]:
        """For each conversation, `n` samples in order of `sample_index`."""
        ...


def sample_seed(base_seed: int, conversation: Conversation, sample_index: int) -> int:
    """The seed of one sample: fixed by the run's seed, the conversation and the index, nothing else.

    Mixing in the conversation keeps sample j of two different prompts from sharing its random draws.
    """
    key = json.dumps([base_seed, sample_index, conversation], sort_keys=True, ensure_ascii=False)
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") >> 1


def with_system(conversation: Conversation, system_prompt: str) -> Conversation:
    """The conversation with `system_prompt` as its first turn, unless it has a system turn already."""
    if not system_prompt or any(turn.get("role") == "system" for turn in conversation):
        return conversation
    return [{"role": "system", "content": system_prompt}, *conversation]


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """`text` up to the earliest stop sequence (which is dropped); all of it when none occurs."""
    ends = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return text[: min(ends)] if ends else text


def load_remote_backend(model: str, remote: dict[str, Any]) -> Backend:
    """An OpenAI-compatible server's backend, from a config's model name and `remote` settings."""
    from app.generation.backends.openai_backend import OpenAIBackend

    return OpenAIBackend.from_config(model, remote)


def load_backend(model: str, models_dir: Path, device: str = "auto", batch_size: int = 8) -> Backend:
    """Resolve `model` (empty: the bundled SmolLM2, converted on first use) and load it on `device`."""
    from app.generation.backends.transformers_backend import TransformersBackend

    resolved = resolve_model(model, models_dir)
    return TransformersBackend(
        resolved.path, resolved.model_id, resolved.revision, device=device, batch_size=batch_size
    )
