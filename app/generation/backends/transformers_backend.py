"""Generation with a local transformers causal LM: batched, left-padded, one random stream per sample.

Sampling is Gumbel-max: each sample row adds noise from its own seeded generator to the temperature-scaled,
top-p-filtered logits and takes the argmax, which draws exactly from softmax(logits / T). So a sample's
text depends on its prompt, the decoding parameters and its seed, not on which prompts share its batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessor, LogitsProcessorList

from app.generation.generator import Conversation, DecodingParams, Sample, cut_at_stop, sample_seed
from app.generation.model_store import ModelNotAvailable


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def render_prompt(tokenizer: Any, conversation: Conversation) -> str:
    """The chat template's prompt for the assistant's next turn; a plain transcript if there is none."""
    if getattr(tokenizer, "chat_template", None):
        return str(tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False))
    lines = [f"{turn['role']}: {turn['content']}" for turn in conversation]
    return "\n".join([*lines, "assistant:"])


class SeededSampler(LogitsProcessor):
    """Turns greedy decoding into sampling, row r drawing its noise from a generator seeded with seeds[r]."""

    def __init__(self, seeds: Sequence[int], temperature: float, top_p: float) -> None:
        self.seeds = list(seeds)
        self.generators: list[torch.Generator] = []
        self.temperature = temperature
        self.top_p = top_p

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        logits = scores.float() / self.temperature
        if self.top_p < 1.0:
            logits = _drop_outside_top_p(logits, self.top_p)
        if not self.generators:  # on the logits' device: no per-step copy of a (rows, vocab) tensor
            self.generators = [torch.Generator(logits.device).manual_seed(seed) for seed in self.seeds]
        vocab = logits.shape[-1]
        uniform = torch.stack([torch.rand(vocab, generator=g, device=logits.device) for g in self.generators])
        gumbel = -torch.log(-torch.log(uniform.clamp(min=1e-20)))
        return logits + gumbel  # type: ignore[return-value]


def _drop_outside_top_p(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the most likely tokens until their mass reaches top_p (always at least one)."""
    ordered, order = logits.sort(dim=-1, descending=True)
    probs = ordered.softmax(dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs
    drop = torch.zeros_like(mass_before, dtype=torch.bool).scatter(-1, order, mass_before >= top_p)
    return logits.masked_fill(drop, float("-inf"))


def _left_pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, row in enumerate(rows):
        ids[r, width - len(row) :] = torch.tensor(row, dtype=torch.long)
        mask[r, width - len(row) :] = 1
    return ids, mask


class TransformersBackend:
    def __init__(
        self, path: str, model_id: str, revision: str, device: str = "auto", batch_size: int = 8
    ) -> None:
        self.model_id = model_id
        self.revision = revision
        self.batch_size = batch_size
        self.device = pick_device(device)
        dtype: Any = torch.float32 if self.device.type == "cpu" else "auto"
        try:
            # Any: transformers' own annotations do not type-check these calls under --strict
            self.tokenizer: Any = cast(Any, AutoTokenizer.from_pretrained(path))
            self.model: Any = cast(Any, AutoModelForCausalLM.from_pretrained(path, dtype=dtype))
        except (OSError, ValueError) as error:
            raise ModelNotAvailable(f"cannot load model {model_id!r} from {path}: {error}") from error
        self.model.to(self.device).eval()
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        self.pad_id: int = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self.eos_ids = _eos_ids(self.model.generation_config.eos_token_id, self.tokenizer.eos_token_id)

    def generate(
        self, conversations: Sequence[Conversation], n: int, params: DecodingParams
    ) -> list[list[Sample]]:
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        templated = bool(getattr(self.tokenizer, "chat_template", None))
        prompts = [
            self.tokenizer(render_prompt(self.tokenizer, c), add_special_tokens=not templated)["input_ids"]
            for c in conversations
        ]
        order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))  # similar lengths pad less
        results: list[list[Sample]] = [[] for _ in conversations]
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            seeds = [[sample_seed(params.seed, conversations[i], j) for j in range(n)] for i in batch]
            outputs = self._generate_batch([prompts[i] for i in batch], seeds, params)
            for i, prompt_seeds, prompt_outputs in zip(batch, seeds, outputs, strict=True):
                results[i] = [
                    Sample(text=cut_at_stop(text, params.stop), sample_index=j, seed=seed, tokens=tokens)
                    for j, (seed, (text, tokens)) in enumerate(zip(prompt_seeds, prompt_outputs, strict=True))
                ]
        return results

    def _generate_batch(
        self, prompts: list[list[int]], seeds: list[list[int]], params: DecodingParams
    ) -> list[list[tuple[str, int]]]:
        """(text, tokens) for each prompt and seed. Greedy decodes each prompt once and repeats it."""
        greedy = params.temperature <= 0
        copies = 1 if greedy else len(seeds[0])
        ids, mask = _left_pad([p for p in prompts for _ in range(copies)], self.pad_id)
        processors = LogitsProcessorList()
        if not greedy:
            flat_seeds = [seed for prompt_seeds in seeds for seed in prompt_seeds]
            processors.append(SeededSampler(flat_seeds, params.temperature, params.top_p))
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                max_new_tokens=params.max_new_tokens,
                do_sample=False,  # the sampling happens in SeededSampler
                logits_processor=processors,
                pad_token_id=self.pad_id,
                eos_token_id=sorted(self.eos_ids) or None,
            )
        decoded = [self._decode(row) for row in out[:, ids.shape[1] :].cpu().tolist()]
        return [
            [decoded[p * copies + (0 if greedy else j)] for j in range(len(seeds[p]))]
            for p in range(len(prompts))
        ]

    def _decode(self, new_ids: list[int]) -> tuple[str, int]:
        end = next((k for k, token in enumerate(new_ids) if token in self.eos_ids), len(new_ids))
        return str(self.tokenizer.decode(new_ids[:end], skip_special_tokens=True)), end


def _eos_ids(configured: int | list[int] | None, tokenizer_eos: int | None) -> set[int]:
    if isinstance(configured, int):
        return {configured}
    if configured:
        return set(configured)
    return {tokenizer_eos} if tokenizer_eos is not None else set()
