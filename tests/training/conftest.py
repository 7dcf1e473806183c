from __future__ import annotations

import pytest

from tests.training.tiny import build_tiny_backbone


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_tiny_backbone(tmp_path_factory.mktemp("tiny-bert"))
