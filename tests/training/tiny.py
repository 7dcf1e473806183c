"""A tiny random-weight BERT and a toy export whose signal it can learn in seconds (ML tests only)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import torch
from transformers import BertConfig, BertModel, BertTokenizer

TOPICS = ["cats", "dogs", "rain", "tea", "maps", "jazz", "bread", "trains"]
COLOURS = ["red", "blue", "green", "gold", "grey", "pink"]
FILLERS = ["today", "really", "clearly", "simply", "indeed"]
# several words per side, so a random model does not rank every pair the same way by chance
GOOD = ["good", "great", "fine", "nice", "kind", "true"]
BAD = ["bad", "awful", "poor", "wrong", "rude", "false"]
WORDS = [
    "user",
    "assistant",
    ":",
    ".",
    "tell",
    "me",
    "about",
    "the",
    "answer",
    "is",
    "here",
    *TOPICS,
    *COLOURS,
    *FILLERS,
    *GOOD,
    *BAD,
]


def build_tiny_backbone(directory: Path) -> str:
    """A random 2-layer BERT encoder (no head, like the bundled checkpoint) and its own WordPiece vocab."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizer.from_pretrained(directory).save_pretrained(directory)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    BertModel(config).save_pretrained(directory)
    return str(directory)


def write_export(path: Path, *, conversational: bool = True, margins: bool = True, seed: int = 0) -> Path:
    """Each topic x colour prompt once or twice; the chosen answer holds a GOOD word, the rejected a BAD."""
    rng = random.Random(seed)
    rows = []
    for topic in TOPICS:
        for colour in COLOURS:
            prompt = f"tell me about the {colour} {topic}."
            for _ in range(rng.choice([1, 2])):
                filler = rng.choice(FILLERS)
                words = (rng.choice(GOOD), rng.choice(BAD))
                chosen, rejected = (f"here is the {word} answer about {topic} {filler}." for word in words)
                row: dict[str, Any] = {"prompt": prompt, "chosen": chosen, "rejected": rejected}
                if conversational:
                    row = {
                        key: [{"role": "assistant" if key != "prompt" else "user", "content": text}]
                        for key, text in row.items()
                    }
                if margins:
                    row["margin"] = rng.choice([0.0, 0.5, 1.0])
                rows.append(json.dumps(row))
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


