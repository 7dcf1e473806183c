"""`prefstudio train-rm` end to end: the options reach the trainer, and bad input is one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from tests.training.tiny import write_export

runner = CliRunner()


def test_trains_with_every_option_and_writes_the_outputs(tmp_path: Path, tiny_backbone: str) -> None:
    export = write_export(tmp_path / "export.jsonl", conversational=False)
    result = runner.invoke(app, [
        "train-rm", str(export), "--out", str(tmp_path / "run"), "--base-model", tiny_backbone,
        "--max-length", "24", "--lr", "1e-3", "--epochs", "2", "--batch-size", "4", "--no-margin",
        "--center-rewards", "0.01", "--eval-fraction", "0.3", "--seed", "3", "--device", "cpu",
        "--no-progress",
    ])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output[: result.output.rindex("}") + 1])["n_eval"] > 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["config"] | {"base_model": ""} == {
        "base_model": "", "max_length": 24, "learning_rate": 1e-3, "epochs": 2, "batch_size": 4,
        "use_margin": False, "center_rewards_coefficient": 0.01, "eval_fraction": 0.3, "seed": 3,
        "device": "cpu",
    }
    assert len(metrics["train_loss_per_epoch"]) == 2
    assert (tmp_path / "run" / "reliability.png").is_file()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "holds no preference pairs"),
        ('{"prompt": "p", "chosen": "c"}\n', "line 1, field 'rejected': missing"),
        ('{"question": "p", "good": "c", "bad": "r"}\n', "line 1, field 'chosen': missing"),
        ('{"prompt": "p", "chosen": 3, "rejected": "r"}\n', "line 1, field 'chosen': expected a string"),
        ("not json\n", "line 1: not valid JSON"),
    ],
)
def test_bad_export_is_one_clear_error_line(tmp_path: Path, content: str, message: str) -> None:
    export = tmp_path / "export.jsonl"
    export.write_text(content, encoding="utf-8")
    result = runner.invoke(app, ["train-rm", str(export), "--out", str(tmp_path / "run"), "--device", "cpu"])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--epochs", "0"], "epochs >= 1"),
        (["--eval-fraction", "1.0"], "eval_fraction must be in [0, 1)"),
        (["--base-model", "/no/such/model"], "cannot load the base model '/no/such/model'"),
        (["--device", "tpu"], "device must be auto, cpu or cuda"),
    ],
)
def test_bad_options_are_clear_errors(tmp_path: Path, options: list[str], message: str) -> None:
    export = write_export(tmp_path / "export.jsonl")
    result = runner.invoke(app, ["train-rm", str(export), "--out", str(tmp_path / "run"), *options])
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train-rm", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert "no such file" in result.output


@pytest.mark.slow
def test_two_processes_share_the_batches_under_a_distributed_launcher(
    tmp_path: Path, tiny_backbone: str
) -> None:
    """What `accelerate launch --multi_gpu` does on GPUs, on two CPU processes (gloo) via torchrun."""
    import subprocess
    import sys

    export = write_export(tmp_path / "export.jsonl")
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "app.cli", "train-rm",
        str(export), "--out", str(tmp_path / "run"), "--base-model", tiny_backbone, "--max-length", "32",
        "--epochs", "1", "--batch-size", "8", "--device", "cpu", "--no-progress",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("written to") == 1  # only the main process reports and writes
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["n_processes"] == 2
    assert metrics["train_loss"] is not None
