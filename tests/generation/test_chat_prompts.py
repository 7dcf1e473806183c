"""Chat prompts with a real (tiny) model: system prompt and multi-turn rendered with the chat template,
stop sequences, max new tokens, per-config seeds."""

from __future__ import annotations

import pytest

from app.generation.generator import DecodingParams, cut_at_stop, with_system
from tests.generation.test_generator import CHAT_TEMPLATE, SAMPLING, build_tokenizer, save_tiny_model

pytest.importorskip("torch")
from app.generation.backends.transformers_backend import TransformersBackend, render_prompt

TURNS = [{"role": "user", "content": "what is two plus two"}, {"role": "assistant", "content": "four"},
         {"role": "user", "content": "name a colour"}]


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> TransformersBackend:
    path = save_tiny_model(tmp_path_factory.mktemp("tiny-chat"))
    return TransformersBackend(str(path), "tiny", "test", device="cpu", batch_size=4)


def test_system_prompt_and_turns_are_rendered_in_order_by_the_chat_template() -> None:
    rendered = render_prompt(build_tokenizer(CHAT_TEMPLATE), with_system(TURNS, "be terse"))
    assert rendered == ("<|im_start|>system be terse<|im_end|><|im_start|>user what is two plus two<|im_end|>"
                        "<|im_start|>assistant four<|im_end|><|im_start|>user name a colour<|im_end|>"
                        "<|im_start|>assistant ")


def test_a_conversation_with_its_own_system_turn_keeps_it() -> None:
    own = [{"role": "system", "content": "be brief"}, *TURNS]
    assert with_system(own, "be terse") == own and with_system(TURNS, "") == TURNS


def test_stop_sequences_cut_the_text_before_the_earliest_one() -> None:
    assert cut_at_stop("blue sky. red sky", ["red", "."]) == "blue sky"
    assert cut_at_stop("blue", ["red"]) == "blue" and cut_at_stop("blue", []) == "blue"


def test_the_model_stops_at_a_stop_sequence_and_at_max_new_tokens(backend: TransformersBackend) -> None:
    [[free]] = backend.generate([TURNS], 1, SAMPLING)
    words = free.text.split()
    assert len(words) >= 2 and free.tokens <= SAMPLING.max_new_tokens
    stop = words[1]
    [[stopped]] = backend.generate([TURNS], 1, DecodingParams(**{**SAMPLING.__dict__, "stop": (stop,)}))
    assert stopped.text == free.text[: free.text.find(stop)] and stop not in stopped.text
    [[short]] = backend.generate([TURNS], 1, DecodingParams(max_new_tokens=3, seed=SAMPLING.seed))
    assert short.tokens <= 3


def test_each_config_seed_reproduces_its_own_samples(backend: TransformersBackend) -> None:
    first = backend.generate([TURNS], 2, DecodingParams(max_new_tokens=10, seed=1))
    assert backend.generate([TURNS], 2, DecodingParams(max_new_tokens=10, seed=1)) == first
    assert backend.generate([TURNS], 2, DecodingParams(max_new_tokens=10, seed=2)) != first


def test_a_config_is_read_from_its_stored_params() -> None:
    params = DecodingParams.of({"max_new_tokens": 5, "seed": 3, "stop": ["x"], "system_prompt": "ignored"})
    assert params == DecodingParams(max_new_tokens=5, seed=3, stop=("x",))
