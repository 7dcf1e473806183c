"""What the default backbone reaches on real human pairs: LLMBar (../shared/data/llmbar), 80 % of the
prompts to train on, 20 % held out, accuracy with a Wilson 95 % interval and a bootstrap one.

  python bench/llmbar_rm.py [--data ../shared/data/llmbar] [--epochs 1] [--max-length 256]

The data is read where it lies (MIT licence, Princeton NLP; see its README); nothing is copied into the
repository. Target: held-out accuracy above chance (the Wilson lower bound over 0.5); the figures go to
docs/reward-model.md. Minutes on two CPU cores.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import Report

# ../shared/data/llmbar beside the checkout (also from a worktree nested deeper)
DEFAULT_DATA = next((p / "shared" / "data" / "llmbar" for p in Path(__file__).resolve().parents[1:]
                     if (p / "shared" / "data" / "llmbar").is_dir()), Path("../shared/data/llmbar"))


def llmbar_rows(directory: Path) -> list[dict[str, str]]:
    """Every file's {input, output_1, output_2, label} as a TRL row (explicit prompt, strings)."""
    rows = []
    for path in sorted(directory.glob("*.json")):
        for record in json.loads(path.read_text(encoding="utf-8")):
            chosen, rejected = ("output_1", "output_2") if record["label"] == 1 else ("output_2", "output_1")
            rows.append({"prompt": record["input"], "chosen": record[chosen], "rejected": record[rejected]})
    return rows


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def bootstrap(correct: list[bool], draws: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the accuracy, resampling held-out pairs."""
    rng = random.Random(seed)
    n = len(correct)
    means = sorted(sum(rng.choices(correct, k=n)) / n for _ in range(draws))
    return means[int(0.025 * draws)], means[int(0.975 * draws) - 1]


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args.add_argument("--epochs", type=int, default=1)
    args.add_argument("--max-length", type=int, default=256)
    args.add_argument("--batch-size", type=int, default=16)
    args.add_argument("--lr", type=float, default=5e-5)
    args.add_argument("--seed", type=int, default=0)
    opts = args.parse_args()
    if not any(opts.data.glob("*.json")):
        print(f"no LLMBar files under {opts.data}", file=sys.stderr)
        return 2
    from app.training.data import read_pairs, split_by_prompt
    from app.training.scorer import load_reward_model, pair_differences
    from app.training.trainer import TrainConfig, train_reward_model

    rows = llmbar_rows(opts.data)
    config = TrainConfig(max_length=opts.max_length, epochs=opts.epochs, batch_size=opts.batch_size,
                         learning_rate=opts.lr, eval_fraction=0.2, seed=opts.seed, device="auto")
    with tempfile.TemporaryDirectory() as scratch:
        export = Path(scratch) / "llmbar.jsonl"
        export.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        held_out = split_by_prompt(read_pairs(export), config.eval_fraction, config.seed).eval
        metrics = train_reward_model(export, Path(scratch) / "run", config, progress=True)
        model = load_reward_model(Path(scratch) / "run" / "model", max_length=opts.max_length)
        differences = pair_differences(model, held_out)
    correct = [d > 0 for d in differences]
    longer = [len(p.chosen) > len(p.rejected) for p in held_out]
    report = Report("reward model on LLMBar human pairs (default backbone)")
    report.note(f"pairs {metrics['n_pairs']}: train {metrics['n_train']}"
                f" ({metrics['n_train_prompts']} prompts), held out {metrics['n_eval']}"
                f" ({metrics['n_eval_prompts']} prompts)")
    report.note(f"config: epochs {opts.epochs}, max length {opts.max_length}, batch {opts.batch_size},"
                f" lr {opts.lr}, seed {opts.seed}, device {metrics['device']}")
    low, high = wilson(sum(correct), len(correct))
    b_low, b_high = bootstrap(correct)
    report.check("held-out accuracy", metrics["eval_accuracy"], "> 0.5 (chance)", low > 0.5)
    report.note(f"  Wilson 95 % CI [{low:.3f}, {high:.3f}]; bootstrap 95 % CI [{b_low:.3f}, {b_high:.3f}]")
    report.note(f"ECE {metrics['eval_ece']:.3f}  Brier {metrics['eval_brier']:.3f}"
                f"  NLL {metrics['eval_nll']:.3f}")
    report.note(f"baseline 'the longer response wins' on the same pairs: {sum(longer) / len(longer):.3f}")
    report.note(f"training: {metrics['train_seconds']:.0f} s, {metrics['pairs_per_second']:.1f} pairs/s")
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
