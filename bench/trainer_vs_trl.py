"""Our reward-model trainer against TRL's RewardTrainer: same model, same token ids, same split, same
hyper-parameters, one run. Prints pairs/s and held-out accuracy of each beside the targets:

  - throughput: ours >= TRL's pairs/s (both timed around the training loop only);
  - accuracy: ours within noise of TRL's (|difference| <= 2 standard errors of a difference of two
    proportions on the held-out pairs, and at least 0.03).

  python bench/trainer_vs_trl.py [--pairs 400] [--epochs 2] [--max-length 96] [--repeats 1]

The model is a small random BERT (2 layers, hidden 128) with the bundled MiniLM tokenizer, trained from
scratch on synthetic pairs whose responses vary in length (so padding matters) and whose chosen side holds
a "good" word, except for 15 % of the pairs where the label is flipped (so the best reachable accuracy is
about 0.85, not 1); about two minutes on two free CPU cores. Exits non-zero on a miss.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import Report

LABEL_NOISE = 0.15
GOOD = ["helpful", "correct", "clear", "kind", "precise", "honest", "thorough", "useful"]
BAD = ["useless", "wrong", "vague", "rude", "sloppy", "false", "lazy", "confusing"]
TOPICS = ["rivers", "tea", "trains", "bread", "planets", "music", "glaciers", "bees", "maps", "clocks"]
FILLER = ["the", "answer", "covers", "the", "question", "in", "some", "detail", "and", "adds", "a", "few",
          "remarks", "about", "history", "usage", "and", "common", "mistakes", "that", "people", "make",
          "when", "they", "first", "learn", "about", "it"]


def synthetic_pairs(n: int, seed: int) -> list[Any]:
    from app.training.data import PreferencePair

    rng = random.Random(seed)
    pairs = []
    for index in range(n):
        topic = TOPICS[index % len(TOPICS)]
        prompt = f"question {index // 2}: tell me about {topic} and why they matter"
        sides = []
        for word in (rng.choice(GOOD), rng.choice(BAD)):
            filler = " ".join(rng.choices(FILLER, k=rng.randint(2, 60)))
            sides.append(f"this is a {word} answer about {topic}. {filler}")
        if rng.random() < LABEL_NOISE:  # the annotator got it "wrong": accuracy cannot saturate at 1
            sides.reverse()
        pairs.append(PreferencePair(prompt, sides[0], sides[1]))
    return pairs


def tiny_model(tokenizer_dir: Path, out: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=128, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=256, max_position_embeddings=512,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    BertModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def accuracy(model: Any, encoded: list[Any], token_types: bool) -> float:
    """Share of held-out pairs where r(chosen) > r(rejected); `token_types` as the model was trained."""
    import torch

    from app.training.trainer import collate

    model.eval()
    right = 0
    with torch.inference_mode():
        for start in range(0, len(encoded), 32):
            batch = encoded[start : start + 32]
            inputs, _ = collate(batch, model.config.pad_token_id, torch.device("cpu"))
            if not token_types:
                inputs.pop("token_type_ids", None)
            rewards = model(**inputs).logits.squeeze(-1)
            right += int((rewards[: len(batch)] > rewards[len(batch) :]).sum())
    return right / len(encoded)


def run_ours(base: Path, export: Path, out: Path, opts: argparse.Namespace) -> tuple[float, Path]:
    from app.training.trainer import TrainConfig, train_reward_model

    config = TrainConfig(base_model=str(base), max_length=opts.max_length, learning_rate=opts.lr,
                         epochs=opts.epochs, batch_size=opts.batch_size, use_margin=False, eval_fraction=0.2,
                         seed=opts.seed, device="cpu")
    metrics = train_reward_model(export, out, config, progress=False)
    return float(metrics["pairs_per_second"]), out / "model"


def run_trl(base: Path, train: list[Any], out: Path, opts: argparse.Namespace) -> tuple[float, Any]:
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)
    data = Dataset.from_list([{"chosen_ids": p.chosen["input_ids"], "rejected_ids": p.rejected["input_ids"]}
                              for p in train])
    args = RewardConfig(output_dir=str(out), per_device_train_batch_size=opts.batch_size,
                        num_train_epochs=opts.epochs, learning_rate=opts.lr, lr_scheduler_type="constant",
                        weight_decay=0.01, max_grad_norm=1.0, max_length=None, report_to="none",
                        save_strategy="no", logging_strategy="no", use_cpu=True, seed=opts.seed,
                        disable_tqdm=True, dataloader_num_workers=0)
    trainer = RewardTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    return len(train) * opts.epochs / seconds, trainer.model


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--pairs", type=int, default=400)
    args.add_argument("--epochs", type=int, default=2)
    args.add_argument("--max-length", type=int, default=96)
    args.add_argument("--batch-size", type=int, default=16)
    args.add_argument("--lr", type=float, default=1e-3)
    args.add_argument("--seed", type=int, default=0)
    args.add_argument("--repeats", type=int, default=1,
                      help="alternate runs of each; the best pairs/s counts")
    opts = args.parse_args()

    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from app.training.data import split_by_prompt
    from app.training.model_store import bundled_backbone_dir
    from app.training.trainer import encode_pairs

    hf_logging.set_verbosity_error()
    pairs = synthetic_pairs(opts.pairs, opts.seed)
    split = split_by_prompt(pairs, 0.2, opts.seed)  # the same split train_reward_model makes
    report = Report("reward-model trainer vs TRL RewardTrainer")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        base = tiny_model(bundled_backbone_dir(), root / "base")
        export = root / "export.jsonl"
        import json

        export.write_text("".join(json.dumps({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected})
                                  + "\n" for p in pairs), encoding="utf-8")
        tokenizer = AutoTokenizer.from_pretrained(base)
        train_ids = encode_pairs(tokenizer, split.train, opts.max_length)
        eval_ids = encode_pairs(tokenizer, split.eval, opts.max_length)
        ours_rates, trl_rates = [], []
        for repeat in range(opts.repeats):
            rate, ours_dir = run_ours(base, export, root / f"ours{repeat}", opts)
            ours_rates.append(rate)
            rate, trl_model = run_trl(base, train_ids, root / f"trl{repeat}", opts)
            trl_rates.append(rate)
        ours_acc = accuracy(AutoModelForSequenceClassification.from_pretrained(ours_dir), eval_ids, True)
        trl_acc = accuracy(trl_model.cpu(), eval_ids, False)
    n = len(eval_ids)
    noise = max(0.03, 2 * math.sqrt(ours_acc * (1 - ours_acc) / n + trl_acc * (1 - trl_acc) / n))
    report.note(f"{len(train_ids)} train pairs, {n} held-out pairs, {opts.epochs} epochs,"
                f" batch {opts.batch_size}, max length {opts.max_length}, lr {opts.lr},"
                f" {opts.repeats} run(s) each")
    report.note(f"TRL RewardTrainer: {max(trl_rates):.1f} pairs/s, held-out accuracy {trl_acc:.3f}")
    ours_rate, trl_rate = max(ours_rates), max(trl_rates)
    report.check("ours: pairs/s", ours_rate, f">= {trl_rate:.1f}", ours_rate >= trl_rate)
    report.check("ours: held-out accuracy", ours_acc, f"{trl_acc:.3f} ± {noise:.3f}",
                 abs(ours_acc - trl_acc) <= noise)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
