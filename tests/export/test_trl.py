"""One TRL RewardTrainer step and one DPOTrainer step straight from export files, on tiny random models.

The models and the tokenizer are built here, offline, in tmp_path: a word-level tokenizer with a chat
template, a 2-layer Llama sequence classifier (reward model) and a 2-layer Llama causal LM (policy).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.export import service as export_service
from app.export.schemas import ExportOptions
from tests.export.conftest import Voted
from tests.factories import make_judgement, make_pair_item

torch = pytest.importorskip("torch")
trl = pytest.importorskip("trl")

CHAT_TEMPLATE = ("{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} [EOS] {% endfor %}"
                 "{% if add_generation_prompt %}assistant : {% endif %}")


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("WANDB_DISABLED", "true")


def tiny_tokenizer(directory: Path, texts: list[str]) -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    split = pre_tokenizers.Whitespace().pre_tokenize_str
    words = sorted({piece for text in texts for piece, _ in split(text)})
    vocab = {token: n for n, token in enumerate(["[PAD]", "[UNK]", "[EOS]", *words])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]")
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(directory)
    return tokenizer


def tiny_llama(vocab_size: int) -> Any:
    from transformers import LlamaConfig

    torch.manual_seed(0)
    return LlamaConfig(vocab_size=vocab_size, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                       num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128,
                       pad_token_id=0, eos_token_id=2, bos_token_id=2,
                       num_labels=1)  # type: ignore[call-arg]


@pytest.fixture
def exported(db: Session, voted: Voted, tmp_path: Path) -> dict[str, Path]:
    """The voted project plus a few more decided pairs (a batch needs rows), exported in the pair formats."""
    u1, u2, _ = voted.annotators
    for n in range(4):
        item = make_pair_item(db, voted.project, text=f"Tell me about item {n}", a=f"good answer {n}",
                              b=f"bad answer {n}")
        make_judgement(db, item, u1, "a", 2)
        make_judgement(db, item, u2, "a", 1)
    paths = {}
    for fmt in ("trl", "trl-implicit"):
        path = tmp_path / f"{fmt}.jsonl"
        options = ExportOptions.model_validate({"format": fmt})
        with path.open("w", encoding="utf-8") as out:
            out.writelines(export_service.stream_export(db, project_id=voted.project.id, options=options))
        paths[fmt] = path
    return paths


def texts_of(path: Path) -> list[str]:
    return [message["content"] for line in path.read_text().splitlines()
            for key, value in json.loads(line).items() if key in ("prompt", "chosen", "rejected")
            for message in value] + ["user", "assistant", "system", ":"]


def load(path: Path) -> Any:
    import datasets

    datasets.disable_progress_bars()
    return datasets.load_dataset("json", data_files=str(path), split="train")


def args(kind: type, tmp_path: Path, **extra: Any) -> Any:
    return kind(output_dir=str(tmp_path / "out"), max_steps=1, per_device_train_batch_size=2, report_to=[],
                save_strategy="no", logging_strategy="no", use_cpu=True, learning_rate=1e-3,
                disable_tqdm=True, dataloader_num_workers=0, seed=0, **extra)


# TRL's configs set a field transformers 5 renamed; the warning is theirs, not about our data.
THEIR_DEPRECATION = r"ignore:`(is_)?gradient_checkpointing\w*` is deprecated:FutureWarning"


@pytest.mark.filterwarnings(THEIR_DEPRECATION)
@pytest.mark.parametrize("fmt", ["trl", "trl-implicit"])
def test_one_reward_trainer_step_from_the_export_file(exported: dict[str, Path], tmp_path: Path,
                                                      fmt: str) -> None:
    from transformers import LlamaForSequenceClassification

    tokenizer = tiny_tokenizer(tmp_path / "tok", texts_of(exported["trl"]))
    model = LlamaForSequenceClassification(tiny_llama(len(tokenizer)))  # type: ignore[no-untyped-call]
    dataset = load(exported[fmt])
    assert "margin" in dataset.column_names  # the loss uses it: -log sigmoid(r_chosen - r_rejected - margin)
    trainer = (trl.RewardTrainer(
        model=model, args=args(trl.RewardConfig, tmp_path, max_length=64), train_dataset=dataset,
        processing_class=tokenizer))
    before = [p.detach().clone() for p in model.parameters()]
    result = trainer.train()
    assert result.global_step == 1
    assert torch.isfinite(torch.tensor(result.training_loss))
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))


@pytest.mark.filterwarnings(THEIR_DEPRECATION)
def test_one_dpo_trainer_step_from_the_export_file(exported: dict[str, Path], tmp_path: Path) -> None:
    from transformers import LlamaForCausalLM

    tokenizer = tiny_tokenizer(tmp_path / "tok", texts_of(exported["trl"]))
    config = tiny_llama(len(tokenizer))
    model, reference = LlamaForCausalLM(config), LlamaForCausalLM(config)
    dataset = load(exported["trl"]).select_columns(["prompt", "chosen", "rejected"])
    trainer = (trl.DPOTrainer(
        model=model, ref_model=reference, args=args(trl.DPOConfig, tmp_path, max_length=64),
        train_dataset=dataset, processing_class=tokenizer))
    before = [p.detach().clone() for p in model.parameters()]
    result = trainer.train()
    assert result.global_step == 1
    assert torch.isfinite(torch.tensor(result.training_loss))
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
