"""Score (prompt, response) texts with a trained reward model directory: plain in, plain out.

Process module (torch): the web process never imports it. The texts are encoded exactly as in training
(a text pair, the response after a newline), longest first in batches so padding stays short.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from app.training.data import PreferencePair


@dataclass(frozen=True)
class RewardModel:
    tokenizer: Any
    model: Any
    device: torch.device
    max_length: int


def load_reward_model(directory: Path, *, device: str = "auto", max_length: int = 512) -> RewardModel:
    """The model and tokenizer that train-rm saved in `directory`; ValueError when it holds none."""
    if not (directory / "config.json").is_file():
        raise ValueError(f"{directory} holds no reward model (no config.json): pass a run's model/ directory")
    chosen = device
    if device == "auto":
        chosen = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForSequenceClassification.from_pretrained(directory).to(chosen).eval()
    if model.config.num_labels != 1:
        raise ValueError(f"{directory} is not a reward model ({model.config.num_labels} outputs, not 1)")
    positions = getattr(model.config, "max_position_embeddings", None) or max_length
    limit = min(max_length, tokenizer.model_max_length, positions)
    return RewardModel(tokenizer, model, torch.device(chosen), limit)


def score_texts(rm: RewardModel, prompts: Sequence[str], responses: Sequence[str],
                batch_size: int = 32) -> list[float]:
    """One reward per (prompt, response), in the order given."""
    if len(prompts) != len(responses):
        raise ValueError("prompts and responses differ in length")
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]) + len(responses[i]), reverse=True)
    rewards = [0.0] * len(prompts)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            firsts = [prompts[i] for i in chunk]
            seconds = [f"\n{responses[i]}" if prompts[i] else responses[i] for i in chunk]
            inputs = rm.tokenizer(firsts, seconds, truncation=True, max_length=rm.max_length,
                                  padding=True, return_tensors="pt").to(rm.device)
            values = rm.model(**inputs).logits.squeeze(-1).float().tolist()
            for index, value in zip(chunk, values, strict=True):
                rewards[index] = value
    return rewards


def pair_differences(rm: RewardModel, pairs: Sequence[PreferencePair], batch_size: int = 32) -> list[float]:
    """r(chosen) - r(rejected) for each pair, in order."""
    prompts = [pair.prompt for pair in pairs]
    chosen = score_texts(rm, prompts, [pair.chosen for pair in pairs], batch_size)
    rejected = score_texts(rm, prompts, [pair.rejected for pair in pairs], batch_size)
    return [c - r for c, r in zip(chosen, rejected, strict=True)]
