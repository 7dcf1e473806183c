"""Our reward-model trainer against TRL's RewardTrainer: same model, same token ids, same split, same
hyper-parameters, one run. Prints pairs/s and held-out accuracy of each beside the targets:

  - throughput: ours >= TRL's pairs/s, both by wall time and by process CPU time (the steadier figure
    on a shared machine), best of the alternating runs;
  - accuracy: ours within noise of TRL's (|difference| <= 2 standard errors of a difference of two
    proportions on the held-out pairs, and at least 0.03).

  python bench/trainer_vs_trl.py [--pairs 400] [--epochs 2] [--max-length 96] [--repeats 1] [--threads 0]

How the comparison is kept fair: both run in this one process, one after the other (ours, TRL, ours,
TRL, ...), under the same torch thread count (--threads; 0 keeps torch's default, 1 is steadier on a
machine shared with other work). Both get the same token ids (our encoder's, TRL gets them
pre-tokenised), batch size, max length, learning rate (constant), weight decay 0.01 (TRL spares biases
and LayerNorm weights, ours does not), gradient clipping at 1.0, fused AdamW, and the same number of
optimiser steps (ceil(train pairs / batch) per epoch; the bench checks TRL's step count). Both put
chosen and rejected into one forward pass of 2B sequences.
Timing covers training only: ours is train_reward_model's train_seconds / train_cpu_seconds (moving the
model, building the optimiser and the loop; not loading, tokenising, evaluation or saving); TRL's is
taken by a callback from on_train_begin to on_train_end, which leaves out its optimiser and dataloader
setup, so the comparison leans in TRL's favour. Differences that remain by design: ours sends
token_type_ids (the text-pair segments BERT-style backbones are pre-trained with; TRL sends none); groups
batches by length (TRL pads to the longest pair of a shuffled batch).

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


def run_ours(base: Path, export: Path, out: Path, opts: argparse.Namespace) -> tuple[float, float, Path]:
    from app.training.trainer import TrainConfig, train_reward_model

    config = TrainConfig(base_model=str(base), max_length=opts.max_length, learning_rate=opts.lr,
                         epochs=opts.epochs, batch_size=opts.batch_size, use_margin=False, eval_fraction=0.2,
                         seed=opts.seed, device="cpu")
    metrics = train_reward_model(export, out, config, progress=False)
    pairs = metrics["n_train"] * opts.epochs
    return pairs / metrics["train_seconds"], pairs / metrics["train_cpu_seconds"], out / "model"


def run_trl(base: Path, train: list[Any], out: Path, opts: argparse.Namespace) -> tuple[float, float, Any]:
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, TrainerCallback
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
    clock: dict[str, float] = {}

    class Clock(TrainerCallback):  # type: ignore[misc]
        def on_train_begin(self, *args: Any, **kwargs: Any) -> None:
            clock["wall"], clock["cpu"] = time.perf_counter(), time.process_time()

        def on_train_end(self, *args: Any, **kwargs: Any) -> None:
            clock["wall"] = time.perf_counter() - clock["wall"]
            clock["cpu"] = time.process_time() - clock["cpu"]

    trainer = RewardTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer,
                            callbacks=[Clock()])
    trainer.train()
    steps = math.ceil(len(train) / opts.batch_size) * opts.epochs
    if trainer.state.global_step != steps:
        raise RuntimeError(f"TRL took {trainer.state.global_step} steps, ours takes {steps}")
    pairs = len(train) * opts.epochs
    return pairs / clock["wall"], pairs / clock["cpu"], trainer.model


def torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


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
    args.add_argument("--threads", type=int, default=0,
                      help="torch threads for both trainers (0: torch's default)")
    opts = args.parse_args()

    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from app.training.data import split_by_prompt
    from app.training.model_store import bundled_backbone_dir
    from app.training.trainer import encode_pairs

    hf_logging.set_verbosity_error()
    if opts.threads:
        import torch

        torch.set_num_threads(opts.threads)
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
            wall, cpu, ours_dir = run_ours(base, export, root / f"ours{repeat}", opts)
            ours_rates.append((wall, cpu))
            wall, cpu, trl_model = run_trl(base, train_ids, root / f"trl{repeat}", opts)
            trl_rates.append((wall, cpu))
            ours_wall, ours_cpu = ours_rates[-1]
            print(f"run {repeat + 1}: ours {ours_wall:.1f} pairs/s wall, {ours_cpu:.1f} by CPU;"
                  f" TRL {wall:.1f} wall, {cpu:.1f} by CPU", flush=True)
        ours_acc = accuracy(AutoModelForSequenceClassification.from_pretrained(ours_dir), eval_ids, True)
        trl_acc = accuracy(trl_model.cpu(), eval_ids, False)
    n = len(eval_ids)
    noise = max(0.03, 2 * math.sqrt(ours_acc * (1 - ours_acc) / n + trl_acc * (1 - trl_acc) / n))
    report.note(f"{len(train_ids)} train pairs, {n} held-out pairs, {opts.epochs} epochs,"
                f" batch {opts.batch_size}, max length {opts.max_length}, lr {opts.lr},"
                f" {opts.repeats} run(s) each, torch threads {torch_threads()}")
    trl_wall, trl_cpu = (max(rate[i] for rate in trl_rates) for i in (0, 1))
    ours_wall, ours_cpu = (max(rate[i] for rate in ours_rates) for i in (0, 1))
    report.note(f"TRL RewardTrainer: {trl_wall:.1f} pairs/s wall, {trl_cpu:.1f} pairs/s by CPU time,"
                f" held-out accuracy {trl_acc:.3f}")
    report.check("ours: pairs/s (wall)", ours_wall, f">= {trl_wall:.1f}", ours_wall >= trl_wall)
    report.check("ours: pairs/s (CPU time)", ours_cpu, f">= {trl_cpu:.1f}", ours_cpu >= trl_cpu)
    report.check("ours: held-out accuracy", ours_acc, f"{trl_acc:.3f} ± {noise:.3f}",
                 abs(ours_acc - trl_acc) <= noise)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
