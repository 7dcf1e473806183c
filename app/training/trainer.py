"""Train a reward model on a TRL preference export: plain in (a JSONL path, a config), plain out (metrics).

A sequence-classification head with one output scores (prompt, response); the loss is Bradley-Terry
with an optional margin. Process module: the web process never imports it.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from transformers.utils import logging as hf_logging

from app.training.data import PreferencePair, Split, read_pairs, split_by_prompt
from app.training.model_store import DEFAULT_BACKBONE, resolve_backbone

CALIBRATION_BINS = 10


@dataclass
class TrainConfig:
    base_model: str = ""  # empty: the bundled all-MiniLM-L6-v2
    max_length: int = 256  # tokens per (prompt, response) sequence
    learning_rate: float = 5e-5
    epochs: int = 1
    batch_size: int = 16  # pairs per step (twice as many sequences)
    use_margin: bool = True
    center_rewards_coefficient: float = 0.0
    eval_fraction: float = 0.2  # of the distinct prompts
    seed: int = 0
    device: str = "auto"

    def validate(self) -> None:
        if self.max_length < 8 or self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise ValueError("needs max_length >= 8, epochs >= 1, batch_size >= 1 and learning_rate > 0")
        if not 0.0 <= self.eval_fraction < 1.0:
            raise ValueError(f"eval_fraction must be in [0, 1), got {self.eval_fraction}")


@dataclass(frozen=True)
class EncodedPair:
    chosen: dict[str, list[int]]
    rejected: dict[str, list[int]]
    margin: float  # 0.0 when the row has none

    @property
    def length(self) -> int:
        return max(len(self.chosen["input_ids"]), len(self.rejected["input_ids"]))


def train_reward_model(
    export_path: Path, out_dir: Path, config: TrainConfig, progress: bool = True
) -> dict[str, Any]:
    """Train, evaluate on held-out prompts, write out_dir/model (model + tokenizer) and out_dir/metrics.json.

    Raises ExportFormatError on a bad export row, ValueError on a bad config.
    """
    started = time.perf_counter()
    config.validate()
    pairs = read_pairs(export_path)
    split = split_by_prompt(pairs, config.eval_fraction, config.seed)
    torch.manual_seed(config.seed)  # the new head's initial weights and dropout
    device = resolve_device(config.device)
    base_path = resolve_backbone(config.base_model)
    tokenizer, model = load_backbone(base_path, progress)
    model.to(device)
    positions = getattr(model.config, "max_position_embeddings", None) or config.max_length
    max_length = min(config.max_length, tokenizer.model_max_length, positions)
    train_set = encode_pairs(tokenizer, split.train, max_length)
    losses, train_seconds = train_epochs(model, train_set, config, device, progress)
    eval_set = encode_pairs(tokenizer, split.eval, max_length)
    differences = reward_differences(model, eval_set, config.batch_size, device)
    save_model(model, tokenizer, out_dir / "model", progress)
    metrics: dict[str, Any] = {
        "base_model": config.base_model or DEFAULT_BACKBONE,
        "base_model_path": base_path,
        "device": str(device),
        **_data_counts(pairs, split),
        **{f"eval_{key}": value for key, value in calibration_metrics(differences).items()},
        "train_loss": _finite(losses[-1]),
        "train_loss_per_epoch": [_finite(loss) for loss in losses],
        "pairs_per_second": len(train_set) * config.epochs / train_seconds if train_seconds > 0 else None,
        "train_seconds": train_seconds,
        "elapsed_seconds": time.perf_counter() - started,
        "config": asdict(config),
        "model_dir": str(out_dir / "model"),
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


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load_backbone(path: str, progress: bool) -> tuple[Any, Any]:
    """(tokenizer, model) with a one-output head; a bare encoder checkpoint gets a new, random head."""
    with _hf_progress_bars(progress):
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
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


def length_grouped_batches(
    lengths: Sequence[int], batch_size: int, rng: random.Random | None
) -> list[list[int]]:
    """Index batches of similar length so padding stays short; shuffled by rng, sorted when rng is None."""
    order = list(range(len(lengths)))
    if rng is None:
        order.sort(key=lambda i: lengths[i])
        return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    rng.shuffle(order)
    group = batch_size * 50  # sort within shuffled mega-batches, as transformers' LengthGroupedSampler does
    batches = []
    for start in range(0, len(order), group):
        chunk = sorted(order[start : start + group], key=lambda i: lengths[i], reverse=True)
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(
    pairs: Sequence[EncodedPair], pad_id: int, device: torch.device
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """One right-padded batch: the chosen sequences first, then the rejected ones; and the margins.

    Right padding suits decoder heads too: they pool the last token that is not pad_id.
    """
    rows = [pair.chosen for pair in pairs] + [pair.rejected for pair in pairs]
    width = max(len(row["input_ids"]) for row in rows)
    inputs = {}
    for key in rows[0]:
        fill = pad_id if key == "input_ids" else 0
        padded = [row[key] + [fill] * (width - len(row[key])) for row in rows]
        inputs[key] = torch.tensor(padded, dtype=torch.long, device=device)
    margins = torch.tensor([pair.margin for pair in pairs], dtype=torch.float32, device=device)
    return inputs, margins


def bradley_terry_loss(
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    margin: torch.Tensor | None,
    center_rewards_coefficient: float,
) -> torch.Tensor:
    """-log sigmoid(r_c - r_r - margin), plus coefficient * mean((r_c + r_r)^2) to keep rewards centred."""
    difference = chosen - rejected if margin is None else chosen - rejected - margin
    loss = -F.logsigmoid(difference).mean()
    if center_rewards_coefficient:
        loss = loss + center_rewards_coefficient * torch.mean((chosen + rejected) ** 2)
    return loss


def train_epochs(
    model: Any, train_set: list[EncodedPair], config: TrainConfig, device: torch.device, progress: bool
) -> tuple[list[float], float]:
    """Mean loss per epoch (weighted by pairs) and the seconds spent training."""
    started = time.perf_counter()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
    rng = random.Random(config.seed)
    lengths = [pair.length for pair in train_set]
    steps = math.ceil(len(train_set) / config.batch_size) * config.epochs
    losses = []
    model.train()
    with tqdm(total=steps, desc="train-rm", unit="step", disable=not progress) as bar:
        for _ in range(config.epochs):
            total = 0.0
            for batch in length_grouped_batches(lengths, config.batch_size, rng):
                inputs, margins = collate([train_set[i] for i in batch], model.config.pad_token_id, device)
                rewards = model(**inputs).logits.squeeze(-1)
                margin = margins if config.use_margin else None
                chosen, rejected = rewards[: len(batch)], rewards[len(batch) :]
                loss = bradley_terry_loss(chosen, rejected, margin, config.center_rewards_coefficient)
                optimizer.zero_grad()
                torch.autograd.backward(loss)
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                total += loss.item() * len(batch)
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.4f}")
            losses.append(total / len(train_set))
    return losses, time.perf_counter() - started


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


def calibration_metrics(differences: Sequence[float], bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """Accuracy, ECE, Brier and NLL of p = sigmoid(r_c - r_r) against "the chosen side wins".

    ECE and the reliability bins use the confidence max(p, 1 - p) in `bins` equal bins over [0.5, 1]
    against whether the side the model prefers is the chosen one (a tie counts as wrong).
    None everywhere when there is nothing to evaluate.
    """
    if not differences:
        return {"accuracy": None, "ece": None, "brier": None, "nll": None, "reliability": []}
    n = len(differences)
    probabilities = [_sigmoid(d) for d in differences]
    correct = [d > 0 for d in differences]
    confidences = [max(p, 1.0 - p) for p in probabilities]
    reliability = []
    ece = 0.0
    for index in range(bins):
        lower, upper = 0.5 + 0.5 * index / bins, 0.5 + 0.5 * (index + 1) / bins
        members = [i for i, c in enumerate(confidences) if _bin_of(c, bins) == index]
        confidence = sum(confidences[i] for i in members) / len(members) if members else None
        accuracy = sum(correct[i] for i in members) / len(members) if members else None
        if confidence is not None and accuracy is not None:
            ece += len(members) / n * abs(accuracy - confidence)
        reliability.append(
            {
                "lower": lower,
                "upper": upper,
                "count": len(members),
                "confidence": confidence,
                "accuracy": accuracy,
            }
        )
    return {
        "accuracy": sum(correct) / n,
        "ece": ece,
        "brier": sum((1.0 - p) ** 2 for p in probabilities) / n,
        "nll": sum(_softplus(-d) for d in differences) / n,  # -log sigmoid(d), stable for large |d|
        "reliability": reliability,
    }


def _bin_of(confidence: float, bins: int) -> int:
    return min(int((confidence - 0.5) * 2 * bins), bins - 1)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def _softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
