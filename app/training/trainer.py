"""Train a reward model on a TRL preference export: plain in (a JSONL path, a config), plain out (metrics).

A sequence-classification head with one output scores (prompt, response); the loss is Bradley-Terry
with an optional margin. Process module: the web process never imports it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from transformers.utils import logging as hf_logging

from app.training.calibration import calibration_metrics, write_reliability_png
from app.training.data import PreferencePair, Split, read_pairs, split_by_prompt
from app.training.loop import (
    EncodedPair,
    StepCallback,
    TrainConfig,
    bradley_terry_loss,
    collate,
    length_grouped_batches,
    shard,
    train_epochs,
)
from app.training.model_store import DEFAULT_BACKBONE, resolve_backbone

__all__ = [
    "EncodedPair",
    "TrainConfig",
    "bradley_terry_loss",
    "collate",
    "encode_pairs",
    "length_grouped_batches",
    "shard",
    "train_reward_model",
]

RELIABILITY_PNG = "reliability.png"


def train_reward_model(
    export_path: Path,
    out_dir: Path,
    config: TrainConfig,
    progress: bool = True,
    on_step: StepCallback | None = None,
) -> dict[str, Any]:
    """Train, evaluate on held-out prompts, write out_dir/model (model + tokenizer), out_dir/metrics.json
    and out_dir/reliability.png; returns the metrics.

    Under `accelerate launch` every process trains on its share of the batches (DDP); only the main
    process evaluates and writes, and the others return {}. `on_step(step, total_steps, loss)` runs on
    the main process after each optimiser step; an exception it raises stops training (nothing written).
    Raises ExportFormatError on a bad export row, ValueError on a bad config or too little data.
    """
    started = time.perf_counter()
    config.validate()
    pairs = read_pairs(export_path)
    split = split_by_prompt(pairs, config.eval_fraction, config.seed)
    if not split.train:
        raise ValueError("no pairs left to train on: add prompts or lower eval_fraction")
    accelerator = make_accelerator(config.device)
    torch.manual_seed(config.seed)  # the new head's initial weights and dropout
    base_path = resolve_backbone(config.base_model)
    tokenizer, model = load_backbone(base_path, progress and accelerator.is_main_process)
    positions = getattr(model.config, "max_position_embeddings", None) or config.max_length
    max_length = min(config.max_length, tokenizer.model_max_length, positions)
    train_set = encode_pairs(tokenizer, split.train, max_length)
    losses, train_seconds, train_cpu_seconds = train_epochs(
        accelerator, model, train_set, config, progress, on_step
    )
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return {}
    eval_set = encode_pairs(tokenizer, split.eval, max_length)
    differences = reward_differences(model, eval_set, config.batch_size, accelerator.device)
    save_model(model, tokenizer, out_dir / "model", progress)
    calibration = calibration_metrics(differences)
    write_reliability_png(calibration["reliability"], out_dir / RELIABILITY_PNG)
    metrics: dict[str, Any] = {
        "base_model": config.base_model or DEFAULT_BACKBONE,
        "base_model_path": base_path,
        "device": str(accelerator.device),
        "n_processes": accelerator.num_processes,
        **_data_counts(pairs, split),
        **{f"eval_{key}": value for key, value in calibration.items()},
        "train_loss": _finite(losses[-1]),
        "train_loss_per_epoch": [_finite(loss) for loss in losses],
        "pairs_per_second": len(train_set) * config.epochs / train_seconds if train_seconds > 0 else None,
        "train_seconds": train_seconds,
        "train_cpu_seconds": train_cpu_seconds,
        "elapsed_seconds": time.perf_counter() - started,
        "config": asdict(config),
        "model_dir": str(out_dir / "model"),
        "reliability_png": RELIABILITY_PNG,
    }
    text = json.dumps(metrics, indent=2, allow_nan=False)
    (out_dir / "metrics.json").write_text(text + "\n", encoding="utf-8")
    return metrics


def _data_counts(pairs: Sequence[PreferencePair], split: Split) -> dict[str, int]:
    return {
        "n_pairs": len(pairs),
        "n_train": len(split.train),
        "n_eval": len(split.eval),
        "n_train_prompts": split.train_prompts,
        "n_eval_prompts": split.eval_prompts,
        "n_with_margin": sum(pair.margin is not None for pair in pairs),
    }


def make_accelerator(device: str) -> Accelerator:
    """"auto": the GPU(s) when there are any (one per process under `accelerate launch`), else the CPU."""
    if device == "cpu":
        return Accelerator(cpu=True)
    if device not in ("auto", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no GPU is available")
    return Accelerator()


def load_backbone(path: str, progress: bool) -> tuple[Any, Any]:
    """(tokenizer, model) with a one-output head; a bare encoder checkpoint gets a new, random head."""
    try:
        with _hf_progress_bars(progress):
            tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    except OSError as error:  # no such directory or hub id, or the hub is unreachable
        raise ValueError(f"cannot load the base model {path!r}: {error}") from error
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        else:
            tokenizer.add_special_tokens({"pad_token": "[PAD]"})
            model.resize_token_embeddings(len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id  # decoder heads find the last real token with it
    return tokenizer, model


def save_model(model: Any, tokenizer: Any, directory: Path, progress: bool) -> None:
    """save_pretrained of both, so AutoModelForSequenceClassification/AutoTokenizer reload the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    with _hf_progress_bars(progress):
        model.save_pretrained(directory)
        tokenizer.save_pretrained(directory)


@contextmanager
def _hf_progress_bars(progress: bool) -> Iterator[None]:
    """transformers' own bars (loading, saving) follow `progress`; the global switch is restored after."""
    was_enabled = hf_logging.is_progress_bar_enabled()
    if not progress:
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


def encode_pairs(tokenizer: Any, pairs: Sequence[PreferencePair], max_length: int) -> list[EncodedPair]:
    """Token ids without padding: (prompt, response) as a text pair, truncating the longer side first."""
    if not pairs:
        return []
    prompts = [pair.prompt for pair in pairs]

    def encode(responses: list[str]) -> list[dict[str, list[int]]]:
        # the newline keeps the response apart for tokenizers whose pair template adds no separator
        texts = [f"\n{text}" if prompt else text for prompt, text in zip(prompts, responses, strict=True)]
        batch = tokenizer(prompts, texts, truncation=True, max_length=max_length)
        return [{key: list(batch[key][row]) for key in batch} for row in range(len(pairs))]

    chosen = encode([pair.chosen for pair in pairs])
    rejected = encode([pair.rejected for pair in pairs])
    return [
        EncodedPair(chosen=c, rejected=r, margin=pair.margin or 0.0)
        for c, r, pair in zip(chosen, rejected, pairs, strict=True)
    ]


def reward_differences(
    model: Any, pairs: list[EncodedPair], batch_size: int, device: torch.device
) -> list[float]:
    """r_chosen - r_rejected for each pair (in length order, which the metrics do not depend on)."""
    model.eval()
    differences: list[float] = []
    with torch.inference_mode():
        for batch in length_grouped_batches([pair.length for pair in pairs], batch_size, None):
            inputs, _ = collate([pairs[i] for i in batch], model.config.pad_token_id, device)
            rewards = model(**inputs).logits.squeeze(-1).float()
            differences += (rewards[: len(batch)] - rewards[len(batch) :]).tolist()
    return differences


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
