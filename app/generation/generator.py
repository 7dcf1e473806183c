"""Generate candidate answers: conversations and decoding parameters in, sampled texts out.

Plain in, plain out: no database, no web. Importing this module does not load torch; `load_backend` does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from app.generation.model_store import resolve_model

Conversation = list[dict[str, str]]


@dataclass(frozen=True)
class DecodingParams:
    max_new_tokens: int = 256
    temperature: float = 0.8  # 0: greedy
    top_p: float = 0.95
    seed: int = 0

    def as_dict(self) -> dict[str, int | float]:
        return asdict(self)


@dataclass(frozen=True)
class Sample:
    text: str
    sample_index: int
    seed: int  # the seed this sample's random draws came from
    tokens: int  # generated tokens, end-of-sequence excluded


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


def load_backend(model: str, models_dir: Path, device: str = "auto", batch_size: int = 8) -> Backend:
    """Resolve `model` (empty: the bundled SmolLM2, converted on first use) and load it on `device`."""
    from app.generation.backends.transformers_backend import TransformersBackend

    resolved = resolve_model(model, models_dir)
    return TransformersBackend(
        resolved.path, resolved.model_id, resolved.revision, device=device, batch_size=batch_size
    )
