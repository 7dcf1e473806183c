"""Batched versus one-prompt-at-a-time local generation, in generated tokens per second.

The default model (the bundled SmolLM2-135M-Instruct, converted once into the models directory) answers
the same prompts twice with the same seeds: once a prompt per call, once in batches of --batch-size
prompts (left-padded, sorted by length), each call drawing all --samples samples of its prompts.
Target: batched >= 3x the tokens per second of one prompt at a time. Exits 1 on a miss.

    python bench/generation.py [--prompts 8] [--samples 2] [--max-new-tokens 24] [--device auto]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.generation.generator import DecodingParams, Sample, load_backend  # noqa: E402
from bench._support import Report  # noqa: E402

TARGET = 3.0
QUESTIONS = [
    "What is the capital of France?", "Write a haiku about autumn rain.",
    "Explain what a hash table is in two sentences.", "Give three tips for sleeping better.",
    "Why is the sky blue?", "Translate 'good morning' into Spanish and German.",
    "What is 17 times 23? Show your working.", "Name a famous painting and its painter.",
    "Summarise the plot of Romeo and Juliet in one sentence.", "How do vaccines work?",
    "Suggest a name for a grey cat.", "What does HTTP stand for?",
    "List the planets of the solar system.", "Describe the taste of a lemon to someone who never had one.",
    "What is the difference between weather and climate?", "Write a limerick about a programmer.",
]


def _run(backend: Any, conversations: list[list[dict[str, str]]], samples: int, params: DecodingParams,
         batch: int) -> tuple[int, float]:
    """(generated tokens, seconds) answering every conversation in calls of `batch` prompts."""
    backend.batch_size = batch
    start = time.perf_counter()
    tokens = 0
    for i in range(0, len(conversations), batch):
        answers: list[list[Sample]] = backend.generate(conversations[i : i + batch], samples, params)
        tokens += sum(s.tokens for prompt in answers for s in prompt)
    return tokens, time.perf_counter() - start


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--prompts", type=int, default=8)
    args.add_argument("--samples", type=int, default=2)
    args.add_argument("--max-new-tokens", type=int, default=24)
    args.add_argument("--batch-size", type=int, default=8)
    args.add_argument("--device", default="auto")
    args.add_argument("--models-dir", type=Path,
                      default=Path(os.environ.get("PREFSTUDIO_DATA_DIR", ".prefstudio")) / "models")
    opts = args.parse_args()

    loaded = time.perf_counter()
    backend = load_backend("", opts.models_dir, device=opts.device, batch_size=opts.batch_size)
    report = Report(f"generation: batched vs one prompt at a time ({backend.model_id}, "
                    f"device {getattr(backend, 'device', '?')})")
    report.note(f"model ready in {time.perf_counter() - loaded:.1f} s; {opts.prompts} prompts x "
                f"{opts.samples} samples, up to {opts.max_new_tokens} new tokens, temperature 0.8")
    conversations = [[{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}]
                     for i in range(opts.prompts)]
    params = DecodingParams(max_new_tokens=opts.max_new_tokens, temperature=0.8, top_p=0.95, seed=1)
    _run(backend, conversations[:1], 1, DecodingParams(max_new_tokens=4), 1)  # warm-up

    single_tokens, single_s = _run(backend, conversations, opts.samples, params, 1)
    print(f"one at a time: {single_tokens} tokens in {single_s:.1f} s", flush=True)
    batch_tokens, batch_s = _run(backend, conversations, opts.samples, params, opts.batch_size)
    print(f"batched: {batch_tokens} tokens in {batch_s:.1f} s", flush=True)
    single_rate, batch_rate = single_tokens / single_s, batch_tokens / batch_s
    report.note(f"one at a time: {single_tokens} tokens in {single_s:.1f} s")
    report.note(f"batched ({opts.batch_size} prompts a call): {batch_tokens} tokens in {batch_s:.1f} s")
    report.check("one prompt at a time", single_rate, "(baseline)", True, "tok/s")
    report.check(f"batched, {opts.batch_size} prompts x {opts.samples} samples a call", batch_rate,
                 f">= {TARGET * single_rate:,.0f}", batch_rate >= TARGET * single_rate, "tok/s")
    report.check("speed-up", batch_rate / single_rate, f">= {TARGET:.0f}x",
                 batch_rate >= TARGET * single_rate, "x")
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
